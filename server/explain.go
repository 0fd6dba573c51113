package server

import (
	"context"
	"fmt"
	"math"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/foretoken/foretoken/inference/sample"
)

// ExplainParams is one explanation: score the prompt token by token,
// optionally generate MaxTokens more, and look inside the last position.
type ExplainParams struct {
	Prompt      []int32
	TopLogprobs int           // alternatives per position, 0-20
	MaxTokens   int           // tokens to generate after the prompt
	Sampling    sample.Params // for those tokens
	Attention   bool
	Layers      bool
}

// Explanation is what /v1/explain answers and `foretoken explain` shows.
type Explanation struct {
	Model     string            `json:"model"`
	Tokens    []ExplainedToken  `json:"tokens"`
	Next      Prediction        `json:"next"` // after the last token
	Summary   ExplainSummary    `json:"summary"`
	Attention []LayerAttention  `json:"attention,omitempty"`
	Layers    []LayerPrediction `json:"layers,omitempty"`
	Usage     map[string]int    `json:"usage"`
}

// ExplainedToken is one token and how expected it was.
type ExplainedToken struct {
	ID        int32  `json:"id"`
	Text      string `json:"text"`
	Bytes     []int  `json:"bytes"`
	Offset    int    `json:"offset"` // byte offset in the text the tokens make up
	Special   bool   `json:"special"`
	Generated bool   `json:"generated"`
	// Under the prediction made before the token was seen; null for the
	// first token, which nothing predicts.
	Logprob     *jsonFloat  `json:"logprob"`
	Rank        *int        `json:"rank"`         // 1 = the most likely token
	Entropy     *jsonFloat  `json:"entropy_bits"` // of that prediction
	TopLogprobs []TokenProb `json:"top_logprobs"` // of that prediction
}

// Prediction is a next-token distribution, summarized.
type Prediction struct {
	Entropy     jsonFloat   `json:"entropy_bits"`
	TopLogprobs []TokenProb `json:"top_logprobs"`
}

// TokenProb is a candidate token with its log probability.
type TokenProb struct {
	ID      int32     `json:"id"`
	Token   string    `json:"token"`
	Logprob jsonFloat `json:"logprob"`
}

// ExplainSummary condenses the scored tokens (all but the first).
type ExplainSummary struct {
	Scored            int       `json:"scored_tokens"`
	TotalLogprob      jsonFloat `json:"total_logprob"`
	Perplexity        jsonFloat `json:"perplexity"`
	MeanSurprisalBits jsonFloat `json:"mean_surprisal_bits"`
}

// LayerAttention holds, for the last position, each head's weights over
// the positions up to it.
type LayerAttention struct {
	Layer int         `json:"layer"`
	Heads [][]float32 `json:"heads"`
}

// LayerPrediction is the logit lens of one layer at the last position:
// what the model would predict if it stopped after that layer.
type LayerPrediction struct {
	Layer       int         `json:"layer"`
	TopLogprobs []TokenProb `json:"top_logprobs"`
}

// Explain runs p on seq (which it empties first). It is the shared core of
// /v1/explain and `foretoken explain`.
func Explain(ctx context.Context, eng Engine, seq Sequence, p ExplainParams) (*Explanation, error) {
	if len(p.Prompt) == 0 {
		return nil, errInvalid("prompt", "the prompt is empty (no tokens)")
	}
	seq.Truncate(0)
	// Attention and the logit lens are asked of every pass: the last one
	// (the prompt's, if nothing is generated) provides them.
	res, err := seq.Forward(ctx, p.Prompt, Want{AllLogits: true, Attention: p.Attention, LayerLogits: p.Layers})
	if err != nil {
		return nil, fmt.Errorf("explain prompt: %w", err)
	}
	ex := &Explanation{}
	var lsm []float32
	var top []sample.Candidate
	offset := 0
	sum := 0.0
	addToken := func(id int32, generated bool, before []float32) {
		b := eng.TokenBytes(id)
		t := ExplainedToken{ID: id, Text: string(b), Bytes: byteInts(b), Offset: offset, Special: eng.IsSpecial(id), Generated: generated, TopLogprobs: []TokenProb{}}
		offset += len(b)
		if before != nil {
			lsm = sample.LogSoftmax(grow(lsm, len(before)), before)
			lp := lsm[id]
			rank := 1
			for _, v := range lsm {
				if v > lp {
					rank++
				}
			}
			h := jsonFloat(entropyBits(lsm))
			v := jsonFloat(lp)
			t.Logprob, t.Rank, t.Entropy = &v, &rank, &h
			top = sample.TopK(top, lsm, p.TopLogprobs)
			t.TopLogprobs = tokenProbs(eng, top)
			sum += float64(lp)
			ex.Summary.Scored++
		}
		ex.Tokens = append(ex.Tokens, t)
	}
	for i, id := range p.Prompt {
		var before []float32
		if i > 0 {
			before = res.Logits[i-1]
		}
		addToken(id, false, before)
	}
	logits := append([]float32(nil), res.Logits[len(res.Logits)-1]...)
	if p.MaxTokens > 0 {
		sampler := sample.New(p.Sampling)
		history := append([]int32(nil), p.Prompt...)
		work := make([]float32, len(logits))
		for k := 0; k < p.MaxTokens && seq.Len() < seq.Cap(); k++ {
			copy(work, logits)
			id := sampler.Sample(work, history)
			if eng.IsEOG(id) {
				break
			}
			addToken(id, true, logits)
			history = append(history, id)
			res, err = seq.Forward(ctx, []int32{id}, Want{Attention: p.Attention, LayerLogits: p.Layers})
			if err != nil {
				return nil, fmt.Errorf("explain decode: %w", err)
			}
			logits = append(logits[:0], res.Logits[len(res.Logits)-1]...)
		}
	}
	lsm = sample.LogSoftmax(grow(lsm, len(logits)), logits)
	top = sample.TopK(top, lsm, p.TopLogprobs)
	ex.Next = Prediction{Entropy: jsonFloat(entropyBits(lsm)), TopLogprobs: tokenProbs(eng, top)}

	if n := ex.Summary.Scored; n > 0 {
		ex.Summary.TotalLogprob = jsonFloat(sum)
		ex.Summary.Perplexity = jsonFloat(math.Exp(-sum / float64(n)))
		ex.Summary.MeanSurprisalBits = jsonFloat(-sum / float64(n) / math.Ln2)
	}
	if p.Attention {
		for l, heads := range res.Attention {
			la := LayerAttention{Layer: l}
			for _, h := range heads {
				la.Heads = append(la.Heads, append([]float32(nil), h...))
			}
			ex.Attention = append(ex.Attention, la)
		}
	}
	if p.Layers {
		for l, ll := range res.LayerLogits {
			lsm = sample.LogSoftmax(grow(lsm, len(ll)), ll)
			top = sample.TopK(top, lsm, p.TopLogprobs)
			ex.Layers = append(ex.Layers, LayerPrediction{Layer: l, TopLogprobs: tokenProbs(eng, top)})
		}
	}
	gen := 0
	for _, t := range ex.Tokens {
		if t.Generated {
			gen++
		}
	}
	ex.Usage = map[string]int{"prompt_tokens": len(p.Prompt), "completion_tokens": gen, "total_tokens": len(ex.Tokens)}
	return ex, nil
}

// entropyBits is the entropy of the distribution whose log-softmax is lsm.
func entropyBits(lsm []float32) float64 {
	h := 0.0
	for _, l := range lsm {
		if math.IsInf(float64(l), -1) {
			continue
		}
		h -= math.Exp(float64(l)) * float64(l)
	}
	return h / math.Ln2
}

func tokenProbs(eng Engine, c []sample.Candidate) []TokenProb {
	out := make([]TokenProb, len(c))
	for i, x := range c {
		out[i] = TokenProb{ID: x.ID, Token: string(eng.TokenBytes(x.ID)), Logprob: jsonFloat(x.Score)}
	}
	return out
}

func (s *Server) handleExplain(c *gin.Context) {
	var req explainRequest
	if err := bindJSON(c, &req); err != nil {
		abortErr(c, err)
		return
	}
	p := ExplainParams{TopLogprobs: 5, Attention: req.Attention, Layers: req.Layers}
	if v := req.TopLogprobs; v != nil {
		if *v < 0 || *v > maxTopLogprobs {
			abortErr(c, errInvalid("top_logprobs", "top_logprobs %d is outside [0, %d]", *v, maxTopLogprobs))
			return
		}
		p.TopLogprobs = *v
	}
	if v := req.MaxTokens; v != nil {
		if *v < 0 {
			abortErr(c, errInvalid("max_tokens", "max_tokens %d is negative", *v))
			return
		}
		p.MaxTokens = *v
	}
	if len(req.Prompt.Texts) > 1 || len(req.Prompt.IDs) > 1 {
		abortErr(c, errInvalid("prompt", "explain takes one prompt, got %d", max(len(req.Prompt.Texts), len(req.Prompt.IDs))))
		return
	}
	ctx := c.Request.Context()
	lm, err := s.acquireModel(ctx, req.Model)
	if err != nil {
		abortErr(c, err)
		return
	}
	defer s.models.release(lm)
	if req.Temperature == nil {
		// Explaining what the model expects most: greedy unless asked.
		zero := 0.0
		req.Temperature = &zero
	}
	if p.Sampling, err = req.samplingFields.samplingParams(lm.eng.Info().VocabSize); err != nil {
		abortErr(c, err)
		return
	}
	prompts, err := promptTokens(lm.eng, req.Prompt, "prompt")
	if err != nil {
		abortErr(c, err)
		return
	}
	p.Prompt = prompts[0]
	if p.MaxTokens > lm.sched.ctxLen-len(p.Prompt) {
		abortErr(c, contextError(lm.sched.ctxLen, len(p.Prompt), p.MaxTokens))
		return
	}
	sl, err := lm.sched.acquire(ctx, nil)
	if err != nil {
		abortErr(c, err)
		return
	}
	seq := lm.sched.sequence(sl)
	ex, err := Explain(ctx, lm.eng, seq, p)
	// Explain leaves the cache holding the prompt and what it generated,
	// but not necessarily at the positions sl.tokens would say.
	seq.Truncate(0)
	sl.tokens = sl.tokens[:0]
	lm.sched.release(sl)
	if err != nil {
		abortErr(c, err)
		return
	}
	ex.Model = req.Model
	c.JSON(http.StatusOK, ex)
}
