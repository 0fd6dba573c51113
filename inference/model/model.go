// Package model runs llama-family transformers (llama, qwen2) from GGUF
// files: hyperparameters from the metadata, weights used in place from the
// mapped file, a multi-threaded forward pass over a per-sequence KV cache.
package model

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/inference/kernels"
	"github.com/foretoken/foretoken/inference/tokenizer"
)

// CacheType is the element type of a sequence's KV cache.
type CacheType int

const (
	CacheF16 CacheType = iota // half the memory of F32; what llama.cpp uses by default
	CacheF32
	// CacheQ8_0 stores keys and values in blocks of 32 8-bit values with
	// one scale: a little over half the memory of F16. It needs a head
	// dimension that is a multiple of 32.
	CacheQ8_0
)

func (c CacheType) String() string {
	switch c {
	case CacheF32:
		return "f32"
	case CacheQ8_0:
		return "q8_0"
	}
	return "f16"
}

// ParseCacheType maps "f16", "f32" or "q8_0" to a CacheType.
func ParseCacheType(s string) (CacheType, error) {
	switch s {
	case "f16", "F16", "":
		return CacheF16, nil
	case "f32", "F32":
		return CacheF32, nil
	case "q8_0", "Q8_0":
		return CacheQ8_0, nil
	}
	return 0, fmt.Errorf("unknown KV cache type %q (supported: f16, f32, q8_0)", s)
}

// Options tune how a model runs.
type Options struct {
	// Threads is the number of worker threads, 0 for one per CPU.
	Threads int
	// BatchSize is the most positions one forward step processes; longer
	// inputs are fed in several steps. 0 means 512.
	BatchSize int
	// CacheType is the KV cache element type of new sequences.
	CacheType CacheType
	// NoPrefault skips reading every page of the weights at load time.
	// Prefaulting makes loading slower and the first request as fast as
	// the others (llama.cpp does the same with MAP_POPULATE).
	NoPrefault bool
}

// ErrContextFull is wrapped by the error Forward returns when the tokens do
// not fit in the sequence's context.
var ErrContextFull = errors.New("context full")

// Model is a loaded model. Its forward passes are serialized: one runs at a
// time, using all worker threads; ForwardBatch serves several sequences in
// one pass.
type Model struct {
	Config    Config
	File      *gguf.File
	Tokenizer *tokenizer.Tokenizer

	opts Options
	w    *weights
	pool *pool

	mu sync.Mutex // guards s and the forward pass
	s  *scratch
}

// Load opens the GGUF file at path and prepares its model to run.
func Load(path string, opts Options) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := New(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

// New prepares the model in an opened file, which it then owns: Close
// closes it.
func New(f *gguf.File, opts Options) (*Model, error) {
	cfg, err := readConfig(f)
	if err != nil {
		return nil, err
	}
	w, err := loadWeights(f, &cfg)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if n := tok.VocabSize(); n > cfg.Vocab {
		return nil, fmt.Errorf("the tokenizer has %d tokens but token_embd.weight only %d rows", n, cfg.Vocab)
	}
	if opts.CacheType == CacheQ8_0 && cfg.HeadDim%q8Block != 0 {
		return nil, fmt.Errorf("a q8_0 KV cache needs a head dimension that is a multiple of %d, this model's is %d: use f16", q8Block, cfg.HeadDim)
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.NumCPU()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	m := &Model{Config: cfg, File: f, Tokenizer: tok, opts: opts, w: w}
	m.s = newScratch(&m.Config, opts)
	m.pool = newPool(opts.Threads)
	if !opts.NoPrefault {
		pf := &prefaultTask{f: f}
		m.pool.run(pf, len(f.Tensors))
	}
	return m, nil
}

// prefaultTask reads one byte of every memory page of each tensor, so
// that the mapped file is resident before the first forward pass.
type prefaultTask struct {
	f   *gguf.File
	sum atomic.Uint32 // keeps the reads from being optimized away
}

func (t *prefaultTask) do(_, i int) {
	data := t.f.TensorData(&t.f.Tensors[i])
	var s byte
	for off := 0; off < len(data); off += 4096 {
		s += data[off]
	}
	t.sum.Add(uint32(s))
}

// Threads is the number of worker threads.
func (m *Model) Threads() int { return m.opts.Threads }

// Options returns the options the model runs with (defaults filled in).
func (m *Model) Options() Options { return m.opts }

// Close stops the workers and unmaps the file. Sequences of the model must
// not be used afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool != nil {
		m.pool.close()
		m.pool = nil
	}
	return m.File.Close()
}

// scratch holds the activations of one forward step, sized for BatchSize
// positions, reused by every step so that decoding allocates nothing.
type scratch struct {
	x, xb, tmp []float32       // [batch][dim]: residual, normed, projection out
	q, k, v    []float32       // [batch][heads*headDim], [batch][kvDim] x2
	att        []float32       // [batch][heads*valueDim]
	gate, up   []float32       // [batch][ffn]
	cos, sin   []float32       // [batch][ropeDim/2]
	logits     []float32       // [rows asked][vocab], grown on demand
	rowSeq     []int32         // per position: index of its sequence
	rowPos     []int32         // per position: position in its sequence
	tokens     []int32         // per position: token
	outRows    []int32         // positions whose logits are asked for
	scores     [][]float32     // per worker: attention scores of a head group
	attnIn     []kernels.Input // per worker: queries, then scores, as kernel input
	inA, inB   kernels.Input
	inC        kernels.Input
	tokIn      []kernels.Input // [3][smallBatch]: per-token inputs, in place of inA..inC (see smallBatch)
	mat        matTask
	attn       attnTask
	act        [1024]float32 // swiglu's temporary
}

func newScratch(c *Config, o Options) *scratch {
	b := o.BatchSize
	return &scratch{
		x:      make([]float32, b*c.Dim),
		xb:     make([]float32, b*c.Dim),
		tmp:    make([]float32, b*c.Dim),
		q:      make([]float32, b*c.Heads*c.HeadDim),
		k:      make([]float32, b*c.KVHeads*c.HeadDim),
		v:      make([]float32, b*c.KVHeads*c.ValueDim),
		att:    make([]float32, b*c.Heads*c.ValueDim),
		gate:   make([]float32, b*c.FFN),
		up:     make([]float32, b*c.FFN),
		cos:    make([]float32, b*c.RopeDim/2),
		sin:    make([]float32, b*c.RopeDim/2),
		rowSeq: make([]int32, b),
		rowPos: make([]int32, b),
		tokens: make([]int32, b),
		scores: make([][]float32, o.Threads),
		attnIn: make([]kernels.Input, o.Threads),
		tokIn:  make([]kernels.Input, 3*smallBatch),
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
