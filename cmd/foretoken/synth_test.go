package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

func synthTo(t *testing.T, shape, vocab, ftype string, seed uint64, threads int) string {
	t.Helper()
	sh, err := findShape(shape)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := parseFileType(ftype)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s-%d-%d.gguf", shape, ftype, seed, threads))
	if err := synthFile(context.Background(), sh, vocab, out, ft, seed, threads, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func openT(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func dequantAll(t *testing.T, f *gguf.File, name string) []float32 {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("tensor %s missing", name)
	}
	x := make([]float32, ti.Elements())
	if err := ggml.Dequantize(ti.Type, f.TensorData(ti), x); err != nil {
		t.Fatal(err)
	}
	return x
}

// TestSynthTiny writes the tiny shape in F32 and reads it back: tensor
// names, shapes, types, hyperparameters, the copied tokenizer and the
// statistics of the weights.
func TestSynthTiny(t *testing.T) {
	vocab := testdata.Path(t, "models", "stories260K.gguf")
	f := openT(t, synthTo(t, "tiny", vocab, "f32", 7, 2))
	vf := openT(t, vocab)

	want := map[string][]uint64{
		"token_embd.weight":  {256, 512},
		"output.weight":      {256, 512},
		"output_norm.weight": {256},
	}
	for i := 0; i < 2; i++ {
		b := fmt.Sprintf("blk.%d.", i)
		want[b+"attn_norm.weight"] = []uint64{256}
		want[b+"attn_q.weight"] = []uint64{256, 256}
		want[b+"attn_k.weight"] = []uint64{256, 128}
		want[b+"attn_v.weight"] = []uint64{256, 128}
		want[b+"attn_output.weight"] = []uint64{256, 256}
		want[b+"ffn_norm.weight"] = []uint64{256}
		want[b+"ffn_gate.weight"] = []uint64{256, 512}
		want[b+"ffn_up.weight"] = []uint64{256, 512}
		want[b+"ffn_down.weight"] = []uint64{512, 256}
	}
	if len(f.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for name, dims := range want {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Errorf("tensor %s missing", name)
			continue
		}
		if fmt.Sprint(ti.Dims) != fmt.Sprint(dims) || ti.Type != ggml.F32 {
			t.Errorf("tensor %s: %s %v, want F32 %v", name, ti.Type, ti.Dims, dims)
		}
	}

	for _, c := range []struct {
		key  string
		want uint32
	}{
		{"llama.block_count", 2}, {"llama.embedding_length", 256}, {"llama.feed_forward_length", 512},
		{"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2}, {"llama.context_length", 2048},
		{"llama.rope.dimension_count", 64}, {"llama.vocab_size", 512}, {"general.file_type", 0},
		{"general.quantization_version", 2},
	} {
		if v, err := f.Uint32(c.key); err != nil || v != c.want {
			t.Errorf("%s = %d, %v; want %d", c.key, v, err, c.want)
		}
	}
	if f.Architecture() != "llama" {
		t.Errorf("architecture %q", f.Architecture())
	}
	if v, err := f.Float32("llama.rope.freq_base"); err != nil || v != 10000 {
		t.Errorf("rope.freq_base = %g, %v", v, err)
	}
	if v, err := f.Float32("llama.attention.layer_norm_rms_epsilon"); err != nil || v != 1e-5 {
		t.Errorf("layer_norm_rms_epsilon = %g, %v", v, err)
	}
	ntok := 0
	for _, kv := range vf.Metadata {
		if len(kv.Key) < 10 || kv.Key[:10] != "tokenizer." {
			continue
		}
		ntok++
		got, ok := f.Lookup(kv.Key)
		if !ok || got.String() != kv.Value.String() || got.Len() != kv.Value.Len() {
			t.Errorf("tokenizer key %s not copied", kv.Key)
		}
	}
	if ntok < 5 {
		t.Errorf("vocab file has only %d tokenizer keys", ntok)
	}
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil || len(toks) != 512 || toks[1] != "<s>" {
		t.Errorf("tokens: %d, %v", len(toks), err)
	}

	for name := range want {
		x := dequantAll(t, f, name)
		var sum, sq float64
		for _, v := range x {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		n := float64(len(x))
		mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
		if len(want[name]) == 1 {
			if mean != 1 || std != 0 {
				t.Errorf("norm %s: mean %g std %g, want all ones", name, mean, std)
			}
		} else if !(math.Abs(mean) <= 0.002 && math.Abs(std-0.02) <= 0.001) { // a NaN fails too
			t.Errorf("%s: mean %g std %g, want N(0, 0.02)", name, mean, std)
		}
	}

	// A token through every layer (with one position, attention passes V
	// through) stays finite and gives logits that are neither flat nor wild.
	logits := oneTokenForward(t, f, 1, 2, 4, 2, 64)
	var lmin, lmax float64 = math.Inf(1), math.Inf(-1)
	for _, l := range logits {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("non-finite logit %g", l)
		}
		lmin, lmax = math.Min(lmin, l), math.Max(lmax, l)
	}
	if lmax-lmin < 0.01 || lmax-lmin > 100 {
		t.Errorf("logit range %g..%g", lmin, lmax)
	}
}

// oneTokenForward runs a llama forward pass in float64 for a single token at
// position 0, where softmax attention over one key returns its value.
func oneTokenForward(t *testing.T, f *gguf.File, tok, layers, heads, kvHeads, hd int) []float64 {
	emb := dequantAll(t, f, "token_embd.weight")
	dim := heads * hd
	x := make([]float64, dim)
	for i := range x {
		x[i] = float64(emb[tok*dim+i])
	}
	matvec := func(name string, in []float64) []float64 {
		ti, _ := f.Tensor(name)
		w := dequantAll(t, f, name)
		nin, nout := int(ti.Dims[0]), int(ti.Dims[1])
		out := make([]float64, nout)
		for r := 0; r < nout; r++ {
			var s float64
			for c := 0; c < nin; c++ {
				s += float64(w[r*nin+c]) * in[c]
			}
			out[r] = s
		}
		return out
	}
	rmsnorm := func(name string, in []float64) []float64 {
		g := dequantAll(t, f, name)
		var ss float64
		for _, v := range in {
			ss += v * v
		}
		s := 1 / math.Sqrt(ss/float64(len(in))+1e-5)
		out := make([]float64, len(in))
		for i, v := range in {
			out[i] = v * s * float64(g[i])
		}
		return out
	}
	for l := 0; l < layers; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		h := rmsnorm(b+"attn_norm.weight", x)
		v := matvec(b+"attn_v.weight", h)
		att := make([]float64, dim)
		for hh := 0; hh < heads; hh++ {
			kvh := hh / (heads / kvHeads)
			copy(att[hh*hd:(hh+1)*hd], v[kvh*hd:(kvh+1)*hd])
		}
		o := matvec(b+"attn_output.weight", att)
		for i := range x {
			x[i] += o[i]
		}
		h = rmsnorm(b+"ffn_norm.weight", x)
		g, u := matvec(b+"ffn_gate.weight", h), matvec(b+"ffn_up.weight", h)
		for i := range g {
			g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
		}
		d := matvec(b+"ffn_down.weight", g)
		for i := range x {
			x[i] += d[i]
		}
	}
	return matvec("output.weight", rmsnorm("output_norm.weight", x))
}

// The same seed gives the same file whatever the number of goroutines; a
// different seed gives different weights.
func TestSynthDeterministic(t *testing.T) {
	vocab := testdata.Path(t, "models", "stories260K.gguf")
	a, err := os.ReadFile(synthTo(t, "tiny", vocab, "q8_0", 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(synthTo(t, "tiny", vocab, "q8_0", 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("same seed, 1 vs 2 threads: files differ")
	}
	c, err := os.ReadFile(synthTo(t, "tiny", vocab, "q8_0", 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, c) {
		t.Error("seeds 3 and 4 gave the same file")
	}
}

// Synthesizing at a type equals synthesizing F32 and quantizing to that type.
func TestSynthTypeEqualsQuantize(t *testing.T) {
	vocab := testdata.Path(t, "models", "stories260K.gguf")
	f32 := synthTo(t, "tiny", vocab, "f32", 5, 2)
	for _, typ := range []string{"q4_k_m", "q5_0", "bf16"} {
		direct, err := os.ReadFile(synthTo(t, "tiny", vocab, typ, 5, 2))
		if err != nil {
			t.Fatal(err)
		}
		ft, _ := parseFileType(typ)
		out := filepath.Join(t.TempDir(), "q.gguf")
		if err := quantizeFile(context.Background(), f32, out, ft, 2, nil); err != nil {
			t.Fatal(err)
		}
		viaQuantize, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(direct, viaQuantize) {
			t.Errorf("%s: synth output differs from quantize of the F32 synth", typ)
		}
	}
}

// TestSynthShapes checks the tensor tables of the real shapes against the
// published parameter counts of the models (with their real vocabularies)
// and llama.cpp's Q4_K_M type choices for them.
func TestSynthShapes(t *testing.T) {
	for _, tt := range []struct {
		shape   string
		vocab   int
		params  uint64 // as published on the models' cards
		tensors int
		types   map[string]ggml.Type // under q4_k_m
	}{
		{"tinyllama-1.1b", 32000, 1100048384, 3 + 22*9, map[string]ggml.Type{
			"output.weight": ggml.Q6_K, "token_embd.weight": ggml.Q4_K,
			"blk.0.attn_v.weight": ggml.Q6_K, "blk.2.attn_v.weight": ggml.Q4_K, "blk.4.ffn_down.weight": ggml.Q6_K,
			"blk.5.ffn_down.weight": ggml.Q4_K, "blk.21.ffn_down.weight": ggml.Q6_K, "blk.3.attn_q.weight": ggml.Q4_K,
			"blk.3.attn_norm.weight": ggml.F32,
		}},
		{"llama-3.2-1b", 128256, 1235814400, 2 + 1 + 16*9, map[string]ggml.Type{
			"token_embd.weight": ggml.Q6_K, // tied: quantized as the output
			"rope_freqs.weight": ggml.F32, "blk.0.attn_v.weight": ggml.Q6_K, "blk.1.attn_v.weight": ggml.Q6_K,
			"blk.2.attn_v.weight": ggml.Q4_K, "blk.15.ffn_down.weight": ggml.Q6_K,
		}},
		{"qwen2.5-0.5b", 151936, 494032768, 2 + 24*12, map[string]ggml.Type{
			"token_embd.weight":     ggml.Q8_0, // tied, 896 columns: Q6_K does not fit
			"blk.0.attn_q.weight":   ggml.Q5_0, // 896 columns: Q4_K falls back
			"blk.0.attn_q.bias":     ggml.F32,
			"blk.0.ffn_down.weight": ggml.Q6_K, // 4864 columns fit Q6_K
			"blk.3.ffn_down.weight": ggml.Q4_K,
			"blk.0.attn_v.weight":   ggml.Q8_0, // Q6_K falls back to Q8_0
			"blk.3.attn_v.weight":   ggml.Q5_0,
		}},
	} {
		t.Run(tt.shape, func(t *testing.T) {
			sh, err := findShape(tt.shape)
			if err != nil {
				t.Fatal(err)
			}
			ts := sh.tensors(tt.vocab)
			if len(ts) != tt.tensors {
				t.Errorf("%d tensors, want %d", len(ts), tt.tensors)
			}
			var params uint64
			names := make([]string, len(ts))
			for i, x := range ts {
				names[i] = x.name
				if x.name == "rope_freqs.weight" {
					continue // a constant of the RoPE variant, not a parameter
				}
				n := uint64(1)
				for _, d := range x.dims {
					n *= d
				}
				params += n
			}
			if params != tt.params {
				t.Errorf("%d parameters, want %d", params, tt.params)
			}
			ft, _ := parseFileType("q4_k_m")
			p := newMixPlanner(ft, sh.arch, sh.layers, sh.heads, sh.kvHeads, names)
			got := map[string]ggml.Type{}
			for _, x := range ts {
				typ := ggml.F32
				if quantizable(x.name, x.dims) {
					typ = p.typeFor(x.name, x.dims)
				}
				got[x.name] = typ
			}
			for name, typ := range tt.types {
				if got[name] != typ {
					t.Errorf("%s: %s, want %s", name, got[name], typ)
				}
			}
		})
	}
}

// Llama 3.2's RoPE factors: 1 for short wavelengths, 32 for long ones, a
// smooth ramp between (values as in Meta's reference implementation).
func TestLlama3RopeFactors(t *testing.T) {
	f := llama3RopeFactors(500000, 64)
	if len(f) != 32 {
		t.Fatalf("%d factors, want 32", len(f))
	}
	if f[0] != 1 || f[31] != 32 {
		t.Errorf("first %g last %g, want 1 and 32", f[0], f[31])
	}
	for i := 1; i < len(f); i++ {
		if f[i] < f[i-1] {
			t.Errorf("factor %d = %g decreases from %g", i, f[i], f[i-1])
		}
	}
}
