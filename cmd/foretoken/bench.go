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
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 3] [--json]",
		Short: "Measure prompt processing and generation speed, like llama-bench",
		Long: `bench measures a model's speed the way llama.cpp's llama-bench does:

  ppP  one batch of P random tokens fed to an empty context (prompt processing)
  tgN  N tokens fed one at a time, each a decode step with the KV cache
       (text generation)

Each test runs once to warm up, then -r times; the table shows the mean and
standard deviation of tokens per second over the runs. For tg it also shows
the weight bytes read per generated token (every matrix once; the token
embedding table only when it doubles as the output matrix) and the memory
bandwidth that implies. -p 0 or -n 0 skips that test.

--json prints one JSON object per test instead, one per line:
  {"test":"pp512","tokens_per_second":..,"stddev":..,...}`,
		Example: "  foretoken bench -m tinyllama-q4_0.gguf -t 2 -r 3",
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
	return cmd
}

// benchResult is one test's outcome; its JSON form is the --json output.
type benchResult struct {
	Model           string  `json:"model"`
	Test            string  `json:"test"`
	Tokens          int     `json:"n_tokens"`
	Threads         int     `json:"threads"`
	Runs            int     `json:"runs"`
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
	if o.prompt < 0 || o.gen < 0 || o.reps < 1 {
		return fmt.Errorf("-p and -n must be >= 0 and -r >= 1")
	}
	if o.prompt == 0 && o.gen == 0 {
		return fmt.Errorf("nothing to measure: -p and -n are both 0")
	}
	m, err := model.Load(o.modelPath, model.Options{Threads: o.threads, BatchSize: max(o.prompt, 1)})
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

	var results []benchResult
	if o.prompt > 0 {
		tokens := randomTokens(o.prompt)
		run := func() (float64, error) {
			seq := m.NewSequence(o.prompt)
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
			seq := m.NewSequence(o.gen)
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
	for i := range results {
		results[i].Model, results[i].Threads, results[i].Runs = name, m.Threads(), o.reps
		results[i].Kernels = kernels.Impl()
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
	fmt.Fprintf(w, "| %-28s | %9s | %-10s | %7s | %7s | %18s | %12s |\n", "model", "size", "kernels", "threads", "test", "t/s", "weights GB/s")
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", strings.Repeat("-", 28), strings.Repeat("-", 9), strings.Repeat("-", 10),
		strings.Repeat("-", 7), strings.Repeat("-", 7), strings.Repeat("-", 18), strings.Repeat("-", 12))
	for _, r := range results {
		gbs := ""
		if r.GBPerSecond > 0 {
			gbs = fmt.Sprintf("%.2f", r.GBPerSecond)
		}
		fmt.Fprintf(w, "| %-28s | %9s | %-10s | %7d | %7s | %18s | %12s |\n", r.Model, fmtBytes(size), r.Kernels, r.Threads, r.Test,
			fmt.Sprintf("%.2f ± %.2f", r.TokensPerSecond, r.Stddev), gbs)
	}
	for _, r := range results {
		if r.BytesPerToken > 0 {
			fmt.Fprintf(w, "\ntg reads %s of weights per token.\n", fmtBytes(r.BytesPerToken))
		}
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
