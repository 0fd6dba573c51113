package model

import (
	"context"
	"os"
	"testing"
)

// The benchmarks run the model in $FORETOKEN_BENCH_MODEL (e.g. a synthetic
// tinyllama from 'foretoken synth'), with $FORETOKEN_BENCH_THREADS threads.
func benchModel(b *testing.B) *Model {
	path := os.Getenv("FORETOKEN_BENCH_MODEL")
	if path == "" {
		b.Skip("set FORETOKEN_BENCH_MODEL to a GGUF model")
	}
	threads := 0
	if s := os.Getenv("FORETOKEN_BENCH_THREADS"); s != "" {
		for _, c := range s {
			threads = threads*10 + int(c-'0')
		}
	}
	m, err := Load(path, Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func benchTokens(n int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(3 + i*7%500)
	}
	return t
}

// BenchmarkPrefill feeds 128 tokens in one batch; the figure of merit is
// tokens/s.
func BenchmarkPrefill(b *testing.B) {
	m := benchModel(b)
	ctx := context.Background()
	toks := benchTokens(128)
	seq := m.NewSequence(256)
	for b.Loop() {
		seq.Truncate(0)
		if _, err := seq.Forward(ctx, toks, ForwardOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(toks)*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecode decodes one token at a time after a 32-token prompt.
func BenchmarkDecode(b *testing.B) {
	m := benchModel(b)
	ctx := context.Background()
	seq := m.NewSequence(4096)
	if _, err := seq.Forward(ctx, benchTokens(32), ForwardOptions{}); err != nil {
		b.Fatal(err)
	}
	tok := []int32{5}
	for b.Loop() {
		if seq.Len() == seq.Cap() {
			seq.Truncate(32)
		}
		if _, err := seq.Forward(ctx, tok, ForwardOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecodeLong decodes at positions past 1024, where attention over
// the cache costs as much as the weights.
func BenchmarkDecodeLong(b *testing.B) {
	m := benchModel(b)
	ctx := context.Background()
	seq := m.NewSequence(2048)
	if _, err := seq.Forward(ctx, benchTokens(1024), ForwardOptions{}); err != nil {
		b.Fatal(err)
	}
	tok := []int32{5}
	for b.Loop() {
		if seq.Len() == seq.Cap() {
			seq.Truncate(1024)
		}
		if _, err := seq.Forward(ctx, tok, ForwardOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
