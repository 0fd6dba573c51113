package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/inference/kernels"
	"github.com/foretoken/foretoken/inference/model"
)

type benchOptions struct {
	modelPath string
	prompt    int
	gen       int
	threads   int
	reps      int
	json      bool
	profile   string
	depth     int
	cacheType string
	conc      []int
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 3] [-d DEPTH] [-c 1,2,4,8] [--json]",
		Short: "Measure prompt processing and generation speed, like llama-bench",
		Long: `bench measures a model's speed the way llama.cpp's llama-bench does:

  ppP  one batch of P random tokens fed to an empty context (prompt processing)
  tgN  N tokens fed one at a time, each a decode step with the KV cache
       (text generation)

Each test runs once to warm up, then -r times; the table shows the mean and
standard deviation of tokens per second over the runs. For tg it also shows
the weight bytes read per generated token (every matrix once; the token
embedding table only when it doubles as the output matrix) and the memory
bandwidth that implies. -p 0 or -n 0 skips that test. -d fills the cache
with that many tokens (not timed) before each test, to measure at a depth.

-c 1,2,4,8 adds, for each N, a tgN test of N sequences decoding together:
every step feeds one token of each through one batched forward pass, as
the server's continuous batching does, and the figure is the aggregate
generated tokens per second of all N streams.

--json prints one JSON object per test instead, one per line:
  {"test":"pp512","tokens_per_second":..,"stddev":..,...}`,
		Example: "  foretoken bench -m tinyllama-q4_0.gguf -t 2 -r 3\n  foretoken bench -m tinyllama-q4_0.gguf -t 2 -p 0 -n 64 -c 1,2,4,8",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runBench(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.modelPath, "model", "m", "", "GGUF model file")
	f.IntVarP(&o.prompt, "n-prompt", "p", 512, "prompt tokens of the pp test (0: skip)")
	f.IntVarP(&o.gen, "n-gen", "n", 128, "generated tokens of the tg test (0: skip)")
	f.IntVarP(&o.threads, "threads", "t", 0, "worker threads (0: one per CPU)")
	f.IntVarP(&o.reps, "repetitions", "r", 3, "measured runs per test")
	f.BoolVar(&o.json, "json", false, "print one JSON object per test")
	f.StringVar(&o.profile, "cpuprofile", "", "write a Go CPU profile of the measured runs to this file")
	f.IntVarP(&o.depth, "depth", "d", 0, "tokens already in the cache when each test starts")
	f.StringVar(&o.cacheType, "cache-type", "f16", "KV cache element type: f16, f32 or q8_0")
	f.IntSliceVarP(&o.conc, "concurrency", "c", nil, "also decode with N concurrent sequences batched together, for each N listed")
	return cmd
}

// benchResult is one test's outcome; its JSON form is the --json output.
type benchResult struct {
	Model           string  `json:"model"`
	Test            string  `json:"test"`
	Tokens          int     `json:"n_tokens"`
	Threads         int     `json:"threads"`
	Runs            int     `json:"runs"`
	Depth           int     `json:"depth,omitempty"`
	Concurrency     int     `json:"concurrency,omitempty"`
	CacheType       string  `json:"cache_type"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	Stddev          float64 `json:"stddev"`
	BytesPerToken   int64   `json:"weight_bytes_per_token,omitempty"`
	GBPerSecond     float64 `json:"weight_gb_per_second,omitempty"`
	Kernels         string  `json:"kernels"`
}

func runBench(ctx context.Context, o benchOptions, stdout, stderr io.Writer) error {
	if o.modelPath == "" {
		return fmt.Errorf("no model: use -m MODEL.gguf")
	}
	if o.prompt < 0 || o.gen < 0 || o.reps < 1 || o.depth < 0 {
		return fmt.Errorf("-p, -n and -d must be >= 0 and -r >= 1")
	}
	if o.prompt == 0 && o.gen == 0 {
		return fmt.Errorf("nothing to measure: -p and -n are both 0")
	}
	maxConc := 0
	for _, n := range o.conc {
		if n < 1 || n > 512 {
			return fmt.Errorf("concurrency %d: want 1..512 sequences", n)
		}
		maxConc = max(maxConc, n)
	}
	if len(o.conc) > 0 && o.gen == 0 {
		return fmt.Errorf("-c needs generated tokens: -n must be > 0")
	}
	// The batch holds the pp prompt and one token of each concurrent
	// sequence; the depth is fed in steps of it.
	batch := max(o.prompt, maxConc, min(o.depth, 512), 1)
	m, err := loadModel(o.modelPath, o.cacheType, model.Options{Threads: o.threads, BatchSize: batch})
	if err != nil {
		return err
	}
	defer m.Close()
	if n := o.prompt + o.gen; n > 0 && m.Config.ContextLength > 0 && n > m.Config.ContextLength {
		fmt.Fprintf(stderr, "note: %d tokens exceed the model's trained context of %d\n", n, m.Config.ContextLength)
	}
	if o.profile != "" {
		pf, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	name := filepath.Base(o.modelPath)
	perToken := weightBytesPerToken(m.File)
	rng := rand.New(rand.NewPCG(1, 2))
	randomTokens := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(rng.IntN(m.Config.Vocab))
		}
		return t
	}

	depthTokens := randomTokens(o.depth)
	// newSeq returns a sequence with room for n more tokens after the
	// depth, holding the depth's tokens.
	newSeq := func(n int) (*model.Sequence, error) {
		seq := m.NewSequence(o.depth + n)
		if o.depth > 0 {
			if _, err := seq.Forward(ctx, depthTokens, model.ForwardOptions{Logits: model.LogitsNone}); err != nil {
				return nil, fmt.Errorf("depth %d: %w", o.depth, err)
			}
		}
		return seq, nil
	}

	var results []benchResult
	if o.prompt > 0 {
		tokens := randomTokens(o.prompt)
		run := func() (float64, error) {
			seq, err := newSeq(o.prompt)
			if err != nil {
				return 0, err
			}
			start := time.Now()
			if _, err := seq.Forward(ctx, tokens, model.ForwardOptions{}); err != nil {
				return 0, err
			}
			return float64(o.prompt) / time.Since(start).Seconds(), nil
		}
		r, err := measure(run, o.reps)
		if err != nil {
			return fmt.Errorf("pp%d: %w", o.prompt, err)
		}
		r.Test, r.Tokens = fmt.Sprintf("pp%d", o.prompt), o.prompt
		results = append(results, r)
	}
	if o.gen > 0 {
		tokens := randomTokens(o.gen)
		run := func() (float64, error) {
			seq, err := newSeq(o.gen)
			if err != nil {
				return 0, err
			}
			start := time.Now()
			for i := range tokens {
				if _, err := seq.Forward(ctx, tokens[i:i+1], model.ForwardOptions{}); err != nil {
					return 0, err
				}
			}
			return float64(o.gen) / time.Since(start).Seconds(), nil
		}
		r, err := measure(run, o.reps)
		if err != nil {
			return fmt.Errorf("tg%d: %w", o.gen, err)
		}
		r.Test, r.Tokens = fmt.Sprintf("tg%d", o.gen), o.gen
		r.BytesPerToken = perToken
		r.GBPerSecond = float64(perToken) * r.TokensPerSecond / 1e9
		results = append(results, r)
	}
	for _, nseq := range o.conc {
		r, err := measure(func() (float64, error) { return decodeConcurrent(ctx, m, newSeq, nseq, o.gen, randomTokens) }, o.reps)
		if err != nil {
			return fmt.Errorf("tg%d with %d sequences: %w", o.gen, nseq, err)
		}
		r.Test, r.Tokens, r.Concurrency = fmt.Sprintf("tg%d x%d", o.gen, nseq), o.gen*nseq, nseq
		r.BytesPerToken = perToken
		// The weights are read once per step for all the sequences.
		r.GBPerSecond = float64(perToken) * r.TokensPerSecond / float64(nseq) / 1e9
		results = append(results, r)
	}
	for i := range results {
		results[i].Model, results[i].Threads, results[i].Runs = name, m.Threads(), o.reps
		results[i].Kernels, results[i].Depth, results[i].CacheType = kernels.Impl(), o.depth, m.Options().CacheType.String()
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	printBenchTable(stdout, results, m)
	return nil
}

// decodeConcurrent decodes gen tokens in each of nseq sequences, one
// batched forward step per token position, and returns the aggregate
// generated tokens per second.
func decodeConcurrent(ctx context.Context, m *model.Model, newSeq func(int) (*model.Sequence, error), nseq, gen int, randomTokens func(int) []int32) (float64, error) {
	seqs := make([]*model.Sequence, nseq)
	streams := make([][]int32, nseq)
	for i := range seqs {
		s, err := newSeq(gen)
		if err != nil {
			return 0, err
		}
		seqs[i], streams[i] = s, randomTokens(gen)
	}
	tokens := make([][]int32, nseq)
	outs := make([]*model.Output, nseq)
	start := time.Now()
	for j := range gen {
		for i := range seqs {
			tokens[i] = streams[i][j : j+1]
		}
		if err := m.ForwardBatch(ctx, seqs, tokens, model.ForwardOptions{}, outs); err != nil {
			return 0, err
		}
	}
	return float64(nseq*gen) / time.Since(start).Seconds(), nil
}

// measure runs f once to warm up and then reps times.
func measure(f func() (float64, error), reps int) (benchResult, error) {
	if _, err := f(); err != nil {
		return benchResult{}, err
	}
	rates := make([]float64, reps)
	for i := range rates {
		r, err := f()
		if err != nil {
			return benchResult{}, err
		}
		rates[i] = r
	}
	var mean, sd float64
	for _, r := range rates {
		mean += r
	}
	mean /= float64(reps)
	if reps > 1 {
		for _, r := range rates {
			sd += (r - mean) * (r - mean)
		}
		sd = math.Sqrt(sd / float64(reps-1))
	}
	return benchResult{TokensPerSecond: mean, Stddev: sd}, nil
}

// weightBytesPerToken is what one decode step reads of the weights: every
// matrix once, except the token embedding table, of which a step reads one
// row, unless it is also the output matrix.
func weightBytesPerToken(f *gguf.File) int64 {
	var total int64
	_, tiedOutput := f.Tensor("output.weight")
	tiedOutput = !tiedOutput
	for _, t := range f.Tensors {
		if t.Name == "token_embd.weight" && !tiedOutput {
			continue
		}
		total += int64(t.Size)
	}
	return total
}

func printBenchTable(w io.Writer, results []benchResult, m *model.Model) {
	var size int64
	for _, t := range m.File.Tensors {
		size += int64(t.Size)
	}
	fmt.Fprintf(w, "| %-28s | %9s | %-10s | %7s | %10s | %18s | %12s |\n", "model", "size", "kernels", "threads", "test", "t/s", "weights GB/s")
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", strings.Repeat("-", 28), strings.Repeat("-", 9), strings.Repeat("-", 10),
		strings.Repeat("-", 7), strings.Repeat("-", 10), strings.Repeat("-", 18), strings.Repeat("-", 12))
	for _, r := range results {
		gbs := ""
		if r.GBPerSecond > 0 {
			gbs = fmt.Sprintf("%.2f", r.GBPerSecond)
		}
		fmt.Fprintf(w, "| %-28s | %9s | %-10s | %7d | %10s | %18s | %12s |\n", r.Model, fmtBytes(size), r.Kernels, r.Threads, r.Test,
			fmt.Sprintf("%.2f ± %.2f", r.TokensPerSecond, r.Stddev), gbs)
	}
	for _, r := range results {
		if r.BytesPerToken > 0 {
			fmt.Fprintf(w, "\ntg reads %s of weights per step (one token of each sequence).\n", fmtBytes(r.BytesPerToken))
			break
		}
	}
	if len(results) > 0 && (results[0].Depth > 0 || results[0].CacheType != "f16") {
		fmt.Fprintf(w, "KV cache %s, %d tokens in the cache before each test.\n", results[0].CacheType, results[0].Depth)
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
