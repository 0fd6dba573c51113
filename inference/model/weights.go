package model

import (
	"fmt"
	"slices"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/inference/kernels"
)

// matrix is a weight matrix used in place in the mapped file: Rows rows of
// Cols values of type Type, one row after another.
type matrix struct {
	Name     string
	Type     ggml.Type
	Data     []byte
	Rows     int
	Cols     int
	rowBytes int
}

// row returns the bytes of row r.
func (m *matrix) row(r int) []byte { return m.Data[r*m.rowBytes : (r+1)*m.rowBytes] }

type layer struct {
	attnNorm          []float32
	wq, wk, wv, wo    matrix
	bq, bk, bv        []float32 // nil without biases
	ffnNorm           []float32
	wGate, wUp, wDown matrix
}

type weights struct {
	tokEmbd   matrix
	outNorm   []float32
	output    matrix // token_embd when the output is tied
	tied      bool
	ropeFreqs []float32 // llama3 per-dimension divisors, or nil
	layers    []layer
}

// loader fetches tensors from a GGUF file and checks their shapes.
type loader struct {
	f *gguf.File
}

func (l loader) info(name string, dims ...int) (*gguf.TensorInfo, error) {
	t, ok := l.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	got := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		got[i] = int(d)
	}
	// Trailing dimensions of 1 are the same shape.
	for len(got) > len(dims) && got[len(got)-1] == 1 {
		got = got[:len(got)-1]
	}
	if !slices.Equal(got, dims) {
		return nil, fmt.Errorf("tensor %q has shape %v, want %v", name, got, dims)
	}
	return t, nil
}

// matrix maps the tensor name of shape [cols, rows] (ne0 first).
func (l loader) matrix(name string, cols, rows int) (matrix, error) {
	t, err := l.info(name, cols, rows)
	if err != nil {
		return matrix{}, err
	}
	if !kernels.Supported(t.Type) {
		return matrix{}, fmt.Errorf("tensor %q has type %v, which has no matrix product here", name, t.Type)
	}
	rb, err := t.Type.RowBytes(cols)
	if err != nil {
		return matrix{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	return matrix{Name: name, Type: t.Type, Data: l.f.TensorData(t), Rows: rows, Cols: cols, rowBytes: rb}, nil
}

// vector reads the float32 vector name of n values (norm weights, biases),
// converting F16/BF16 ones.
func (l loader) vector(name string, n int) ([]float32, error) {
	t, err := l.info(name, n)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if err := ggml.Dequantize(t.Type, l.f.TensorData(t), out); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return out, nil
}

func loadWeights(f *gguf.File, c *Config) (*weights, error) {
	l := loader{f}
	w := &weights{}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("tensor %q is missing", "token_embd.weight")
	}
	if len(emb.Dims) < 2 {
		return nil, fmt.Errorf("tensor %q has shape %v, want [%d, vocab]", "token_embd.weight", emb.Dims, c.Dim)
	}
	c.Vocab = int(emb.Dims[1])
	var err error
	if w.tokEmbd, err = l.matrix("token_embd.weight", c.Dim, c.Vocab); err != nil {
		return nil, err
	}
	if w.outNorm, err = l.vector("output_norm.weight", c.Dim); err != nil {
		return nil, err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if w.output, err = l.matrix("output.weight", c.Dim, c.Vocab); err != nil {
			return nil, err
		}
	} else {
		w.output, w.tied = w.tokEmbd, true
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		if w.ropeFreqs, err = l.vector("rope_freqs.weight", c.RopeDim/2); err != nil {
			return nil, err
		}
	} else if c.RopeScaling == "llama3" {
		return nil, fmt.Errorf("rope scaling llama3 needs the tensor rope_freqs.weight, which is missing")
	}

	qDim, kvDim, vDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.KVHeads*c.ValueDim
	w.layers = make([]layer, c.Layers)
	for i := range w.layers {
		ly := &w.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		steps := []func() error{
			func() (e error) { ly.attnNorm, e = l.vector(p+"attn_norm.weight", c.Dim); return },
			func() (e error) { ly.wq, e = l.matrix(p+"attn_q.weight", c.Dim, qDim); return },
			func() (e error) { ly.wk, e = l.matrix(p+"attn_k.weight", c.Dim, kvDim); return },
			func() (e error) { ly.wv, e = l.matrix(p+"attn_v.weight", c.Dim, vDim); return },
			func() (e error) { ly.wo, e = l.matrix(p+"attn_output.weight", c.Heads*c.ValueDim, c.Dim); return },
			func() (e error) { ly.ffnNorm, e = l.vector(p+"ffn_norm.weight", c.Dim); return },
			func() (e error) { ly.wGate, e = l.matrix(p+"ffn_gate.weight", c.Dim, c.FFN); return },
			func() (e error) { ly.wUp, e = l.matrix(p+"ffn_up.weight", c.Dim, c.FFN); return },
			func() (e error) { ly.wDown, e = l.matrix(p+"ffn_down.weight", c.FFN, c.Dim); return },
		}
		if c.QKVBias {
			steps = append(steps,
				func() (e error) { ly.bq, e = l.vector(p+"attn_q.bias", qDim); return },
				func() (e error) { ly.bk, e = l.vector(p+"attn_k.bias", kvDim); return },
				func() (e error) { ly.bv, e = l.vector(p+"attn_v.bias", vDim); return },
			)
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}
