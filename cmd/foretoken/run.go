package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/inference/kernels"
	"github.com/foretoken/foretoken/inference/model"
	"github.com/foretoken/foretoken/inference/sample"
	"github.com/foretoken/foretoken/inference/tokenizer"
)

type runOptions struct {
	modelPath string
	prompt    string
	maxTokens int
	sampling  sample.Params
	seed      int64
	threads   int
	ctxSize   int
	cacheType string
	echo      bool
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   `run -m MODEL.gguf -p "prompt"`,
		Short: "Generate text from a prompt and stream it to stdout",
		Long: `run feeds the prompt (with BOS if the tokenizer adds one) to the model and streams
the generated text to stdout as it is produced. Generation stops at an
end-of-generation token, after -n tokens, or when the context is full; the
reason and the prompt and generation speeds (tokens/s) go to stderr.

--temp 0 decodes greedily; otherwise top-k, top-p, min-p and the penalties
filter the distribution before a draw seeded by --seed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			return runGenerate(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.modelPath, "model", "m", "", "GGUF model file")
	f.StringVarP(&o.prompt, "prompt", "p", "", "prompt text")
	f.IntVarP(&o.maxTokens, "n-predict", "n", -1, "tokens to generate (-1: until end of generation or full context)")
	f.Float32Var(&o.sampling.Temperature, "temp", 0.8, "temperature (0: greedy)")
	f.IntVar(&o.sampling.TopK, "top-k", 40, "keep the K most likely tokens (0: all)")
	f.Float32Var(&o.sampling.TopP, "top-p", 0.95, "keep the most likely tokens up to this total probability (1: all)")
	f.Float32Var(&o.sampling.MinP, "min-p", 0.05, "drop tokens less likely than this fraction of the best (0: none)")
	f.Float32Var(&o.sampling.RepeatPenalty, "repeat-penalty", 1.0, "penalty for tokens among the last --repeat-last-n (1: none)")
	f.IntVar(&o.sampling.RepeatLastN, "repeat-last-n", 64, "window of last tokens the penalties look at (-1: all)")
	f.Float32Var(&o.sampling.PresencePenalty, "presence-penalty", 0, "subtracted from tokens present in the window")
	f.Float32Var(&o.sampling.FrequencyPenalty, "frequency-penalty", 0, "subtracted per occurrence in the window")
	f.Int64Var(&o.seed, "seed", -1, "random seed (-1: from the clock)")
	f.IntVarP(&o.threads, "threads", "t", 0, "worker threads (0: one per CPU)")
	f.IntVarP(&o.ctxSize, "ctx-size", "c", 0, "context length in tokens (0: the model's, at most 4096)")
	f.StringVar(&o.cacheType, "cache-type", "f16", "KV cache element type: f16, f32 or q8_0 (q8_0 needs a head dimension that is a multiple of 32)")
	f.BoolVar(&o.echo, "echo", true, "print the prompt before the generated text")
	return cmd
}

// loadModel loads the model at path with its KV cache of the --cache-type
// named; opts gives the other options.
func loadModel(path, cacheType string, opts model.Options) (*model.Model, error) {
	ct, err := model.ParseCacheType(cacheType)
	if err != nil {
		return nil, err
	}
	opts.CacheType = ct
	return model.Load(path, opts)
}

func runGenerate(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	if o.modelPath == "" {
		return fmt.Errorf("no model: use -m MODEL.gguf")
	}
	if o.seed < 0 {
		o.sampling.Seed = uint64(time.Now().UnixNano())
	} else {
		o.sampling.Seed = uint64(o.seed)
	}
	if err := o.sampling.Validate(); err != nil {
		return err
	}
	m, err := loadModel(o.modelPath, o.cacheType, model.Options{Threads: o.threads})
	if err != nil {
		return err
	}
	defer m.Close()
	tok := m.Tokenizer

	ctxSize := o.ctxSize
	if ctxSize <= 0 {
		ctxSize = min(m.Config.ContextLength, 4096)
	}
	tokens := tok.Encode(o.prompt, true, true)
	if len(tokens) == 0 {
		return fmt.Errorf("the prompt is empty and the tokenizer adds no BOS: nothing to start from")
	}
	if len(tokens) >= ctxSize {
		return fmt.Errorf("the prompt has %d tokens; the context of %d leaves no room to generate (raise --ctx-size)", len(tokens), ctxSize)
	}
	seq := m.NewSequence(ctxSize)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	if o.echo {
		fmt.Fprint(out, o.prompt)
		out.Flush()
	}

	start := time.Now()
	res, err := seq.Forward(ctx, tokens, model.ForwardOptions{})
	if err != nil {
		return err
	}
	promptTime := time.Since(start)

	sampler := sample.New(o.sampling)
	dec := tok.NewDecoder(tokenizer.DecodeOptions{})
	history := append([]int32(nil), tokens...)
	logits := make([]float32, m.Config.Vocab)
	generated := 0
	steps := 0 // decode passes
	reason := "-n 0: nothing to generate"
	genStart := time.Now()
	for o.maxTokens != 0 {
		copy(logits, res.Last())
		next := sampler.Sample(logits, history)
		if tok.IsEOG(next) {
			reason = "end of generation token"
			break
		}
		history = append(history, next)
		generated++
		out.WriteString(dec.Add(next))
		out.Flush()
		if o.maxTokens >= 0 && generated >= o.maxTokens {
			reason = fmt.Sprintf("%d tokens generated (-n)", o.maxTokens)
			break
		}
		res, err = seq.Forward(ctx, []int32{next}, model.ForwardOptions{})
		if errors.Is(err, model.ErrContextFull) {
			reason = fmt.Sprintf("context of %d tokens is full", ctxSize)
			break
		}
		if errors.Is(err, context.Canceled) {
			reason = "interrupted"
			break
		}
		if err != nil {
			out.WriteString(dec.Flush())
			out.Flush()
			fmt.Fprintln(stderr)
			return err
		}
		steps++
	}
	genTime := time.Since(genStart)
	out.WriteString(dec.Flush())
	out.WriteString("\n")
	out.Flush()

	fmt.Fprintf(stderr, "stopped: %s\n", reason)
	fmt.Fprintf(stderr, "prompt: %d tokens in %.3f s (%.2f tokens/s)\n", len(tokens), promptTime.Seconds(), float64(len(tokens))/promptTime.Seconds())
	if steps > 0 {
		fmt.Fprintf(stderr, "generation: %d tokens, %d decode passes in %.3f s (%.2f tokens/s), %d threads, kernels %s\n",
			generated, steps, genTime.Seconds(), float64(steps)/genTime.Seconds(), m.Threads(), kernels.Impl())
	} else {
		fmt.Fprintf(stderr, "generation: %d tokens\n", generated)
	}
	return nil
}
