package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/internal/testdata"
)

func runExplain(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newExplainCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestExplainAgreesWithScore: the logprob explain gives each token is the
// one `foretoken score` lists for it, and the alternatives are score's top.
func TestExplainAgreesWithScore(t *testing.T) {
	model := testdata.Path(t, "models", "stories260K.gguf")
	out, err := runExplain(t, "", "-m", model, "--json", "--top", "5", "Once upon a time, there was a big dog.")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Tokens []struct {
			ID          int32    `json:"id"`
			Logprob     *float64 `json:"logprob"`
			TopLogprobs []struct {
				ID      int32   `json:"id"`
				Logprob float64 `json:"logprob"`
			} `json:"top_logprobs"`
		} `json:"tokens"`
		Summary struct {
			Perplexity float64 `json:"perplexity"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ids []string
	for _, tk := range ex.Tokens {
		ids = append(ids, fmt.Sprint(tk.ID))
	}
	scoreCmd := newScoreCmd()
	var scoreOut bytes.Buffer
	scoreCmd.SetOut(&scoreOut)
	scoreCmd.SetIn(strings.NewReader(strings.Join(ids, " ") + "\n"))
	scoreCmd.SetArgs([]string{"-m", model, "--top", "512", "--greedy", "0"})
	if err := scoreCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var sc struct {
		PromptTop [][][2]float64 `json:"prompt_top"`
	}
	if err := json.Unmarshal(scoreOut.Bytes(), &sc); err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for i := 1; i < len(ex.Tokens); i++ {
		tk := ex.Tokens[i]
		want := math.NaN()
		for _, c := range sc.PromptTop[i-1] {
			if int32(c[0]) == tk.ID {
				want = c[1]
			}
		}
		// NaN (id missing from score's list) fails too: NaN compares false.
		if tk.Logprob == nil || !(math.Abs(*tk.Logprob-want) <= 1e-5) {
			t.Errorf("token %d: explain %v, score %g", i, tk.Logprob, want)
		}
		for k, alt := range tk.TopLogprobs {
			if alt.ID != int32(sc.PromptTop[i-1][k][0]) || math.Abs(alt.Logprob-sc.PromptTop[i-1][k][1]) > 1e-5 {
				t.Errorf("token %d alternative %d: %+v, score %v", i, k, alt, sc.PromptTop[i-1][k])
			}
		}
		sum += want
	}
	if ppl := math.Exp(-sum / float64(len(ex.Tokens)-1)); !(math.Abs(ex.Summary.Perplexity-ppl) <= 1e-4*ppl) {
		t.Errorf("perplexity %g, from score's numbers %g", ex.Summary.Perplexity, ppl)
	}
}

// TestExplainMatchesReference: on the first reference prompt, explain
// gives llama.cpp's tokens, and each token's logprob and the top
// alternative are llama.cpp's (F32 tolerance of shared/README.md).
func TestExplainMatchesReference(t *testing.T) {
	model := testdata.Path(t, "models", "stories260K.gguf")
	prompts, err := os.ReadFile(testdata.Path(t, "reference", "logits", "prompts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := os.ReadFile(testdata.Path(t, "reference", "logits", "stories260K.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Tokens    []int32        `json:"tokens"`
		PromptTop [][][2]float64 `json:"prompt_top"`
	}
	line, _, _ := strings.Cut(string(refs), "\n")
	if err := json.Unmarshal([]byte(line), &ref); err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(prompts), "\n")
	out, err := runExplain(t, "", "-m", model, "--json", "--top", "1", text)
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Tokens []struct {
			ID          int32    `json:"id"`
			Logprob     *float64 `json:"logprob"`
			TopLogprobs []struct {
				ID int32 `json:"id"`
			} `json:"top_logprobs"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(ex.Tokens) != len(ref.Tokens) {
		t.Fatalf("%d tokens, reference has %d", len(ex.Tokens), len(ref.Tokens))
	}
	for i, tk := range ex.Tokens {
		if tk.ID != ref.Tokens[i] {
			t.Fatalf("token %d is %d, reference %d", i, tk.ID, ref.Tokens[i])
		}
		if i == 0 {
			continue
		}
		top := ref.PromptTop[i-1]
		if len(tk.TopLogprobs) == 0 || tk.TopLogprobs[0].ID != int32(top[0][0]) {
			t.Errorf("token %d: top alternative %+v, reference %v", i, tk.TopLogprobs, top[0])
		}
		for _, c := range top {
			if int32(c[0]) == tk.ID && (tk.Logprob == nil || !(math.Abs(*tk.Logprob-c[1]) <= 0.04)) {
				t.Errorf("token %d: logprob %v, reference %g", i, tk.Logprob, c[1])
			}
		}
	}
}

func TestExplainText(t *testing.T) {
	model := testdata.Path(t, "models", "stories260K.gguf")
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string
		bad   bool
	}{
		{"table", "", []string{"-m", model, "Once upon a time"}, []string{`" Once"`, "rank", "perplexity", "next token"}, false},
		{"stdin and layers", "Once upon a time\n", []string{"-m", model, "--layers", "--attention", "--max-tokens", "2"}, []string{"logit lens", "layer  4", "head  7", `+","`}, false},
		{"no colour when not a terminal", "", []string{"-m", model, "Once"}, nil, false},
		{"no model", "", []string{"text"}, nil, true},
		{"bad top", "", []string{"-m", model, "--top", "30", "text"}, nil, true},
		{"missing file", "", []string{"-m", "/nonexistent.gguf", "text"}, nil, true},
		{"empty stdin", "", []string{"-m", model}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runExplain(t, tc.stdin, tc.args...)
			if tc.bad {
				if err == nil {
					t.Errorf("no error; output %q", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "\x1b[") {
				t.Error("ANSI colours written to a non-terminal")
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
