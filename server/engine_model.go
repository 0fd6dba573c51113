package server

import (
	"context"
	"fmt"

	"github.com/foretoken/foretoken/inference/chat"
	"github.com/foretoken/foretoken/inference/model"
	"github.com/foretoken/foretoken/inference/tokenizer"
)

// modelEngine is the Engine of a GGUF model run by inference/model.
type modelEngine struct {
	m    *model.Model
	tok  *tokenizer.Tokenizer
	tmpl *chat.Template
	info ModelInfo
	bos  string // BOS and EOS text, for chat templates
	eos  string
}

// LoadModel loads the GGUF model at path with its tokenizer and chat
// template.
func LoadModel(path string, threads int) (Engine, error) {
	return LoadModelOptions(path, model.Options{Threads: threads})
}

// LoadModelOptions is LoadModel with all of the model's run options.
func LoadModelOptions(path string, opts model.Options) (Engine, error) {
	m, err := model.Load(path, opts)
	if err != nil {
		return nil, err
	}
	return newModelEngine(m), nil
}

func newModelEngine(m *model.Model) *modelEngine {
	tok := m.Tokenizer
	src, _ := m.File.String("tokenizer.chat_template")
	tmpl, err := chat.New(src)
	if err != nil {
		// A template our engine cannot compile is no reason to refuse the
		// model: completions still work, chat uses ChatML.
		tmpl = chat.ChatML()
	}
	c := m.Config
	e := &modelEngine{m: m, tok: tok, tmpl: tmpl,
		info: ModelInfo{Arch: c.Arch, ContextLength: c.ContextLength, EmbeddingDim: c.Dim, VocabSize: c.Vocab,
			Layers: c.Layers, Heads: c.Heads, Pooling: "mean", HasTemplate: !tmpl.IsFallback()}}
	// llama.cpp's enum: 1 mean, 2 cls, 3 last. CLS pooling is for encoder
	// models, which we do not run.
	if pt, err := m.File.Uint32(c.Arch + ".pooling_type"); err == nil && pt == 3 {
		e.info.Pooling = "last"
	}
	if id := tok.BOS(); id != tokenizer.NoToken {
		e.bos = string(tok.Piece(id))
	}
	if id := tok.EOS(); id != tokenizer.NoToken {
		e.eos = string(tok.Piece(id))
	}
	return e
}

func (e *modelEngine) Info() ModelInfo { return e.info }

func (e *modelEngine) Tokenize(text string, addSpecial bool) ([]int32, error) {
	return e.tok.Encode(text, addSpecial, true), nil
}

func (e *modelEngine) TokenBytes(id int32) []byte { return e.tok.Piece(id) }
func (e *modelEngine) IsSpecial(id int32) bool    { return e.tok.IsControl(id) }
func (e *modelEngine) IsEOG(id int32) bool        { return e.tok.IsEOG(id) }
func (e *modelEngine) NewDecoder() Decoder {
	return e.tok.NewDecoder(tokenizer.DecodeOptions{})
}

func (e *modelEngine) Detokenize(ids []int32) string {
	return e.tok.Detokenize(ids, false, false)
}

func (e *modelEngine) RenderChat(ctx context.Context, msgs []chat.Message, tools []any) (string, error) {
	return e.tmpl.Render(ctx, chat.Request{Messages: msgs, AddGenerationPrompt: true, BOSToken: e.bos, EOSToken: e.eos, Tools: tools})
}

func (e *modelEngine) ChatStops() []string { return e.tmpl.StopStrings() }

func (e *modelEngine) NewSequence(ctxLen int) Sequence {
	return &modelSequence{s: e.m.NewSequence(ctxLen), m: e.m}
}

func (e *modelEngine) Close() error { return e.m.Close() }

// DecodeBatch runs one decode step of each sequence in one forward pass.
func (e *modelEngine) DecodeBatch(ctx context.Context, seqs []Sequence, tokens []int32) ([]*Result, error) {
	ms := make([]*model.Sequence, len(seqs))
	toks := make([][]int32, len(seqs))
	for i, s := range seqs {
		ms[i] = s.(*modelSequence).s
		toks[i] = tokens[i : i+1]
	}
	outs := make([]*model.Output, len(seqs))
	if err := e.m.ForwardBatch(ctx, ms, toks, model.ForwardOptions{Logits: model.LogitsLast}, outs); err != nil {
		return nil, err
	}
	res := make([]*Result, len(seqs))
	for i, s := range seqs {
		q := s.(*modelSequence)
		q.res = Result{Logits: append(q.res.Logits[:0], outs[i].Last())}
		res[i] = &q.res
	}
	return res, nil
}

type modelSequence struct {
	s    *model.Sequence
	m    *model.Model
	res  Result
	flat []float32 // layer states, one row after another, for Project
	lens []float32 // logit lens output
}

func (q *modelSequence) Len() int       { return q.s.Len() }
func (q *modelSequence) Cap() int       { return q.s.Cap() }
func (q *modelSequence) Truncate(n int) { q.s.Truncate(n) }

// Forward runs the model and presents its output as rows. The rows alias
// the sequence's buffers: they are valid until the next Forward.
func (q *modelSequence) Forward(ctx context.Context, tokens []int32, want Want) (*Result, error) {
	opts := model.ForwardOptions{Logits: model.LogitsLast, Hidden: want.Hidden,
		LayerStates: want.LayerLogits, Attention: want.Attention}
	switch {
	case want.AllLogits:
		opts.Logits = model.LogitsAll
	case want.Hidden:
		opts.Logits = model.LogitsNone
	}
	out, err := q.s.Forward(ctx, tokens, opts)
	if err != nil {
		return nil, err
	}
	r := &q.res
	r.Logits = r.Logits[:0]
	for i := range out.Rows {
		r.Logits = append(r.Logits, out.Row(i))
	}
	r.Hidden = out.Hidden
	r.Attention = out.Attention
	r.LayerLogits = r.LayerLogits[:0]
	if want.LayerLogits && len(out.Layers) > 0 {
		q.flat = q.flat[:0]
		for _, l := range out.Layers {
			q.flat = append(q.flat, l...)
		}
		vocab := q.m.Config.Vocab
		q.lens = grow(q.lens, len(out.Layers)*vocab)
		if err := q.m.Project(q.lens, q.flat); err != nil {
			return nil, fmt.Errorf("logit lens: %w", err)
		}
		for l := range out.Layers {
			r.LayerLogits = append(r.LayerLogits, q.lens[l*vocab:(l+1)*vocab])
		}
	}
	return r, nil
}
