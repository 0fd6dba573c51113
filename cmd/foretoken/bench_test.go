package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/internal/testdata"
)

func runBenchCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newBenchCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// The synthetic llama256 model (../shared/README.md): 4 layers, dim 256,
// 8 heads / 4 KV heads (head dim 32, so K and V are 128 wide), FFN 768, a
// 512-token vocabulary and its own output.weight. In F32 a decode step
// reads every tensor but the token embedding table:
// 4*(256 + 256*256 + 2*256*128 + 256*256 + 256 + 3*256*768) + 256 + 256*512
// = 3279104 values of 4 bytes.
const llama256F32StepBytes = 3279104 * 4

func TestBenchJSON(t *testing.T) {
	path := testdata.Path(t, "models", "synth", "llama256.f32.gguf")
	out, err := runBenchCmd(t, "-m", path, "-p", "16", "-n", "4", "-r", "2", "-t", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got:\n%s", out)
	}
	for i, want := range []string{"pp16", "tg4"} {
		var r benchResult
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, lines[i])
		}
		if r.Test != want || r.Runs != 2 || r.Threads != 1 || r.Model != "llama256.f32.gguf" {
			t.Errorf("line %d: %+v", i, r)
		}
		if !(r.TokensPerSecond > 0) || !(r.Stddev >= 0) || r.Kernels == "" {
			t.Errorf("%s: implausible %+v", want, r)
		}
		if want == "tg4" {
			if r.BytesPerToken != llama256F32StepBytes {
				t.Errorf("tg bytes per token %d, want %d", r.BytesPerToken, llama256F32StepBytes)
			}
			if gbs := float64(r.BytesPerToken) * r.TokensPerSecond / 1e9; !(r.GBPerSecond >= gbs*0.999 && r.GBPerSecond <= gbs*1.001) {
				t.Errorf("GB/s %g, want %g", r.GBPerSecond, gbs)
			}
		} else if r.BytesPerToken != 0 {
			t.Errorf("pp reports bytes per token %d", r.BytesPerToken)
		}
	}
}

func TestBenchTable(t *testing.T) {
	path := testdata.Path(t, "models", "synth", "llama256.q4_k_m.gguf")
	out, err := runBenchCmd(t, "-m", path, "-p", "8", "-n", "2", "-r", "1", "-t", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| model", "t/s", "llama256.q4_k_m.gguf", " pp8 |", " tg2 |", "of weights per step"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchErrors(t *testing.T) {
	path := testdata.Path(t, "models", "synth", "llama256.q4_0.gguf")
	for _, args := range [][]string{
		{},                                   // no model
		{"-m", path, "-p", "0", "-n", "0"},   // nothing to measure
		{"-m", path, "-r", "0"},              // no runs
		{"-m", path + ".missing", "-p", "4"}, // no such file
		{"-m", path, "-c", "0"},              // no sequences
		{"-m", path, "-n", "0", "-c", "2"},   // concurrency without generation
		{"-m", path, "--cache-type", "q4_0"}, // not a cache type
		{"-m", path, "-d", "-1"},             // negative depth
	} {
		if _, err := runBenchCmd(t, args...); err == nil {
			t.Errorf("bench %q: no error", args)
		}
	}
}

// TestBenchConcurrency: -c adds one test per number of sequences, each
// counting the tokens of all its streams, at the depth and cache type asked.
func TestBenchConcurrency(t *testing.T) {
	path := testdata.Path(t, "models", "synth", "llama256.q8_0.gguf")
	out, err := runBenchCmd(t, "-m", path, "-p", "0", "-n", "3", "-r", "1", "-t", "2", "-d", "40", "--cache-type", "q8_0", "-c", "1,2,4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 JSON lines, got:\n%s", out)
	}
	for i, conc := range []int{0, 1, 2, 4} {
		var r benchResult
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, lines[i])
		}
		tokens := 3 * max(conc, 1)
		if r.Concurrency != conc || r.Tokens != tokens || r.Depth != 40 || r.CacheType != "q8_0" || !(r.TokensPerSecond > 0) {
			t.Errorf("line %d: %+v, want concurrency %d, %d tokens, depth 40, q8_0", i, r, conc, tokens)
		}
		if conc > 1 {
			if gbs := float64(r.BytesPerToken) * r.TokensPerSecond / float64(conc) / 1e9; !(r.GBPerSecond >= gbs*0.999 && r.GBPerSecond <= gbs*1.001) {
				t.Errorf("x%d: GB/s %g, want %g (weights read once per step)", conc, r.GBPerSecond, gbs)
			}
		}
	}
}
