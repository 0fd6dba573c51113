package model

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/inference/sample"
	"github.com/foretoken/foretoken/internal/testdata"
)

func load(t *testing.T, name string, opts Options) *Model {
	t.Helper()
	m, err := Load(testdata.Path(t, "models", name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		e := math.Abs(float64(a[i] - b[i]))
		if math.IsNaN(e) {
			return math.Inf(1) // so that every "d > tol" check fails
		}
		d = max(d, e)
	}
	return d
}

var prompt = []int32{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 400, 428, 395, 392, 412}

func TestConfig(t *testing.T) {
	tests := []struct {
		model string
		want  Config
	}{
		{"stories260K.gguf", Config{Arch: "llama", Dim: 64, Layers: 5, FFN: 172, Heads: 8, KVHeads: 4, HeadDim: 8, ValueDim: 8,
			Vocab: 512, ContextLength: 2048, RopeDim: 8, RopeBase: 10000, RopeScale: 1, RopeMode: RopeNormal}},
		{"synth/qwen2-256.q8_0.gguf", Config{Arch: "qwen2", Dim: 256, Layers: 2, FFN: 512, Heads: 4, KVHeads: 2, HeadDim: 64, ValueDim: 64,
			Vocab: 512, ContextLength: 2048, RopeDim: 64, RopeBase: 1e6, RopeScale: 1, RopeMode: RopeNeoX, QKVBias: true}},
	}
	for _, tt := range tests {
		m := load(t, tt.model, Options{Threads: 1})
		got := m.Config
		got.Name, got.NormEps = "", 0
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.model, got, tt.want)
		}
		if !(math.Abs(float64(m.Config.NormEps)-1e-5) <= 1e-9) {
			t.Errorf("%s: eps %g", tt.model, m.Config.NormEps)
		}
	}
}

// edit describes a modified copy of stories260K.
type edit struct {
	kv    func(key string, v gguf.Value) (gguf.Value, bool) // nil keeps all
	add   map[string]gguf.Value                             // extra metadata
	skip  string                                            // tensor to leave out
	extra map[string][]float32                              // F32 vectors to add
}

// rewrite writes a copy of stories260K edited by e into dir.
func rewrite(t *testing.T, dir, name string, e edit) string {
	t.Helper()
	src, err := gguf.Open(testdata.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, name)
	w, err := gguf.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range src.Metadata {
		v, keep := m.Value, true
		if e.kv != nil {
			v, keep = e.kv(m.Key, m.Value)
		}
		if keep {
			if err := w.AddKV(m.Key, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, v := range e.add {
		if err := w.AddKV(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var kept []*gguf.TensorInfo
	for i := range src.Tensors {
		if ti := &src.Tensors[i]; ti.Name != e.skip {
			kept = append(kept, ti)
			if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, x := range e.extra {
		if err := w.AddTensor(name, ggml.F32, []uint64{uint64(len(x))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range kept {
		if err := w.WriteTensorData(ti.Name, src.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	for name, x := range e.extra {
		b := make([]byte, 4*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		if err := w.WriteTensorData(name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	setKV := func(key string, nv gguf.Value) edit {
		return edit{kv: func(k string, v gguf.Value) (gguf.Value, bool) {
			if k == key {
				return nv, true
			}
			return v, true
		}}
	}
	tests := []struct {
		name, want string
		path       string
	}{
		{"unknown arch", `unsupported architecture "gpt2" (supported: llama, qwen2)`,
			rewrite(t, dir, "arch.gguf", setKV("general.architecture", gguf.StringValue("gpt2")))},
		{"missing tensor", `tensor "blk.3.ffn_up.weight" is missing`, rewrite(t, dir, "missing.gguf", edit{skip: "blk.3.ffn_up.weight"})},
		{"wrong head count", `tensor "blk.0.attn_k.weight" has shape [64 32], want [64 64]`,
			rewrite(t, dir, "heads.gguf", setKV("llama.attention.head_count_kv", gguf.Uint32Value(8)))},
		{"missing dim", `llama.embedding_length`, rewrite(t, dir, "dim.gguf", edit{kv: func(k string, v gguf.Value) (gguf.Value, bool) {
			return v, k != "llama.embedding_length"
		}})},
		{"yarn", `rope scaling "yarn" is not supported`,
			rewrite(t, dir, "yarn.gguf", edit{add: map[string]gguf.Value{"llama.rope.scaling.type": gguf.StringValue("yarn")}})},
		{"llama3 without factors", `needs the tensor rope_freqs.weight`,
			rewrite(t, dir, "l3.gguf", edit{add: map[string]gguf.Value{"llama.rope.scaling.type": gguf.StringValue("llama3")}})},
		{"wrong rope factors", `tensor "rope_freqs.weight" has shape [3], want [4]`,
			rewrite(t, dir, "freqs.gguf", edit{extra: map[string][]float32{"rope_freqs.weight": {1, 1, 1}}})},
	}
	for _, tt := range tests {
		_, err := Load(tt.path, Options{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestVariants checks tied output, RoPE factors (Llama 3) and linear RoPE
// scaling on edited copies of stories260K, whose output.weight equals its
// token_embd.weight.
func TestVariants(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	logits := func(path string) []float32 {
		m, err := Load(path, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		out, err := m.NewSequence(32).Forward(ctx, prompt, ForwardOptions{Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(out.Logits)
	}
	base := logits(testdata.Path(t, "models", "stories260K.gguf"))
	tied := logits(rewrite(t, dir, "tied.gguf", edit{skip: "output.weight"}))
	ones := logits(rewrite(t, dir, "ones.gguf", edit{extra: map[string][]float32{"rope_freqs.weight": {1, 1, 1, 1}}}))
	twos := logits(rewrite(t, dir, "twos.gguf", edit{extra: map[string][]float32{"rope_freqs.weight": {2, 2, 2, 2}}}))
	linear := logits(rewrite(t, dir, "linear.gguf", edit{add: map[string]gguf.Value{
		"llama.rope.scaling.type":   gguf.StringValue("linear"),
		"llama.rope.scaling.factor": gguf.Float32Value(2),
	}}))
	if d := maxDiff(base, tied); d != 0 {
		t.Errorf("tied output differs by %g", d)
	}
	if d := maxDiff(base, ones); d != 0 {
		t.Errorf("rope factors of 1 change the logits by %g", d)
	}
	if d := maxDiff(twos, linear); d > 1e-4 {
		t.Errorf("rope factors of 2 and linear scaling by 2 differ by %g", d)
	}
	if d := maxDiff(base, twos); d < 0.01 {
		t.Errorf("rope factors of 2 change the logits by only %g", d)
	}
}

// TestBatchEqualsDecode checks that one batched pass and token-by-token
// decoding, and passes split by a small batch size, agree.
func TestBatchEqualsDecode(t *testing.T) {
	// The kernels may round differently for one token and for many (the
	// order of float sums, how activations are quantized), so the paths agree
	// to within rounding, not exactly; a wrong position or cache entry gives
	// differences above 1.
	for _, tt := range []struct {
		name string
		tol  float64
	}{
		{"stories260K.gguf", 0.01},
		{"synth/qwen2-256.q8_0.gguf", 0.3},
		{"synth/llama256.q4_k_m.gguf", 0.3},
	} {
		name := tt.name
		ctx := context.Background()
		m := load(t, name, Options{Threads: 2})
		small := load(t, name, Options{Threads: 1, BatchSize: 4})
		all, err := m.NewSequence(64).Forward(ctx, prompt, ForwardOptions{Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		split, err := small.NewSequence(64).Forward(ctx, prompt, ForwardOptions{Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(all.Logits, split.Logits); !(d <= tt.tol) {
			t.Errorf("%s: batch size 4 differs from one pass by %g", name, d)
		}
		seq := m.NewSequence(64)
		for i, tok := range prompt {
			out, err := seq.Forward(ctx, []int32{tok}, ForwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(out.Last(), all.Row(i)); !(d <= tt.tol) {
				t.Errorf("%s: position %d decoded alone differs by %g", name, i, d)
			}
		}
		if seq.Len() != len(prompt) {
			t.Errorf("Len = %d, want %d", seq.Len(), len(prompt))
		}
	}
}

func TestTruncateReusesCache(t *testing.T) {
	ctx := context.Background()
	m := load(t, "stories260K.gguf", Options{Threads: 2})
	ref, err := m.NewSequence(32).Forward(ctx, prompt, ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ref.Last())
	seq := m.NewSequence(32)
	other := append(slices.Clone(prompt[:8]), 300, 301, 302)
	if _, err := seq.Forward(ctx, other, ForwardOptions{}); err != nil {
		t.Fatal(err)
	}
	seq.Truncate(8)
	out, err := seq.Forward(ctx, prompt[8:], ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 7 tokens take the kernels' per-token path, 15 their tiles: the sums
	// run in another order, so the logits agree to rounding only.
	if d := maxDiff(out.Last(), want); d > 2e-3 {
		t.Errorf("after Truncate(8) logits differ by %g", d)
	}
}

func TestContextFull(t *testing.T) {
	ctx := context.Background()
	m := load(t, "stories260K.gguf", Options{Threads: 1})
	seq := m.NewSequence(8)
	if _, err := seq.Forward(ctx, prompt[:9], ForwardOptions{}); !errors.Is(err, ErrContextFull) || !strings.Contains(err.Error(), "longer than the context") {
		t.Errorf("9 tokens in a context of 8: %v", err)
	}
	if _, err := seq.Forward(ctx, prompt[:8], ForwardOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := seq.Forward(ctx, prompt[:1], ForwardOptions{}); !errors.Is(err, ErrContextFull) {
		t.Errorf("token past the context: %v, want ErrContextFull", err)
	}
	if seq.Len() != 8 {
		t.Errorf("Len = %d after a refused token, want 8", seq.Len())
	}
	if _, err := seq.Forward(ctx, []int32{512}, ForwardOptions{}); err == nil {
		t.Errorf("token 512 of a 512-token vocabulary accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.NewSequence(8).Forward(cctx, prompt[:2], ForwardOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestForwardBatch(t *testing.T) {
	ctx := context.Background()
	m := load(t, "synth/llama256.q8_0.gguf", Options{Threads: 2})
	prompts := [][]int32{prompt[:5], prompt[3:12], prompt[7:]}
	var seqs []*Sequence
	var want [][]float32
	for _, p := range prompts {
		s := m.NewSequence(32)
		if _, err := s.Forward(ctx, p, ForwardOptions{}); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
		alone := m.NewSequence(32)
		out, err := alone.Forward(ctx, append(slices.Clone(p), 300), ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, slices.Clone(out.Last()))
	}
	outs := make([]*Output, len(seqs))
	if err := m.ForwardBatch(ctx, seqs, [][]int32{{300}, {300}, {300}}, ForwardOptions{}, outs); err != nil {
		t.Fatal(err)
	}
	for i := range seqs {
		if d := maxDiff(outs[i].Last(), want[i]); d > 0.3 { // one token vs a batch of 3: kernels may round differently
			t.Errorf("sequence %d: batched decode differs by %g", i, d)
		}
		if seqs[i].Len() != len(prompts[i])+1 {
			t.Errorf("sequence %d: Len %d", i, seqs[i].Len())
		}
	}
}

func TestOutputs(t *testing.T) {
	ctx := context.Background()
	m := load(t, "stories260K.gguf", Options{Threads: 2})
	c := m.Config
	seq := m.NewSequence(32)
	out, err := seq.Forward(ctx, prompt, ForwardOptions{Logits: LogitsLast, Hidden: true, LayerStates: true, Attention: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Hidden) != len(prompt)*c.Dim || len(out.Layers) != c.Layers || len(out.Attention) != c.Layers {
		t.Fatalf("hidden %d, layers %d, attention %d", len(out.Hidden), len(out.Layers), len(out.Attention))
	}
	// The last layer's residual stream through the logit lens is the output.
	lens := make([]float32, c.Vocab)
	if err := m.Project(lens, out.Layers[c.Layers-1]); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(lens, out.Last()); d > 1e-4 {
		t.Errorf("Project(last layer) differs from the logits by %g", d)
	}
	// The final hidden state is the output norm of the last layer's state.
	if d := maxDiff(out.Hidden[(len(prompt)-1)*c.Dim:], func() []float32 {
		h := make([]float32, c.Dim)
		rmsNorm(h, out.Layers[c.Layers-1], m.w.outNorm, c.NormEps)
		return h
	}()); d > 1e-5 {
		t.Errorf("hidden state differs from the normed residual by %g", d)
	}
	for l, heads := range out.Attention {
		for h, w := range heads {
			sum := 0.0
			for _, v := range w {
				sum += float64(v)
			}
			if len(w) != len(prompt) || !(math.Abs(sum-1) <= 1e-4) {
				t.Errorf("layer %d head %d: %d weights summing to %g", l, h, len(w), sum)
			}
		}
	}
	// Layers' states differ from one another: each layer adds something.
	if maxDiff(out.Layers[0], out.Layers[1]) == 0 {
		t.Errorf("layer states 0 and 1 are equal")
	}
}

func TestCacheTypes(t *testing.T) {
	ctx := context.Background()
	f16 := load(t, "stories260K.gguf", Options{Threads: 1})
	f32 := load(t, "stories260K.gguf", Options{Threads: 1, CacheType: CacheF32})
	a, err := f16.NewSequence(32).Forward(ctx, prompt, ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f32.NewSequence(32).Forward(ctx, prompt, ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(a.Last(), b.Last()); d > 0.02 || d == 0 {
		t.Errorf("f16 and f32 caches differ by %g, want a small non-zero difference", d)
	}
}

// TestDecodeNoAllocs: after warm-up a decode step allocates nothing.
func TestDecodeNoAllocs(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		cache CacheType
	}{
		{"stories260K.gguf", CacheF16},
		{"synth/qwen2-256.q4_k_m.gguf", CacheF16},
		{"synth/qwen2-256.q4_k_m.gguf", CacheQ8_0},
	} {
		name := tt.name
		m := load(t, name, Options{Threads: 2, CacheType: tt.cache})
		seq := m.NewSequence(256)
		out, err := seq.Forward(ctx, prompt, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tok := []int32{0}
		step := func() {
			tok[0] = sample.Greedy(out.Last())
			out, err = seq.Forward(ctx, tok, ForwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
		step()
		if a := testing.AllocsPerRun(50, step); a != 0 {
			t.Errorf("%s: %.1f allocations per decoded token", name, a)
		}

		// Continuous batching: three sequences, one token each per step.
		seqs := []*Sequence{m.NewSequence(256), m.NewSequence(256), m.NewSequence(256)}
		toks := [][]int32{{1}, {2}, {3}}
		outs := make([]*Output, len(seqs))
		batch := func() {
			if err := m.ForwardBatch(ctx, seqs, toks, ForwardOptions{}, outs); err != nil {
				t.Fatal(err)
			}
		}
		batch()
		if a := testing.AllocsPerRun(50, batch); a != 0 {
			t.Errorf("%s: %.1f allocations per batched step", name, a)
		}
	}
}

func TestPool(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		p := newPool(n)
		for _, items := range []int{0, 1, 3, 100} {
			ct := &countTask{seen: make([]atomic.Int32, items)}
			for range 300 {
				p.run(ct, items)
			}
			for i := range items {
				if got := ct.seen[i].Load(); got != 300 {
					t.Errorf("%d workers, %d items: item %d done %d times, want 300", n, items, i, got)
				}
			}
		}
		p.close()
	}
}

type countTask struct{ seen []atomic.Int32 }

func (c *countTask) do(_, item int) { c.seen[item].Add(1) }

func TestOps(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	rope(x, []float32{0, 1}, []float32{1, 0}, RopeNormal) // rotate pair 0 by 90°, pair 1 by 0°
	if !slices.Equal(x, []float32{-2, 1, 3, 4}) {
		t.Errorf("normal rope: %v", x)
	}
	x = []float32{1, 2, 3, 4}
	rope(x, []float32{0, 1}, []float32{1, 0}, RopeNeoX) // pairs (x0,x2) by 90°, (x1,x3) by 0°
	if !slices.Equal(x, []float32{-3, 2, 1, 4}) {
		t.Errorf("neox rope: %v", x)
	}
	cos, sin := make([]float32, 2), make([]float32, 2)
	ropeTables(cos, sin, 3, 1, 10000, nil)
	if !(math.Abs(float64(cos[0])-math.Cos(3)) <= 1e-6 && math.Abs(float64(sin[1])-math.Sin(3*0.01)) <= 1e-6) {
		t.Errorf("rope tables: cos %v sin %v", cos, sin)
	}
	ropeTables(cos, sin, 3, 0.5, 10000, []float32{1, 2})
	if !(math.Abs(float64(sin[1])-math.Sin(1.5*0.01/2)) <= 1e-6) {
		t.Errorf("scaled rope tables: sin %v", sin)
	}
	y := make([]float32, 2)
	rmsNorm(y, []float32{3, 4}, []float32{1, 2}, 0)
	want := float32(1 / math.Sqrt(12.5))
	if maxDiff(y, []float32{3 * want, 8 * want}) > 1e-6 {
		t.Errorf("rmsNorm: %v", y)
	}
	p := []float32{0, 0, float32(math.Log(2)), -200, -200, -200, -200, -200, -200, -200, -200, -200, -200, -200, -200, -200}
	softmax(p)
	if maxDiff(p, []float32{0.25, 0.25, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) > 1e-6 {
		t.Errorf("softmax: %v", p)
	}
	// 17 values and a buffer of 16: both the vector code and its tail.
	gate := []float32{-200, -100, -2, -0.5, 0, 0.5, 2, 100, -90, 90, 3, -3, 1, 2, 4, 5, 200}
	up := []float32{1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	silu := make([]float32, len(gate))
	for i, g := range gate {
		silu[i] = float32(float64(g) / (1 + math.Exp(-float64(g))) * float64(up[i]))
	}
	swiglu(gate, up, make([]float32, 16))
	for i := range gate {
		if !(math.Abs(float64(gate[i]-silu[i])) <= 1e-5*max(1, math.Abs(float64(silu[i])))) {
			t.Errorf("swiglu: %v, want %v", gate, silu)
			break
		}
	}
}
