package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/server"
)

func newExplainCmd() *cobra.Command {
	var (
		modelPath string
		top       int
		maxTokens int
		ctxSize   int
		threads   int
		noColor   bool
		asJSON    bool
		attention bool
		layers    bool
		temp      float64
		seed      int64
	)
	cmd := &cobra.Command{
		Use:   `explain -m MODEL.gguf "text"`,
		Short: "Show how expected each token of a text was to the model",
		Long: `explain feeds a text (the argument, or stdin when it is "-" or absent) to the
model and shows, for every token, the probability the model gave it before
seeing it: tokens are coloured green (likely), yellow, red (surprising) when
the output is a terminal; then a table with each token's log probability,
rank, the entropy of the prediction (bits) and the alternatives the model
preferred; then the prediction after the last token and a summary
(perplexity, mean surprisal).

--max-tokens N also generates N tokens (greedy unless --temperature) and
explains them. --attention lists, for the last position, the positions each
head attends to most; --layers shows the logit lens: what each layer's hidden
state would predict. --json prints the same data as POST /v1/explain.`,
		Example: `  foretoken explain -m stories260K.gguf "Once upon a time, there was a dog."
  echo "The cat sat" | foretoken explain -m model.gguf --max-tokens 5 --layers`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if modelPath == "" {
				return errors.New("no model: use -m MODEL.gguf")
			}
			if top < 0 || top > 20 {
				return fmt.Errorf("--top %d is outside [0, 20]", top)
			}
			if maxTokens < 0 {
				return fmt.Errorf("--max-tokens %d is negative", maxTokens)
			}
			text, err := explainInput(cmd.InOrStdin(), args)
			if err != nil {
				return err
			}
			eng, err := server.LoadModel(modelPath, threads)
			if err != nil {
				return err
			}
			defer eng.Close()
			ids, err := eng.Tokenize(text, true)
			if err != nil {
				return err
			}
			n := ctxSize
			if n <= 0 {
				n = len(ids) + maxTokens
			}
			if len(ids)+maxTokens > n {
				return fmt.Errorf("%d prompt tokens and %d to generate exceed the context of %d", len(ids), maxTokens, n)
			}
			p := server.ExplainParams{Prompt: ids, TopLogprobs: top, MaxTokens: maxTokens, Attention: attention, Layers: layers}
			p.Sampling.Temperature = float32(temp)
			p.Sampling.Seed = uint64(seed)
			ex, err := server.Explain(cmd.Context(), eng, eng.NewSequence(n), p)
			if err != nil {
				return err
			}
			ex.Model = modelPath
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(ex)
			}
			color := !noColor && os.Getenv("NO_COLOR") == "" && isTerminal(out)
			printExplanation(out, ex, color)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF model file")
	f.IntVar(&top, "top", 5, "alternatives to list per token (0-20)")
	f.IntVar(&maxTokens, "max-tokens", 0, "tokens to generate and explain after the text")
	f.IntVar(&ctxSize, "ctx-size", 0, "context length (0: just what the text needs)")
	f.IntVarP(&threads, "threads", "t", 0, "worker threads (0: one per CPU)")
	f.BoolVar(&noColor, "no-color", false, "no ANSI colours (also off when not a terminal or NO_COLOR is set)")
	f.BoolVar(&asJSON, "json", false, "print JSON, as POST /v1/explain answers")
	f.BoolVar(&attention, "attention", false, "show where each head of each layer looks from the last position")
	f.BoolVar(&layers, "layers", false, "show the logit lens: each layer's prediction for the last position")
	f.Float64Var(&temp, "temperature", 0, "sampling temperature for --max-tokens (0: greedy)")
	f.Int64Var(&seed, "seed", 0, "random seed for sampling")
	return cmd
}

func explainInput(stdin io.Reader, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return args[0], nil
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return "", errors.New("no text: give it as the argument or on stdin")
	}
	return text, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
	ansiBold   = "\x1b[1m"
)

// probColor buckets a probability: green above 1/2, yellow above 1/10,
// red below.
func probColor(lp float64) string {
	switch p := math.Exp(lp); {
	case p >= 0.5:
		return ansiGreen
	case p >= 0.1:
		return ansiYellow
	}
	return ansiRed
}

// visible shows a token's text on one line: control characters escaped.
func visible(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func printExplanation(w io.Writer, ex *server.Explanation, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	// The text, each token in the colour of its probability; generated
	// tokens underlined by brackets when there is no colour.
	var sb strings.Builder
	for _, t := range ex.Tokens {
		text := t.Text
		if t.Special {
			text = paint(ansiDim, text)
		} else if t.Logprob != nil {
			text = paint(probColor(float64(*t.Logprob)), text)
		}
		if t.Generated && !color {
			text = "[" + text + "]"
		}
		sb.WriteString(text)
	}
	fmt.Fprintln(w, sb.String())
	if color {
		fmt.Fprintf(w, "%s  %s  %s\n", paint(ansiGreen, "p ≥ 0.5"), paint(ansiYellow, "p ≥ 0.1"), paint(ansiRed, "p < 0.1"))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "%4s  %-16s %9s %7s %5s %8s  %s\n", "pos", "token", "logprob", "p", "rank", "entropy", "alternatives (p)")
	for i, t := range ex.Tokens {
		tok := fmt.Sprintf("%q", t.Text)
		if t.Generated {
			tok = "+" + tok
		}
		if t.Logprob == nil {
			fmt.Fprintf(w, "%4d  %-16s %9s %7s %5s %8s\n", i, tok, "-", "-", "-", "-")
			continue
		}
		lp := float64(*t.Logprob)
		line := fmt.Sprintf("%4d  %-16s %9.4f %7.4f %5d %8.3f  %s", i, tok, lp, math.Exp(lp), *t.Rank, float64(*t.Entropy), alternatives(t.TopLogprobs))
		if color {
			line = probColor(lp) + line + ansiReset
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nnext token (entropy %.3f bits): %s\n", float64(ex.Next.Entropy), alternatives(ex.Next.TopLogprobs))
	s := ex.Summary
	fmt.Fprintf(w, "%s %d tokens scored, total logprob %.4f, perplexity %.4f, mean surprisal %.3f bits\n",
		paint(ansiBold, "summary:"), s.Scored, float64(s.TotalLogprob), float64(s.Perplexity), float64(s.MeanSurprisalBits))

	if len(ex.Layers) > 0 {
		fmt.Fprintln(w, "\nlogit lens (last position): what each layer's hidden state predicts")
		for _, l := range ex.Layers {
			fmt.Fprintf(w, "  layer %2d: %s\n", l.Layer, alternatives(l.TopLogprobs))
		}
	}
	if len(ex.Attention) > 0 {
		fmt.Fprintln(w, "\nattention from the last position: the 3 positions each head weighs most")
		for _, l := range ex.Attention {
			for h, weights := range l.Heads {
				fmt.Fprintf(w, "  layer %2d head %2d: %s\n", l.Layer, h, topAttention(ex, weights, 3))
			}
		}
	}
}

func alternatives(c []server.TokenProb) string {
	parts := make([]string, len(c))
	for i, x := range c {
		parts[i] = fmt.Sprintf("%s %.3f", strconv.Quote(visible(x.Token)), math.Exp(float64(x.Logprob)))
	}
	return strings.Join(parts, ", ")
}

func topAttention(ex *server.Explanation, weights []float32, k int) string {
	idx := make([]int, len(weights))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return weights[idx[a]] > weights[idx[b]] })
	var parts []string
	for _, i := range idx[:min(k, len(idx))] {
		text := ""
		if i < len(ex.Tokens) {
			text = ex.Tokens[i].Text
		}
		parts = append(parts, fmt.Sprintf("%d %q %.3f", i, text, weights[i]))
	}
	return strings.Join(parts, ", ")
}
