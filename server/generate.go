package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/foretoken/foretoken/inference/sample"
)

// genParams is one generation, decoded from a request.
type genParams struct {
	prompt         []int32
	maxTokens      int
	sampling       sample.Params
	stop           []string
	topN           int  // top alternatives per generated token; -1: no logprobs at all
	promptLogprobs bool // also score the prompt (echo with logprobs)
	json           bool // JSON mode: the answer is a JSON object

	// onPrompt, if set, is called after the prompt is processed with its
	// tokens (scored when promptLogprobs).
	onPrompt func(toks []tokenInfo) error
	// onDelta, if set, receives text as it becomes final.
	onDelta deltaFunc
}

// tokenInfo is a token with, when asked, its log probability under the
// prediction made before it and the top alternatives of that prediction.
type tokenInfo struct {
	ID      int32
	Text    []byte // what the token adds to the text (nothing for a generated control token)
	Logprob float32
	HasLP   bool // false for the first prompt token, which nothing predicts
	Top     []sample.Candidate
	Offset  int // byte offset of Text in the text the tokens make up
}

// genOutput is a finished generation.
type genOutput struct {
	Prompt    []tokenInfo // only when promptLogprobs
	Tokens    []tokenInfo // generated tokens whose text was (at least partly) kept
	Text      string
	Finish    string // "stop" or "length"
	Generated int    // tokens sampled, the end-of-generation token excluded
	Cached    int    // prompt tokens reused from the slot's KV cache
}

// deltaFunc receives text that may be sent now and the tokens it came from.
// An error (the client is gone) ends the generation.
type deltaFunc func(text string, toks []tokenInfo) error

// contextError reports a prompt and budget that do not fit the context.
func contextError(ctxLen, promptLen, maxTokens int) error {
	return errInvalid("max_tokens", "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the prompt, %d for the completion). Please reduce the prompt or max_tokens.",
		ctxLen, uint64(promptLen)+uint64(maxTokens), promptLen, maxTokens)
}

// generate runs one generation on a slot of lm: prompt prefill (reusing
// the slot's cached prefix), then sampling until a stop condition. It calls
// onDelta (if not nil) as text becomes final.
func generate(ctx context.Context, lm *loadedModel, p genParams) (*genOutput, error) {
	sched := lm.sched
	if len(p.prompt) == 0 {
		return nil, errInvalid("prompt", "the prompt is empty (no tokens)")
	}
	if p.maxTokens > sched.ctxLen-len(p.prompt) {
		return nil, contextError(sched.ctxLen, len(p.prompt), p.maxTokens)
	}
	sl, err := sched.acquire(ctx, p.prompt)
	if err != nil {
		return nil, err
	}
	defer sched.release(sl)
	return runOnSlot(ctx, lm.eng, sched, sl, p)
}

func runOnSlot(ctx context.Context, eng Engine, sched *scheduler, sl *slot, p genParams) (out *genOutput, err error) {
	seq, ctxLen, onDelta := sched.sequence(sl), sched.ctxLen, p.onDelta
	if len(sl.tokens) != seq.Len() {
		sl.tokens = sl.tokens[:0]
		seq.Truncate(0)
	}
	reuse := 0
	if !p.promptLogprobs {
		// At least the last prompt token is fed again: its logits are needed.
		reuse = min(commonPrefix(sl.tokens, p.prompt), len(p.prompt)-1)
	}
	seq.Truncate(reuse)
	sl.tokens = sl.tokens[:reuse]
	defer func() {
		if err != nil {
			// A failed or cancelled forward pass may leave the cache
			// half-written; start this slot afresh next time.
			seq.Truncate(0)
			sl.tokens = sl.tokens[:0]
		}
	}()

	res, err := seq.Forward(ctx, p.prompt[reuse:], Want{AllLogits: p.promptLogprobs})
	if err != nil {
		return nil, fmt.Errorf("prompt: %w", err)
	}
	sl.tokens = append(sl.tokens, p.prompt[reuse:]...)
	out = &genOutput{Cached: reuse, Finish: "length"}

	sc := scorer{topN: p.topN}
	if p.promptLogprobs {
		off := 0
		for i, id := range p.prompt {
			ti := tokenInfo{ID: id, Text: eng.TokenBytes(id), Offset: off}
			if i > 0 {
				sc.load(res.Logits[i-1])
				ti.Logprob, ti.Top = sc.pick(id)
				ti.HasLP = true
			}
			off += len(ti.Text)
			out.Prompt = append(out.Prompt, ti)
		}
	}
	if p.onPrompt != nil {
		if err := p.onPrompt(out.Prompt); err != nil {
			return nil, err
		}
	}
	if p.maxTokens == 0 {
		return out, nil
	}

	logits := res.Logits[len(res.Logits)-1]
	one := []int32{0} // the decode step's input, reused rather than allocated per token
	decode := func(id int32) (*Result, error) {
		one[0] = id
		return seq.Forward(ctx, one, Want{})
	}
	if b := sched.batch; b != nil {
		b.join()
		defer b.leave()
		decode = func(id int32) (*Result, error) { return b.decode(ctx, seq, id) }
	}
	// The penalties look back over sl.tokens: the prompt (the cached
	// prefix kept is the prompt's) and every token fed since.
	sampler := sample.New(p.sampling)
	stop := sample.Stop{Strings: p.stop, MaxTokens: p.maxTokens}
	dec := eng.NewDecoder()
	var (
		text   strings.Builder
		unsent []tokenInfo // tokens whose text has not been passed to onDelta
		offset int         // bytes of generated text so far, held-back included
	)
	var jc *jsonConstraint
	if p.json {
		jc = &jsonConstraint{}
	}
	// emit appends final text and passes it on with the tokens it holds.
	emit := func(s string, last bool) error {
		text.WriteString(s)
		if onDelta == nil {
			return nil
		}
		keep := keptTokens(unsent, text.Len())
		if s == "" && (!last || len(keep) == 0) {
			return nil
		}
		err := onDelta(s, keep)
		unsent = append(unsent[:0], unsent[len(keep):]...)
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.topN >= 0 {
			// The logprob is that of the model's own distribution, before
			// bias, penalties and temperature (Sample applies them to
			// logits in place), as OpenAI reports it.
			sc.load(logits)
		}
		if jc != nil {
			// Sample modifies logits: keep them for a second draw.
			jc.raw = append(jc.raw[:0], logits...)
		}
		id := sampler.Sample(logits, sl.tokens)
		if jc != nil && !jc.allows(eng, id) {
			// As llama.cpp does with grammars: draw again among the
			// tokens that keep the JSON. Checking one token first and the
			// vocabulary only when it fails draws from the same
			// distribution, at a fraction of the cost.
			copy(logits, jc.raw)
			if !jc.mask(eng, logits) {
				// No token of the vocabulary can go on: end as if cut short.
				if err := emit(stop.Flush()+dec.Flush(), true); err != nil {
					return nil, err
				}
				break
			}
			id = sampler.Sample(logits, sl.tokens)
		}
		ti := tokenInfo{ID: id, HasLP: p.topN >= 0}
		if ti.HasLP {
			ti.Logprob, ti.Top = sc.pick(id)
		}
		eog := eng.IsEOG(id)
		var piece string
		if !eog {
			out.Generated++
			// Control tokens (a stray BOS) are not text, as in llama.cpp.
			if !eng.IsSpecial(id) {
				ti.Text = eng.TokenBytes(id)
			}
			ti.Offset = offset
			offset += len(ti.Text)
			out.Tokens = append(out.Tokens, ti)
			unsent = append(unsent, ti)
			piece = dec.Add(id)
		}
		s, reason := stop.Token(piece, eog)
		if jc != nil && !eog {
			jc.st.feed(ti.Text)
			if (reason == sample.StopNone || reason == sample.StopLength) && jc.st.complete() {
				reason = sample.StopEOG // the object is closed: nothing may follow
			}
		}
		if reason == sample.StopLength || reason == sample.StopEOG {
			// Bytes held back can no longer complete a character.
			s += stop.Flush() + dec.Flush()
		}
		if err := emit(s, reason != sample.StopNone); err != nil {
			return nil, err
		}
		if reason != sample.StopNone {
			if reason != sample.StopLength {
				out.Finish = "stop"
			}
			break
		}
		if seq.Len()+1 > ctxLen {
			if err := emit(stop.Flush()+dec.Flush(), true); err != nil {
				return nil, err
			}
			break
		}
		res, err := decode(id)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		sl.tokens = append(sl.tokens, id)
		logits = res.Logits[len(res.Logits)-1]
	}
	out.Text = text.String()
	out.Tokens = keptTokens(out.Tokens, len(out.Text))
	return out, nil
}

// scorer turns logits into a token's logprob and the top alternatives.
type scorer struct {
	topN int
	lsm  []float32
	top  []sample.Candidate
}

func (s *scorer) load(logits []float32) {
	s.lsm = sample.LogSoftmax(grow(s.lsm, len(logits)), logits)
}

// pick returns id's logprob and a copy of the topN alternatives.
func (s *scorer) pick(id int32) (float32, []sample.Candidate) {
	if s.topN <= 0 {
		return s.lsm[id], nil
	}
	s.top = sample.TopK(s.top, s.lsm, s.topN)
	return s.lsm[id], append([]sample.Candidate(nil), s.top...)
}

// keptTokens drops the tokens that start at or after end: those a stop
// string swallowed.
func keptTokens(toks []tokenInfo, end int) []tokenInfo {
	n := len(toks)
	for n > 0 && toks[n-1].Offset >= end && len(toks[n-1].Text) > 0 {
		n--
	}
	return toks[:n]
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
