package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/foretoken/foretoken/inference/sample"
)

type completionChoice struct {
	Text         string          `json:"text"`
	Index        int             `json:"index"`
	Logprobs     *legacyLogprobs `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// legacyLogprobs is the logprobs object of /v1/completions.
type legacyLogprobs struct {
	Tokens        []string               `json:"tokens"`
	TokenLogprobs []*jsonFloat           `json:"token_logprobs"`
	TopLogprobs   []map[string]jsonFloat `json:"top_logprobs"`
	TextOffset    []int                  `json:"text_offset"`
}

type completionResponse struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usage             `json:"usage,omitempty"`
	nullUsage         bool               // as in chatResponse
}

func (r completionResponse) MarshalJSON() ([]byte, error) {
	type plain completionResponse
	if r.Usage != nil || !r.nullUsage {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		Usage *usage `json:"usage"`
	}{plain: plain(r)})
}

// systemFingerprint is OpenAI's name for the backend configuration that
// produced an answer; clients log it.
const systemFingerprint = "fp_foretoken"

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// acquireModel finds and loads the request's model.
func (s *Server) acquireModel(ctx context.Context, id string) (*loadedModel, error) {
	if id == "" {
		return nil, errInvalid("model", "the model field is required")
	}
	return s.models.acquire(ctx, id)
}

// promptTokens tokenizes each prompt of in (token-id prompts are checked
// against the vocabulary).
func promptTokens(eng Engine, in promptInput, field string) ([][]int32, error) {
	if !in.set {
		return nil, errInvalid(field, "the %s field is required", field)
	}
	if n := max(len(in.IDs), len(in.Texts)); n > maxInputs {
		return nil, errInvalid(field, "%s holds %d entries; at most %d are allowed", field, n, maxInputs)
	}
	vocab := eng.Info().VocabSize
	if in.IDs != nil {
		for _, ids := range in.IDs {
			for _, id := range ids {
				if int(id) >= vocab {
					return nil, errInvalid(field, "token id %d is outside the vocabulary of %d", id, vocab)
				}
			}
		}
		return in.IDs, nil
	}
	out := make([][]int32, len(in.Texts))
	for i, t := range in.Texts {
		ids, err := eng.Tokenize(t, true)
		if err != nil {
			return nil, errInvalid(field, "tokenize: %v", err)
		}
		out[i] = ids
	}
	return out, nil
}

func (s *Server) observe(model string, prompt int, out *genOutput, took time.Duration) {
	s.metrics.promptTokens.WithLabelValues(model).Add(float64(prompt))
	s.metrics.genTokens.WithLabelValues(model).Add(float64(out.Generated))
	s.metrics.genSeconds.WithLabelValues(model).Add(took.Seconds())
	if out.Generated > 0 && took > 0 {
		s.metrics.genRate.WithLabelValues(model).Observe(float64(out.Generated) / took.Seconds())
	}
}

// generateChoice generates one OpenAI choice and counts it in the metrics
// and in u. On failure it has answered the client already (an error event
// when streaming, else an error body) and returns nil.
func (s *Server) generateChoice(ctx context.Context, c *gin.Context, sse *sseWriter, lm *loadedModel, model string, gp genParams, u *usage) *genOutput {
	start := time.Now()
	out, err := generate(ctx, lm, gp)
	if err != nil {
		if sse != nil {
			sse.fail(err)
		} else {
			abortErr(c, err)
		}
		return nil
	}
	s.observe(model, len(gp.prompt), out, time.Since(start))
	u.add(len(gp.prompt), out)
	return out
}

func (s *Server) handleCompletions(c *gin.Context) {
	var req completionRequest
	if err := bindJSON(c, &req); err != nil {
		abortErr(c, err)
		return
	}
	n, err := checkCommon(req.N, req.Stop, "max_tokens", req.MaxTokens)
	if err != nil {
		abortErr(c, err)
		return
	}
	if err := req.checkUnsupported(n); err != nil {
		abortErr(c, err)
		return
	}
	topN := -1
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > maxTopLogprobs {
			abortErr(c, errInvalid("logprobs", "logprobs %d is outside [0, %d]", *req.Logprobs, maxTopLogprobs))
			return
		}
		topN = *req.Logprobs
	}
	maxTokens := 16
	if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	}
	ctx := c.Request.Context()
	lm, err := s.acquireModel(ctx, req.Model)
	if err != nil {
		abortErr(c, err)
		return
	}
	defer s.models.release(lm)
	sp, err := req.samplingFields.samplingParams(lm.eng.Info().VocabSize)
	if err != nil {
		abortErr(c, err)
		return
	}
	prompts, err := promptTokens(lm.eng, req.Prompt, "prompt")
	if err != nil {
		abortErr(c, err)
		return
	}
	for _, p := range prompts {
		if maxTokens > lm.sched.ctxLen-len(p) { // not len+max: max_tokens may be near MaxInt
			abortErr(c, contextError(lm.sched.ctxLen, len(p), maxTokens))
			return
		}
	}

	id, created := newID("cmpl-"), time.Now().Unix()
	resp := completionResponse{ID: id, Object: "text_completion", Created: created, Model: req.Model, SystemFingerprint: systemFingerprint}
	var u usage
	var sse *sseWriter
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	if req.Stream {
		sse = &sseWriter{c: c}
	}
	for pi, prompt := range prompts {
		for k := range n {
			index := pi*n + k
			gp := genParams{prompt: prompt, maxTokens: maxTokens, sampling: withSeed(sp, k), stop: req.Stop,
				topN: topN, promptLogprobs: req.Echo && topN >= 0}
			var lp legacyBuilder
			chunk := func(ch completionChoice) error {
				return sse.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: req.Model,
					SystemFingerprint: systemFingerprint, Choices: []completionChoice{ch}, nullUsage: includeUsage})
			}
			if sse != nil {
				if req.Echo {
					gp.onPrompt = func(toks []tokenInfo) error {
						ch := completionChoice{Index: index, Text: lp.echo(lm.eng, prompt, toks, topN >= 0)}
						if topN >= 0 {
							ch.Logprobs = lp.all()
						}
						return chunk(ch)
					}
				}
				gp.onDelta = func(text string, toks []tokenInfo) error {
					ch := completionChoice{Text: text, Index: index}
					if topN >= 0 {
						ch.Logprobs = lp.add(lm.eng, toks)
					}
					return chunk(ch)
				}
			}
			out := s.generateChoice(ctx, c, sse, lm, req.Model, gp, &u)
			if out == nil {
				return
			}
			finish := out.Finish
			if sse != nil {
				if err := chunk(completionChoice{Index: index, FinishReason: &finish}); err != nil {
					return
				}
				continue
			}
			ch := completionChoice{Index: index, FinishReason: &finish, Text: out.Text}
			if req.Echo {
				ch.Text = lp.echo(lm.eng, prompt, out.Prompt, topN >= 0) + out.Text
			}
			if topN >= 0 {
				lp.add(lm.eng, out.Tokens)
				ch.Logprobs = lp.all()
			}
			resp.Choices = append(resp.Choices, ch)
		}
	}
	if sse != nil {
		if includeUsage {
			if err := sse.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: req.Model, SystemFingerprint: systemFingerprint,
				Choices: []completionChoice{}, Usage: &u}); err != nil {
				return
			}
		}
		_ = sse.done()
		return
	}
	resp.Usage = &u
	c.JSON(http.StatusOK, resp)
}

// legacyBuilder accumulates the legacy logprobs object, tracking the
// character offset of each token in the returned text.
type legacyBuilder struct {
	lp   legacyLogprobs
	base int // characters before the next token
}

// echo returns the prompt as echoed, its tokens' text with special tokens
// (BOS) left out, and when withLP adds its tokens (the first without a
// logprob: nothing predicts it). text_offset values index into this text.
func (b *legacyBuilder) echo(eng Engine, prompt []int32, toks []tokenInfo, withLP bool) string {
	var text []byte
	for i, id := range prompt {
		piece := eng.TokenBytes(id)
		if eng.IsSpecial(id) {
			piece = nil
		}
		if withLP && i < len(toks) {
			t := toks[i]
			b.lp.Tokens = append(b.lp.Tokens, string(t.Text))
			b.lp.TextOffset = append(b.lp.TextOffset, b.base)
			if t.HasLP {
				v := jsonFloat(t.Logprob)
				b.lp.TokenLogprobs = append(b.lp.TokenLogprobs, &v)
				b.lp.TopLogprobs = append(b.lp.TopLogprobs, topMap(eng, t.Top))
			} else {
				b.lp.TokenLogprobs = append(b.lp.TokenLogprobs, nil)
				b.lp.TopLogprobs = append(b.lp.TopLogprobs, nil)
			}
		}
		b.base += utf8.RuneCount(piece)
		text = append(text, piece...)
	}
	return string(text)
}

// add appends generated tokens and returns just their part.
func (b *legacyBuilder) add(eng Engine, toks []tokenInfo) *legacyLogprobs {
	part := legacyLogprobs{Tokens: []string{}, TokenLogprobs: []*jsonFloat{}, TopLogprobs: []map[string]jsonFloat{}, TextOffset: []int{}}
	for _, t := range toks {
		v := jsonFloat(t.Logprob)
		part.Tokens = append(part.Tokens, string(eng.TokenBytes(t.ID)))
		part.TokenLogprobs = append(part.TokenLogprobs, &v)
		part.TopLogprobs = append(part.TopLogprobs, topMap(eng, t.Top))
		part.TextOffset = append(part.TextOffset, b.base)
		b.base += utf8.RuneCount(t.Text)
	}
	b.lp.Tokens = append(b.lp.Tokens, part.Tokens...)
	b.lp.TokenLogprobs = append(b.lp.TokenLogprobs, part.TokenLogprobs...)
	b.lp.TopLogprobs = append(b.lp.TopLogprobs, part.TopLogprobs...)
	b.lp.TextOffset = append(b.lp.TextOffset, part.TextOffset...)
	return &part
}

func (b *legacyBuilder) all() *legacyLogprobs {
	if b.lp.Tokens == nil {
		return &legacyLogprobs{Tokens: []string{}, TokenLogprobs: []*jsonFloat{}, TopLogprobs: []map[string]jsonFloat{}, TextOffset: []int{}}
	}
	return &b.lp
}

// topMap is one position's alternatives keyed by token text. Tokens with
// the same text (rare) keep the most likely one.
func topMap(eng Engine, top []sample.Candidate) map[string]jsonFloat {
	m := make(map[string]jsonFloat, len(top))
	for _, c := range top {
		k := string(eng.TokenBytes(c.ID))
		if _, dup := m[k]; !dup {
			m[k] = jsonFloat(c.Score)
		}
	}
	return m
}
