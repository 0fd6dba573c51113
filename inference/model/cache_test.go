package model

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/internal/testdata"
)

// long is a prompt of 75 tokens: it crosses two Q8_0 block boundaries of
// 32 positions and ends inside the third block.
var long = func() []int32 {
	t := []int32{1}
	for i := range 74 {
		t = append(t, int32(260+(i*37)%250))
	}
	return t
}()

// TestReferenceLogitsQ8Cache: with a Q8_0 KV cache the logits stay within
// the quantized-weights tolerances of the reference (the cache adds an
// 8-bit rounding of keys and values, like llama.cpp's -ctk/-ctv q8_0).
func TestReferenceLogitsQ8Cache(t *testing.T) {
	dir := testdata.Dir(t)
	for _, name := range []string{"synth/llama256.q8_0.gguf", "synth/llama256.f16.gguf", "synth/qwen2-256.q4_k_m.gguf"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base := filepath.Base(name)
			refs := readRef(t, filepath.Join(dir, "reference", "logits", strings.TrimSuffix(base, ".gguf")+".jsonl"))
			m := load(t, name, Options{Threads: 1, CacheType: CacheQ8_0})
			tol := toleranceFor("quantized")
			st := runReference(t, m, refs, tol.margin)
			mean, p99, top1 := st.summary()
			t.Logf("%-22s q8_0 cache: mean %.4f p99 %.4f top1 %.3f (%d positions)", base, mean, p99, top1, st.n)
			if !(mean <= tol.mean && p99 <= tol.p99 && top1 >= tol.top1) {
				t.Errorf("%s: mean %.4f (max %.2f), p99 %.4f (max %.2f), top-1 %.3f (min %.2f)", base, mean, tol.mean, p99, tol.p99, top1, tol.top1)
			}
			if st.greedyFail != "" {
				t.Errorf("%s: %s", base, st.greedyFail)
			}
		})
	}
}

// TestQ8CachePaths: with a Q8_0 cache, one batched pass, passes of 4
// tokens, decoding token by token, ForwardBatch and a truncated and
// refilled cache agree within rounding (a block of values is rounded
// with the scale of the positions written so far, so the paths round
// differently; a wrong block or position gives differences above 1), and
// stay close to the F16 cache.
func TestQ8CachePaths(t *testing.T) {
	ctx := context.Background()
	const tol = 0.4
	for _, name := range []string{"synth/llama256.q4_k_m.gguf", "synth/qwen2-256.q8_0.gguf"} {
		m := load(t, name, Options{Threads: 2, CacheType: CacheQ8_0})
		small := load(t, name, Options{Threads: 1, BatchSize: 4, CacheType: CacheQ8_0})
		f16 := load(t, name, Options{Threads: 2})
		all, err := m.NewSequence(100).Forward(ctx, long, ForwardOptions{Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		exact, err := f16.NewSequence(100).Forward(ctx, long, ForwardOptions{Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(all.Logits, exact.Logits); !(d <= tol) || d == 0 {
			t.Errorf("%s: q8_0 and f16 caches differ by %g, want a small non-zero difference", name, d)
		}
		split, err := small.NewSequence(100).Forward(ctx, long, ForwardOptions{Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(all.Logits, split.Logits); !(d <= tol) {
			t.Errorf("%s: batch size 4 differs from one pass by %g", name, d)
		}
		seq := m.NewSequence(100)
		for i, tok := range long {
			out, err := seq.Forward(ctx, []int32{tok}, ForwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(out.Last(), all.Row(i)); !(d <= tol) {
				t.Errorf("%s: position %d decoded alone differs by %g", name, i, d)
			}
		}

		// Two sequences decoding together, one of them after Truncate
		// into the middle of a block holding other tokens.
		a, b := m.NewSequence(100), m.NewSequence(100)
		if _, err := a.Forward(ctx, long[:60], ForwardOptions{}); err != nil {
			t.Fatal(err)
		}
		other := append(slices.Clone(long[:40]), 300, 301, 302, 303, 304, 305, 306, 307, 308)
		if _, err := b.Forward(ctx, other, ForwardOptions{}); err != nil {
			t.Fatal(err)
		}
		b.Truncate(40)
		if _, err := b.Forward(ctx, long[40:50], ForwardOptions{}); err != nil {
			t.Fatal(err)
		}
		outs := make([]*Output, 2)
		if err := m.ForwardBatch(ctx, []*Sequence{a, b}, [][]int32{long[60:61], long[50:51]}, ForwardOptions{}, outs); err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(outs[0].Last(), all.Row(60)); !(d <= tol) {
			t.Errorf("%s: batched sequence 0 differs by %g", name, d)
		}
		if d := maxDiff(outs[1].Last(), all.Row(50)); !(d <= tol) {
			t.Errorf("%s: batched sequence 1 after Truncate differs by %g", name, d)
		}
	}
}

func TestQ8CacheNeedsBlockHeads(t *testing.T) {
	// stories260K has a head dimension of 8: a key row is not a Q8_0 block.
	if m, err := Load(testdata.Path(t, "models", "stories260K.gguf"), Options{Threads: 1, CacheType: CacheQ8_0}); err == nil {
		m.Close()
		t.Fatal("q8_0 cache accepted for a head dimension of 8")
	}
	for _, s := range []string{"f16", "f32", "q8_0"} {
		c, err := ParseCacheType(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseCacheType(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCacheType("q4_0"); err == nil {
		t.Error("ParseCacheType(q4_0): no error")
	}
}
