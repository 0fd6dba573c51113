package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/inference/model"
	"github.com/foretoken/foretoken/inference/sample"
)

func newScoreCmd() *cobra.Command {
	var (
		modelPath string
		top       int
		greedy    int
		threads   int
		cacheType string
	)
	cmd := &cobra.Command{
		Use:   "score -m MODEL.gguf < ids.txt",
		Short: "Print the log-probabilities a model gives token id sequences, as JSON lines",
		Long: `score reads lines of whitespace-separated token ids from stdin. For each line it
feeds the ids as one batch, then decodes --greedy tokens one at a time with the KV
cache, and prints one JSON object:

  {"tokens":[...], "prompt_top":[[[id,logprob],...],...], "greedy":[...], "greedy_top":[...]}

prompt_top[i] holds the --top most likely next tokens after tokens[0..i];
greedy_top[j] those after feeding greedy[j]. Log-probabilities are the
log-softmax of the raw logits; ties go to the lower id. This is the format of
llama.cpp's reference outputs in the shared test data, so the two can be diffed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" {
				return fmt.Errorf("no model: use -m MODEL.gguf")
			}
			if top < 1 {
				return fmt.Errorf("--top must be at least 1")
			}
			if greedy < 0 {
				return fmt.Errorf("--greedy must not be negative")
			}
			m, err := loadModel(modelPath, cacheType, model.Options{Threads: threads})
			if err != nil {
				return err
			}
			defer m.Close()
			return score(cmd.Context(), m, cmd.InOrStdin(), cmd.OutOrStdout(), top, greedy)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF model file")
	f.IntVar(&top, "top", 20, "number of most likely tokens to list per position")
	f.IntVar(&greedy, "greedy", 32, "number of greedy tokens to decode after each line")
	f.IntVarP(&threads, "threads", "t", 0, "worker threads (0: one per CPU)")
	f.StringVar(&cacheType, "cache-type", "f16", "KV cache element type: f16, f32 or q8_0 (q8_0 needs a head dimension that is a multiple of 32)")
	return cmd
}

func score(ctx context.Context, m *model.Model, in io.Reader, out io.Writer, top, greedy int) error {
	if ctx == nil {
		ctx = context.Background()
	}
	w := bufio.NewWriter(out)
	defer w.Flush()
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<24)
	lp := make([]float32, m.Config.Vocab)
	var cands []sample.Candidate
	var b []byte
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		tokens := make([]int32, len(fields))
		for i, s := range fields {
			v, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				return fmt.Errorf("line %d: %q is not a token id", line, s)
			}
			tokens[i] = int32(v)
		}
		seq := m.NewSequence(len(tokens) + greedy)
		o, err := seq.Forward(ctx, tokens, model.ForwardOptions{Logits: model.LogitsAll})
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		b = append(b[:0], `{"tokens":`...)
		b = appendIDs(b, tokens)
		b = append(b, `,"prompt_top":[`...)
		for i := range tokens {
			if i > 0 {
				b = append(b, ',')
			}
			cands = sample.TopK(cands, sample.LogSoftmax(lp, o.Row(i)), top)
			b = appendTop(b, cands)
		}
		b = append(b, ']')
		var gen []int32
		var gtop []byte
		for j := range greedy {
			next := sample.Greedy(lp)
			gen = append(gen, next)
			if o, err = seq.Forward(ctx, []int32{next}, model.ForwardOptions{}); err != nil {
				return fmt.Errorf("line %d, greedy step %d: %w", line, j, err)
			}
			if j > 0 {
				gtop = append(gtop, ',')
			}
			cands = sample.TopK(cands, sample.LogSoftmax(lp, o.Last()), top)
			gtop = appendTop(gtop, cands)
		}
		b = append(b, `,"greedy":`...)
		b = appendIDs(b, gen)
		b = append(b, `,"greedy_top":[`...)
		b = append(b, gtop...)
		b = append(b, "]}\n"...)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return sc.Err()
}

func appendIDs(b []byte, ids []int32) []byte {
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return append(b, ']')
}

func appendTop(b []byte, c []sample.Candidate) []byte {
	b = append(b, '[')
	for i, x := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(x.ID), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(x.Score), 'f', 6, 32)
		b = append(b, ']')
	}
	return append(b, ']')
}
