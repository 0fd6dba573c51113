package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/inference/model"
	"github.com/foretoken/foretoken/internal/testdata"
)

type scoreLine struct {
	Tokens    []int32        `json:"tokens"`
	PromptTop [][][2]float64 `json:"prompt_top"`
	Greedy    []int32        `json:"greedy"`
	GreedyTop [][][2]float64 `json:"greedy_top"`
}

func TestScoreMatchesReference(t *testing.T) {
	ids, err := os.ReadFile(testdata.Path(t, "reference", "logits", "ids.txt"))
	if err != nil {
		t.Fatal(err)
	}
	refData, err := os.ReadFile(testdata.Path(t, "reference", "logits", "stories260K.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(ids), "\n", 4)[:3] // three short lines
	m, err := model.Load(testdata.Path(t, "models", "stories260K.gguf"), model.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out bytes.Buffer
	if err := score(context.Background(), m, strings.NewReader(strings.Join(lines, "\n")+"\n\n"), &out, 20, 32); err != nil {
		t.Fatal(err)
	}
	got := bufio.NewScanner(&out)
	got.Buffer(nil, 1<<24)
	ref := bufio.NewScanner(bytes.NewReader(refData))
	ref.Buffer(nil, 1<<24)
	n := 0
	for got.Scan() {
		if !ref.Scan() {
			t.Fatal("more output lines than the reference")
		}
		var g, r scoreLine
		if err := json.Unmarshal(got.Bytes(), &g); err != nil {
			t.Fatalf("line %d is not JSON: %v", n, err)
		}
		if err := json.Unmarshal(ref.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if len(g.Tokens) != len(r.Tokens) || len(g.PromptTop) != len(r.Tokens) || len(g.Greedy) != 32 || len(g.GreedyTop) != 32 {
			t.Fatalf("line %d: %d tokens, %d prompt_top, %d greedy, %d greedy_top", n, len(g.Tokens), len(g.PromptTop), len(g.Greedy), len(g.GreedyTop))
		}
		for i := range g.PromptTop {
			if len(g.PromptTop[i]) != 20 {
				t.Fatalf("line %d position %d: %d entries, want 20", n, i, len(g.PromptTop[i]))
			}
			for j := 1; j < 20; j++ {
				if !(g.PromptTop[i][j][1] <= g.PromptTop[i][j-1][1]) {
					t.Fatalf("line %d position %d: not sorted", n, i)
				}
			}
			if g.PromptTop[i][0][0] != r.PromptTop[i][0][0] || !(math.Abs(g.PromptTop[i][0][1]-r.PromptTop[i][0][1]) <= 0.05) {
				t.Errorf("line %d position %d: top %v, reference %v", n, i, g.PromptTop[i][0], r.PromptTop[i][0])
			}
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d output lines, want 3 (blank input lines are skipped)", n)
	}
}

func TestScoreBadInput(t *testing.T) {
	m, err := model.Load(testdata.Path(t, "models", "stories260K.gguf"), model.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, in := range []string{"1 2 x\n", "1 99999\n"} {
		if err := score(context.Background(), m, strings.NewReader(in), &bytes.Buffer{}, 20, 2); err == nil {
			t.Errorf("input %q: no error", in)
		}
	}
}
