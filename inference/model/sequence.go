package model

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// LogitsMode says for which positions Forward computes logits.
type LogitsMode int

const (
	LogitsLast LogitsMode = iota // the last position fed (the default)
	LogitsAll                    // every position fed (scoring, echo)
	LogitsNone                   // none (e.g. filling the cache only)
)

// ForwardOptions choose what a forward pass returns besides the cache
// update. What is not asked for costs nothing.
type ForwardOptions struct {
	Logits LogitsMode
	// Hidden returns the final hidden state (after the output norm) of
	// every position fed: the model's embeddings.
	Hidden bool
	// LayerStates returns the residual stream after each layer at the last
	// position fed, for the logit lens.
	LayerStates bool
	// Attention returns, for the last position fed, the attention weights
	// of every layer and head over the positions of the cache.
	Attention bool
}

// Output is the result of a forward pass. Its slices belong to the
// sequence and are overwritten by its next Forward: copy what you keep.
type Output struct {
	// Logits holds Rows rows of Vocab raw logits, one after another.
	Logits []float32
	Rows   int
	Vocab  int
	// Hidden holds one row of Dim values per position fed (ForwardOptions.Hidden).
	Hidden []float32
	// Layers[l] is the residual stream after layer l at the last position.
	Layers [][]float32
	// Attention[l][h] holds the weights of layer l, head h over positions
	// 0..Len()-1 for the last position fed.
	Attention [][][]float32
}

// Row returns the logits of row i.
func (o *Output) Row(i int) []float32 { return o.Logits[i*o.Vocab : (i+1)*o.Vocab] }

// Last returns the logits of the last row.
func (o *Output) Last() []float32 { return o.Row(o.Rows - 1) }

// Sequence is one stream of tokens with its own KV cache. A Sequence is
// not safe for concurrent use; different sequences of a model may be used
// from different goroutines (their passes are serialized).
type Sequence struct {
	m      *Model
	ctxLen int
	n      int
	ctype  CacheType
	// Per layer, the keys of each KV head lie position after position
	// ([kvHeads][ctxLen][headDim]) and the values transposed
	// ([kvHeads][valueDim][vCols]), so that both attention products are
	// matrix products of the kernels package over the cache in place.
	k16, v16 [][]uint16
	k32, v32 [][]float32
	kb, vb   [][]byte // the same memory as bytes, for the kernels
	// In a Q8_0 cache a row of values holds vCols positions (ctxLen
	// rounded up to whole blocks) in blocks of 32. The block being filled
	// is quantized again at the end of every step from vTail[layer], the
	// exact values of its positions so far ([kvHeads*valueDim][32]), so
	// each value is rounded once per block scale, not repeatedly.
	vTail [][]float32
	vCols int

	self    [1]*Sequence // s itself, as the one-sequence batch of Forward
	out     Output
	layers  []float32 // backing store of out.Layers
	attnBuf []float32 // backing store of out.Attention: [layers][heads][ctxLen]
	// what the current Forward asked for
	opts ForwardOptions
	// rows of this sequence in the current step
	first, count int
	fed          int // positions fed by the current Forward so far
	total        int // positions the current Forward feeds
}

// NewSequence returns an empty sequence whose cache holds ctxLen positions
// (the model's context length when ctxLen <= 0).
func (m *Model) NewSequence(ctxLen int) *Sequence {
	if ctxLen <= 0 {
		ctxLen = m.Config.ContextLength
	}
	c := &m.Config
	s := &Sequence{m: m, ctxLen: ctxLen, ctype: m.opts.CacheType, vCols: ctxLen}
	kd, vd := c.KVHeads*c.HeadDim, c.KVHeads*c.ValueDim
	s.kb = make([][]byte, c.Layers)
	s.vb = make([][]byte, c.Layers)
	switch s.ctype {
	case CacheQ8_0:
		s.vCols = (ctxLen + q8Block - 1) / q8Block * q8Block
		s.vTail = make([][]float32, c.Layers)
		for l := range c.Layers {
			s.kb[l] = make([]byte, q8Bytes(ctxLen*kd))
			s.vb[l] = make([]byte, q8Bytes(s.vCols*vd))
			s.vTail[l] = make([]float32, vd*q8Block)
		}
	case CacheF32:
		s.k32 = make([][]float32, c.Layers)
		s.v32 = make([][]float32, c.Layers)
		for l := range c.Layers {
			s.k32[l] = make([]float32, ctxLen*kd)
			s.v32[l] = make([]float32, ctxLen*vd)
			s.kb[l], s.vb[l] = asBytes(s.k32[l]), asBytes(s.v32[l])
		}
	default:
		s.k16 = make([][]uint16, c.Layers)
		s.v16 = make([][]uint16, c.Layers)
		for l := range c.Layers {
			s.k16[l] = make([]uint16, ctxLen*kd)
			s.v16[l] = make([]uint16, ctxLen*vd)
			s.kb[l], s.vb[l] = asBytes(s.k16[l]), asBytes(s.v16[l])
		}
	}
	return s
}

// Model returns the model the sequence belongs to.
func (s *Sequence) Model() *Model { return s.m }

// Len is the number of positions in the cache.
func (s *Sequence) Len() int { return s.n }

// Cap is the context length: the most positions the cache holds.
func (s *Sequence) Cap() int { return s.ctxLen }

// Truncate drops the positions from n on, so that a new input sharing the
// first n tokens can reuse the cache.
func (s *Sequence) Truncate(n int) {
	if n < 0 {
		n = 0
	}
	if n < s.n {
		s.n = n
		if s.ctype == CacheQ8_0 {
			s.restoreTail()
		}
	}
}

// restoreTail refills the values' tail from the block holding position
// s.n, which the next write continues. The positions before s.n come back
// as they were rounded; the next write rounds them again with that
// block's new scale, a second rounding of a few values only.
func (s *Sequence) restoreTail() {
	c := &s.m.Config
	b, k := s.n/q8Block, s.n%q8Block
	if k == 0 {
		return // the next write starts a fresh block
	}
	rowBytes := q8Bytes(s.vCols)
	for l := range c.Layers {
		for row := range c.KVHeads * c.ValueDim {
			tail := s.vTail[l][row*q8Block : (row+1)*q8Block]
			off := row*rowBytes + b*q8BlockBytes
			if err := ggml.Dequantize(ggml.Q8_0, s.vb[l][off:off+q8BlockBytes], tail); err != nil {
				panic(fmt.Sprintf("model: q8_0 cache block: %v", err)) // sizes are fixed at NewSequence
			}
			clear(tail[k:])
		}
	}
}

// Q8_0 blocks: 32 values, an fp16 scale and 32 signed bytes.
const (
	q8Block      = 32
	q8BlockBytes = 34
)

// q8Bytes is the size of n values (a whole number of blocks) in Q8_0.
func q8Bytes(n int) int { return n / q8Block * q8BlockBytes }

// Forward feeds tokens at the sequence's current position: one batched
// pass for a prompt (split in steps of the model's batch size), or one
// decode step, and returns what opts asks for. The returned Output stays
// valid until the sequence's next Forward.
func (s *Sequence) Forward(ctx context.Context, tokens []int32, opts ForwardOptions) (*Output, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("forward: no tokens")
	}
	if err := s.checkFit(len(tokens)); err != nil {
		return nil, err
	}
	if err := s.m.checkTokens(tokens); err != nil {
		return nil, err
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool == nil {
		return nil, fmt.Errorf("forward: model is closed")
	}
	s.begin(len(tokens), opts)
	s.self[0] = s
	for done := 0; done < len(tokens); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(len(tokens)-done, m.opts.BatchSize)
		s.first, s.count = 0, n
		m.step(s.self[:], tokens[done:done+n])
		done += n
	}
	return &s.out, nil
}

// ForwardBatch runs one forward pass over the tokens of several sequences
// at once (tokens[i] for seqs[i], typically one decode token each), so the
// weights are read once for all of them. outs[i] receives seqs[i]'s output.
// The total number of tokens must not exceed the model's batch size.
func (m *Model) ForwardBatch(ctx context.Context, seqs []*Sequence, tokens [][]int32, opts ForwardOptions, outs []*Output) error {
	if len(seqs) != len(tokens) || len(outs) < len(seqs) {
		return fmt.Errorf("forward batch: %d sequences, %d token lists, %d outputs", len(seqs), len(tokens), len(outs))
	}
	total := 0
	for i, s := range seqs {
		if s.m != m {
			return fmt.Errorf("forward batch: sequence %d belongs to another model", i)
		}
		if len(tokens[i]) == 0 {
			return fmt.Errorf("forward batch: no tokens for sequence %d", i)
		}
		for _, o := range seqs[:i] {
			if o == s {
				return fmt.Errorf("forward batch: sequence %d appears twice", i)
			}
		}
		if err := s.checkFit(len(tokens[i])); err != nil {
			return fmt.Errorf("sequence %d: %w", i, err)
		}
		if err := m.checkTokens(tokens[i]); err != nil {
			return fmt.Errorf("sequence %d: %w", i, err)
		}
		total += len(tokens[i])
	}
	if total > m.opts.BatchSize {
		return fmt.Errorf("forward batch: %d tokens exceed the batch size %d", total, m.opts.BatchSize)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool == nil {
		return fmt.Errorf("forward: model is closed")
	}
	flat := m.s.tokens[:0]
	for i, s := range seqs {
		s.begin(len(tokens[i]), opts)
		s.first, s.count = len(flat), len(tokens[i])
		flat = append(flat, tokens[i]...)
	}
	m.step(seqs, flat)
	for i, s := range seqs {
		outs[i] = &s.out
	}
	return nil
}

func (s *Sequence) checkFit(n int) error {
	if s.n+n <= s.ctxLen {
		return nil
	}
	if s.n == 0 {
		return fmt.Errorf("%w: the input of %d tokens is longer than the context of %d", ErrContextFull, n, s.ctxLen)
	}
	return fmt.Errorf("%w: %d more tokens after %d exceed the context of %d", ErrContextFull, n, s.n, s.ctxLen)
}

func (m *Model) checkTokens(tokens []int32) error {
	for i, t := range tokens {
		if t < 0 || int(t) >= m.Config.Vocab {
			return fmt.Errorf("token %d at index %d is outside the vocabulary of %d", t, i, m.Config.Vocab)
		}
	}
	return nil
}

// begin sizes the sequence's outputs for a Forward of n tokens.
func (s *Sequence) begin(n int, opts ForwardOptions) {
	c := &s.m.Config
	s.opts = opts
	s.fed, s.total = 0, n
	o := &s.out
	o.Vocab = c.Vocab
	switch opts.Logits {
	case LogitsAll:
		o.Rows = n
	case LogitsLast:
		o.Rows = 1
	default:
		o.Rows = 0
	}
	o.Logits = grow(o.Logits, o.Rows*c.Vocab)
	o.Hidden = o.Hidden[:0]
	if opts.Hidden {
		o.Hidden = grow(o.Hidden, n*c.Dim)
	}
	o.Layers = o.Layers[:0]
	if opts.LayerStates {
		s.layers = grow(s.layers, c.Layers*c.Dim)
		for l := range c.Layers {
			o.Layers = append(o.Layers, s.layers[l*c.Dim:(l+1)*c.Dim])
		}
	}
	o.Attention = o.Attention[:0]
	if opts.Attention {
		s.attnBuf = grow(s.attnBuf, c.Layers*c.Heads*s.ctxLen)
		if cap(o.Attention) < c.Layers {
			o.Attention = make([][][]float32, c.Layers)
			for l := range o.Attention {
				o.Attention[l] = make([][]float32, c.Heads)
			}
		}
		o.Attention = o.Attention[:c.Layers]
		kv := s.n + n
		for l := range c.Layers {
			for h := range c.Heads {
				base := (l*c.Heads + h) * s.ctxLen
				o.Attention[l][h] = s.attnBuf[base : base+kv]
			}
		}
	}
}

// asBytes views a slice of fixed-size numbers as its bytes (little-endian
// on the machines we run on, as GGUF data is).
func asBytes[T uint16 | float32](x []T) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), len(x)*int(unsafe.Sizeof(x[0])))
}

// ggmlType is the element type of the cache as a weight type of the kernels.
func (c CacheType) ggmlType() ggml.Type {
	switch c {
	case CacheF32:
		return ggml.F32
	case CacheQ8_0:
		return ggml.Q8_0
	}
	return ggml.F16
}

// rowBytes is the size of a cache row of cols values (whole blocks).
func (c CacheType) rowBytes(cols int) int {
	t := c.ggmlType()
	return cols / t.BlockSize() * t.TypeSize()
}
