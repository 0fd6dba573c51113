package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
)

// synthShape is the architecture of a model synth can imitate.
type synthShape struct {
	name       string
	arch       string // "llama" or "qwen2"
	layers     int
	dim        int
	heads      int
	kvHeads    int
	ffn        int
	ctx        int
	ropeBase   float32
	eps        float32
	tied       bool // no output.weight: the output reuses token_embd
	qkvBias    bool
	llama3Rope bool // Llama 3.x long-context RoPE: a rope_freqs tensor
}

var synthShapes = []synthShape{
	{name: "tinyllama-1.1b", arch: "llama", layers: 22, dim: 2048, heads: 32, kvHeads: 4, ffn: 5632, ctx: 2048, ropeBase: 10000, eps: 1e-5},
	{name: "llama-3.2-1b", arch: "llama", layers: 16, dim: 2048, heads: 32, kvHeads: 8, ffn: 8192, ctx: 131072, ropeBase: 500000, eps: 1e-5, tied: true, llama3Rope: true},
	{name: "qwen2.5-0.5b", arch: "qwen2", layers: 24, dim: 896, heads: 14, kvHeads: 2, ffn: 4864, ctx: 32768, ropeBase: 1e6, eps: 1e-6, tied: true, qkvBias: true},
	{name: "tiny", arch: "llama", layers: 2, dim: 256, heads: 4, kvHeads: 2, ffn: 512, ctx: 2048, ropeBase: 10000, eps: 1e-5},
}

func shapeNames() []string {
	var s []string
	for _, sh := range synthShapes {
		s = append(s, sh.name)
	}
	return s
}

func newSynthCmd() *cobra.Command {
	var (
		shape, vocab, typ, out string
		seed                   uint64
		threads                int
	)
	cmd := &cobra.Command{
		Use:   "synth --shape NAME --vocab VOCAB.gguf --type TYPE -o OUT.gguf [--seed N]",
		Short: "Write a model with random weights and the shape of a real one",
		Long: `Synth writes a GGUF model whose tensors have exactly the names, shapes and
metadata of a real model, filled with random weights, for benchmarks and
tests that need a model of realistic size without downloading one.

Shapes: ` + strings.Join(shapeNames(), ", ") + `.
  tinyllama-1.1b  llama, 22 layers, dim 2048, 32 heads / 4 KV heads, FFN 5632
  llama-3.2-1b    llama, 16 layers, dim 2048, 32 / 8 heads, FFN 8192, tied
                  embeddings, rope base 500000, Llama 3 RoPE factors
  qwen2.5-0.5b    qwen2, 24 layers, dim 896, 14 / 2 heads, FFN 4864, Q/K/V
                  biases, tied embeddings, rope base 1e6
  tiny            llama, 2 layers, dim 256, 4 / 2 heads, FFN 512

The tokenizer (every tokenizer.* key) is copied from VOCAB, a GGUF file such
as a vocab-only file, and sets the vocabulary size. Weights are Gaussian with
standard deviation 0.02 and norm weights are 1, which keeps activations finite
through every layer; the text they produce is gibberish. TYPE is any type of
'foretoken quantize' (mixes included), applied the same way. The same seed
gives the same file. All cores are used unless --threads says otherwise.`,
		Example: "  foretoken synth --shape tinyllama-1.1b --vocab ggml-vocab-llama-spm.gguf --type q4_k_m -o tinyllama-synth.gguf",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sh, err := findShape(shape)
			if err != nil {
				return err
			}
			if vocab == "" || out == "" {
				return fmt.Errorf("--vocab and -o are required")
			}
			ft, err := parseFileType(typ)
			if err != nil {
				return err
			}
			if threads <= 0 {
				threads = runtime.GOMAXPROCS(0)
			}
			return synthFile(cmd.Context(), sh, vocab, out, ft, seed, threads, newConvProgress(cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&shape, "shape", "", "model shape: "+strings.Join(shapeNames(), ", "))
	f.StringVar(&vocab, "vocab", "", "GGUF file to copy the tokenizer from")
	f.StringVar(&typ, "type", "f16", "tensor type or mix, as for quantize")
	f.StringVarP(&out, "output", "o", "", "output GGUF file")
	f.Uint64Var(&seed, "seed", 1, "random seed")
	f.IntVarP(&threads, "threads", "t", 0, "worker goroutines (default: all cores)")
	return cmd
}

func findShape(name string) (synthShape, error) {
	for _, sh := range synthShapes {
		if sh.name == name {
			return sh, nil
		}
	}
	return synthShape{}, fmt.Errorf("unknown shape %q (want one of %s)", name, strings.Join(shapeNames(), ", "))
}

// synthTensor is one tensor to generate: either Gaussian values with std
// (mean 0), or the constant fill, or fixed values.
type synthTensor struct {
	name  string
	dims  []uint64
	std   float32
	fill  float32
	fixed []float32
}

func (sh synthShape) headDim() int { return sh.dim / sh.heads }

func (sh synthShape) tensors(vocab int) []synthTensor {
	const std = 0.02
	d, hd := uint64(sh.dim), uint64(sh.headDim())
	q, kv, ff := uint64(sh.heads)*hd, uint64(sh.kvHeads)*hd, uint64(sh.ffn)
	ts := []synthTensor{
		{name: "token_embd.weight", dims: []uint64{d, uint64(vocab)}, std: std},
		{name: "output_norm.weight", dims: []uint64{d}, fill: 1},
	}
	if !sh.tied {
		ts = append(ts, synthTensor{name: "output.weight", dims: []uint64{d, uint64(vocab)}, std: std})
	}
	if sh.llama3Rope {
		ts = append(ts, synthTensor{name: "rope_freqs.weight", dims: []uint64{hd / 2}, fixed: llama3RopeFactors(sh.ropeBase, int(hd))})
	}
	for i := 0; i < sh.layers; i++ {
		b := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			synthTensor{name: b + "attn_norm.weight", dims: []uint64{d}, fill: 1},
			synthTensor{name: b + "attn_q.weight", dims: []uint64{d, q}, std: std},
			synthTensor{name: b + "attn_k.weight", dims: []uint64{d, kv}, std: std},
			synthTensor{name: b + "attn_v.weight", dims: []uint64{d, kv}, std: std},
			synthTensor{name: b + "attn_output.weight", dims: []uint64{q, d}, std: std},
			synthTensor{name: b + "ffn_norm.weight", dims: []uint64{d}, fill: 1},
			synthTensor{name: b + "ffn_gate.weight", dims: []uint64{d, ff}, std: std},
			synthTensor{name: b + "ffn_up.weight", dims: []uint64{d, ff}, std: std},
			synthTensor{name: b + "ffn_down.weight", dims: []uint64{ff, d}, std: std},
		)
		if sh.qkvBias {
			ts = append(ts,
				synthTensor{name: b + "attn_q.bias", dims: []uint64{q}, std: std},
				synthTensor{name: b + "attn_k.bias", dims: []uint64{kv}, std: std},
				synthTensor{name: b + "attn_v.bias", dims: []uint64{kv}, std: std},
			)
		}
	}
	// llama-quantize's order, so that synth at TYPE equals quantize to TYPE.
	names := make([]string, len(ts))
	for i := range ts {
		names[i] = ts[i].name
	}
	sorted := make([]synthTensor, 0, len(ts))
	for _, i := range llamaOrder(names) {
		sorted = append(sorted, ts[i])
	}
	return sorted
}

// llama3RopeFactors computes the per-frequency RoPE divisors Llama 3.1/3.2
// use for long contexts (factor 32, low/high frequency factors 1 and 4,
// original context 8192), as llama.cpp's converter stores them in
// rope_freqs.weight.
func llama3RopeFactors(base float32, headDim int) []float32 {
	const (
		factor  = 32.0
		lowFF   = 1.0
		highFF  = 4.0
		origCtx = 8192.0
	)
	lowWavelen, highWavelen := origCtx/lowFF, origCtx/highFF
	var out []float32
	for i := 0; i < headDim; i += 2 {
		freq := float64(float32(1 / math.Pow(float64(base), float64(float32(i)/float32(headDim)))))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out = append(out, 1)
		case wavelen > lowWavelen:
			out = append(out, factor)
		default:
			smooth := (origCtx/wavelen - lowFF) / (highFF - lowFF)
			out = append(out, float32(1/((1-smooth)/factor+smooth)))
		}
	}
	return out
}

// synthMetadata returns the model's metadata in the order llama.cpp's
// converter writes it, then the tokenizer keys of vocab.
func synthMetadata(sh synthShape, vf *gguf.File, vocabSize int, ft fileType) []gguf.KV {
	a := sh.arch
	u := func(k string, v int) gguf.KV { return gguf.KV{Key: k, Value: gguf.Uint32Value(uint32(v))} }
	f := func(k string, v float32) gguf.KV { return gguf.KV{Key: k, Value: gguf.Float32Value(v)} }
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.StringValue(a)},
		{Key: "general.type", Value: gguf.StringValue("model")},
		{Key: "general.name", Value: gguf.StringValue("synth " + sh.name)},
		u(a+".block_count", sh.layers),
		u(a+".context_length", sh.ctx),
		u(a+".embedding_length", sh.dim),
		u(a+".feed_forward_length", sh.ffn),
		u(a+".attention.head_count", sh.heads),
		u(a+".attention.head_count_kv", sh.kvHeads),
		f(a+".rope.freq_base", sh.ropeBase),
		f(a+".attention.layer_norm_rms_epsilon", sh.eps),
	}
	if sh.llama3Rope {
		kvs = append(kvs, u(a+".attention.key_length", sh.headDim()), u(a+".attention.value_length", sh.headDim()))
	}
	if a == "llama" {
		kvs = append(kvs, u(a+".vocab_size", vocabSize))
	}
	kvs = append(kvs, u(a+".rope.dimension_count", sh.headDim()))
	for _, kv := range vf.Metadata {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			kvs = append(kvs, kv)
		}
	}
	return append(kvs,
		gguf.KV{Key: "general.quantization_version", Value: gguf.Uint32Value(2)},
		u("general.file_type", int(ft.id)),
	)
}

// synthFile writes a random model of shape sh with the tokenizer of vocab.
func synthFile(ctx context.Context, sh synthShape, vocab, out string, ft fileType, seed uint64, threads int, prog *convProgress) error {
	vf, err := gguf.Open(vocab)
	if err != nil {
		return err
	}
	defer vf.Close()
	tokens, err := vf.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return fmt.Errorf("%s: %w", vocab, err)
	}
	if len(tokens) == 0 {
		return fmt.Errorf("%s: empty vocabulary", vocab)
	}

	ts := sh.tensors(len(tokens))
	names := make([]string, len(ts))
	for i := range ts {
		names[i] = ts[i].name
	}
	plan := newMixPlanner(ft, sh.arch, sh.layers, sh.heads, sh.kvHeads, names)

	w, err := gguf.Create(out)
	if err != nil {
		return err
	}
	defer w.Close() // removes the partial file on error
	for _, kv := range synthMetadata(sh, vf, len(tokens), ft) {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	types := make([]ggml.Type, len(ts))
	var total uint64
	for i, t := range ts {
		typ := ggml.F32
		if quantizable(t.name, t.dims) {
			typ = plan.typeFor(t.name, t.dims)
		}
		types[i] = typ
		if err := w.AddTensor(t.name, typ, t.dims); err != nil {
			return err
		}
		sz, _ := w.TensorSize(t.name)
		total += sz
	}

	prog.start(len(ts), total)
	for i, t := range ts {
		typ := types[i]
		prog.tensor(i, t.name, ggml.F32, typ)
		ne0 := int(t.dims[0])
		nrows := 1
		for _, d := range t.dims[1:] {
			nrows *= int(d)
		}
		outRow, err := typ.RowBytes(ne0)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.name, err)
		}
		chunk := rowsPerChunk(ne0)
		stream := tensorStream(seed, t.name)
		gen := func(r0, r1 int, dst []byte) error {
			x := make([]float32, (r1-r0)*ne0)
			switch {
			case t.fixed != nil:
				copy(x, t.fixed[r0*ne0:])
			case t.std == 0:
				for j := range x {
					x[j] = t.fill
				}
			default:
				// One generator per chunk of fixed size: the values do not
				// depend on how many goroutines run.
				r := rand.New(rand.NewPCG(seed, stream+uint64(r0/chunk)))
				for j := range x {
					x[j] = float32(r.NormFloat64()) * t.std
				}
			}
			return ggml.Quantize(typ, x, dst)
		}
		err = streamRows(ctx, nrows, outRow, chunk, threads, gen, func(p []byte) error {
			prog.add(uint64(len(p)))
			return w.WriteTensorData(t.name, p)
		})
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.name, err)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	prog.finish()
	return nil
}

// tensorStream derives a tensor's random stream from its name, so a tensor's
// values do not depend on which other tensors the model has.
func tensorStream(seed uint64, name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64() << 20 // leave room for chunk indices
}
