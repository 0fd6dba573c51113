package server

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/inference/tokenizer"
	"github.com/foretoken/foretoken/internal/testdata"
)

// refLine is one line of a reference logits file: llama.cpp's outputs for
// one line of ids.txt.
type refLine struct {
	Tokens    []int32        `json:"tokens"`
	PromptTop [][][2]float64 `json:"prompt_top"`
	Greedy    []int32        `json:"greedy"`
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

// pieces returns the tokenizer of a shared model, to turn reference ids
// into the text the server should produce.
func testTokenizer(t *testing.T, elem ...string) *tokenizer.Tokenizer {
	t.Helper()
	f, err := gguf.Open(testdata.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type completionResp struct {
	Choices []struct {
		Text         string `json:"text"`
		Index        int    `json:"index"`
		FinishReason string `json:"finish_reason"`
		Logprobs     *struct {
			Tokens        []string             `json:"tokens"`
			TokenLogprobs []*float64           `json:"token_logprobs"`
			TopLogprobs   []map[string]float64 `json:"top_logprobs"`
			TextOffset    []int                `json:"text_offset"`
		} `json:"logprobs"`
	} `json:"choices"`
	Usage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

// TestGreedyCompletionMatchesReference sends the reference prompts as token
// ids at temperature 0 and expects llama.cpp's greedy continuation.
func TestGreedyCompletionMatchesReference(t *testing.T) {
	ts := startServer(t, nil)
	refs := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))
	tok := testTokenizer(t, "models", "stories260K.gguf")
	for i, ref := range refs[:3] {
		var want []byte
		for _, id := range ref.Greedy {
			if tok.IsEOG(id) {
				break
			}
			if !tok.IsControl(id) {
				want = append(want, tok.Piece(id)...)
			}
		}
		var got completionResp
		resp := ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": ref.Tokens,
			"max_tokens": len(ref.Greedy), "temperature": 0}, &got)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("line %d: status %d: %+v", i, resp.StatusCode, got.Error)
		}
		if got.Choices[0].Text != string(want) {
			t.Errorf("line %d: text\n%q\nwant\n%q", i, got.Choices[0].Text, want)
		}
		if got.Usage.PromptTokens != len(ref.Tokens) || got.Usage.CompletionTokens != len(ref.Greedy) {
			t.Errorf("line %d: usage %+v, want %d prompt and %d completion tokens", i, got.Usage, len(ref.Tokens), len(ref.Greedy))
		}
	}
}

// TestGreedyFromText checks the README's story: the text prompt is
// tokenized with BOS and continued greedily.
func TestGreedyFromText(t *testing.T) {
	ts := startServer(t, nil)
	var got completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0}, &got)
	const want = ", there was a little girl named Lily. She loved to play outside in the park"
	if !strings.HasPrefix(want, got.Choices[0].Text) || len(got.Choices[0].Text) < 40 {
		t.Errorf("text %q, want a prefix of %q", got.Choices[0].Text, want)
	}
	if got.Choices[0].FinishReason != "length" {
		t.Errorf("finish_reason %q, want length", got.Choices[0].FinishReason)
	}
	// echo puts the prompt's tokens (BOS left out) before the answer.
	var echoed completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0, "echo": true}, &echoed)
	if want := " Once upon a time" + got.Choices[0].Text; echoed.Choices[0].Text != want {
		t.Errorf("echo text %q, want %q", echoed.Choices[0].Text, want)
	}
}

// TestEchoLogprobsMatchReference scores a text the way evaluation
// harnesses do (echo, max_tokens 0, logprobs) and compares every prompt
// token's logprob and alternatives with llama.cpp's.
func TestEchoLogprobsMatchReference(t *testing.T) {
	ts := startServer(t, nil)
	refs := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))
	const tol = 0.04 // F32: 99th percentile of the README
	for li, ref := range refs[:2] {
		var got completionResp
		ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": ref.Tokens,
			"max_tokens": 0, "echo": true, "logprobs": 5}, &got)
		if len(got.Choices) != 1 || got.Choices[0].Logprobs == nil {
			t.Fatalf("line %d: no logprobs: %+v", li, got)
		}
		lp := got.Choices[0].Logprobs
		if len(lp.Tokens) != len(ref.Tokens) {
			t.Fatalf("line %d: %d tokens, want %d", li, len(lp.Tokens), len(ref.Tokens))
		}
		if lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil {
			t.Errorf("line %d: first token has a logprob", li)
		}
		for i := 1; i < len(ref.Tokens); i++ {
			want, ok := refLogprob(ref.PromptTop[i-1], ref.Tokens[i])
			if !ok {
				continue // outside the reference's top 20
			}
			if lp.TokenLogprobs[i] == nil || math.Abs(*lp.TokenLogprobs[i]-want) > tol {
				t.Errorf("line %d token %d: logprob %v, want %.4f", li, i, lp.TokenLogprobs[i], want)
			}
			if len(lp.TopLogprobs[i]) != 5 {
				t.Errorf("line %d token %d: %d alternatives, want 5", li, i, len(lp.TopLogprobs[i]))
			}
			best := math.Inf(-1)
			for _, v := range lp.TopLogprobs[i] {
				best = math.Max(best, v)
			}
			if math.Abs(best-ref.PromptTop[i-1][0][1]) > tol {
				t.Errorf("line %d token %d: best alternative %.4f, want %.4f", li, i, best, ref.PromptTop[i-1][0][1])
			}
		}
		for i := 1; i < len(lp.TextOffset); i++ {
			if lp.TextOffset[i] < lp.TextOffset[i-1] {
				t.Errorf("line %d: text_offset decreases at %d: %v", li, i, lp.TextOffset)
				break
			}
		}
		if got.Usage.CompletionTokens != 0 || got.Choices[0].FinishReason != "length" {
			t.Errorf("line %d: max_tokens 0 generated %d tokens (finish %q)", li, got.Usage.CompletionTokens, got.Choices[0].FinishReason)
		}
	}
}

func refLogprob(top [][2]float64, id int32) (float64, bool) {
	for _, c := range top {
		if int32(c[0]) == id {
			return c[1], true
		}
	}
	return 0, false
}

// TestGeneratedLogprobs checks the logprobs of generated tokens against
// the reference's greedy path.
func TestGeneratedLogprobs(t *testing.T) {
	ts := startServer(t, nil)
	ref := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))[0]
	var got completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": ref.Tokens,
		"max_tokens": 4, "temperature": 0, "logprobs": 3}, &got)
	lp := got.Choices[0].Logprobs
	if lp == nil || len(lp.TokenLogprobs) != 4 {
		t.Fatalf("logprobs %+v", lp)
	}
	// The first generated token's prediction is the last prompt position's.
	want := ref.PromptTop[len(ref.Tokens)-1][0][1]
	if math.Abs(*lp.TokenLogprobs[0]-want) > 0.04 {
		t.Errorf("first generated logprob %.4f, want %.4f", *lp.TokenLogprobs[0], want)
	}
	if lp.TextOffset[0] != 0 {
		t.Errorf("text_offset[0] = %d, want 0", lp.TextOffset[0])
	}
}

// TestStreamEqualsNonStream runs the same requests with and without
// streaming; the texts must agree, also with sampling under a seed.
func TestStreamEqualsNonStream(t *testing.T) {
	ts := startServer(t, nil)
	tests := []map[string]any{
		{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0},
		{"model": "stories260K", "prompt": "The dog", "max_tokens": 40, "temperature": 0.9, "seed": 7, "top_k": 40},
		{"model": "stories260K", "prompt": "Lily went", "max_tokens": 40, "temperature": 0, "stop": []string{"park", "."}},
		{"model": "qwen2-256.f16", "prompt": "héllo wörld ✓", "max_tokens": 30, "temperature": 1, "seed": 3},
	}
	for i, body := range tests {
		var plain completionResp
		ts.post(t, "/v1/completions", body, &plain)
		sb := map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}}
		for k, v := range body {
			sb[k] = v
		}
		events := ts.stream(t, "/v1/completions", sb)
		var text strings.Builder
		finish := ""
		usageSeen := false
		for _, ev := range events {
			choices := ev["choices"].([]any)
			if u, ok := ev["usage"].(map[string]any); ok && u != nil {
				usageSeen = true
				if int(u["completion_tokens"].(float64)) != plain.Usage.CompletionTokens {
					t.Errorf("case %d: stream usage %v, plain %+v", i, u, plain.Usage)
				}
			}
			for _, c := range choices {
				ch := c.(map[string]any)
				s := ch["text"].(string)
				if !utf8ValidString(s) {
					t.Errorf("case %d: chunk %q splits a character", i, s)
				}
				text.WriteString(s)
				if f, ok := ch["finish_reason"].(string); ok {
					finish = f
				}
			}
		}
		if !usageSeen {
			t.Errorf("case %d: no usage chunk", i)
		}
		if text.String() != plain.Choices[0].Text {
			t.Errorf("case %d: stream %q != plain %q", i, text.String(), plain.Choices[0].Text)
		}
		if finish != plain.Choices[0].FinishReason {
			t.Errorf("case %d: finish %q vs %q", i, finish, plain.Choices[0].FinishReason)
		}
		if stops, ok := body["stop"].([]string); ok {
			for _, s := range stops {
				if strings.Contains(text.String(), s) {
					t.Errorf("case %d: text %q holds stop string %q", i, text.String(), s)
				}
			}
			if finish != "stop" {
				t.Errorf("case %d: finish %q, want stop", i, finish)
			}
		}
	}
}

func utf8ValidString(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

// TestStopStringNotStreamed sets a stop string the greedy story is known
// to contain and checks that no chunk ever carries any part of it.
func TestStopStringNotStreamed(t *testing.T) {
	ts := startServer(t, nil)
	events := ts.stream(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once upon a time",
		"max_tokens": 40, "temperature": 0, "stop": " named Lily", "stream": true})
	var text strings.Builder
	for _, ev := range events {
		for _, c := range ev["choices"].([]any) {
			text.WriteString(c.(map[string]any)["text"].(string))
		}
	}
	if text.String() != ", there was a little girl" {
		t.Errorf("streamed %q, want %q", text.String(), ", there was a little girl")
	}
}

// TestPromptCache sends the same prompt twice: the second request reuses
// all but the last prompt token from the slot's KV cache, with the same
// result.
func TestPromptCache(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Parallel = 1 })
	body := map[string]any{"model": "stories260K", "prompt": "Once upon a time there was a cat", "max_tokens": 12, "temperature": 0}
	var first, second completionResp
	ts.post(t, "/v1/completions", body, &first)
	ts.post(t, "/v1/completions", body, &second)
	if first.Usage.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("first request: %d cached tokens, want 0", first.Usage.PromptTokensDetails.CachedTokens)
	}
	if got, want := second.Usage.PromptTokensDetails.CachedTokens, second.Usage.PromptTokens-1; got != want {
		t.Errorf("second request: %d cached tokens, want %d", got, want)
	}
	if first.Choices[0].Text != second.Choices[0].Text {
		t.Errorf("cached run %q differs from fresh run %q", second.Choices[0].Text, first.Choices[0].Text)
	}
}

func TestMultiplePromptsAndN(t *testing.T) {
	ts := startServer(t, nil)
	var got completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": []string{"Once upon", "The cat"},
		"max_tokens": 5, "n": 2, "temperature": 0.8, "seed": 1}, &got)
	if len(got.Choices) != 4 {
		t.Fatalf("%d choices, want 4", len(got.Choices))
	}
	for i, c := range got.Choices {
		if c.Index != i {
			t.Errorf("choice %d has index %d", i, c.Index)
		}
	}
}

type embeddingRef struct {
	Model     string    `json:"model"`
	Pooling   string    `json:"pooling"`
	Text      string    `json:"text"`
	Embedding []float64 `json:"embedding"`
}

// TestEmbeddingsMatchReference compares every reference embedding (both
// poolings) by cosine similarity, as the shared README asks.
func TestEmbeddingsMatchReference(t *testing.T) {
	ts := startServer(t, nil)
	refs := readJSONL[embeddingRef](t, testdata.Path(t, "reference", "embeddings", "embeddings.jsonl"))
	for _, ref := range refs {
		model := strings.TrimSuffix(ref.Model, ".gguf")
		minCos := 0.99
		if model == "stories260K" {
			minCos = 0.999
		}
		for _, format := range []string{"float", "base64"} {
			var got struct {
				Data []struct {
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
				Usage struct {
					PromptTokens int `json:"prompt_tokens"`
				} `json:"usage"`
			}
			resp := ts.post(t, "/v1/embeddings", map[string]any{"model": model, "input": ref.Text, "pooling": ref.Pooling, "encoding_format": format}, &got)
			if resp.StatusCode != http.StatusOK || len(got.Data) != 1 {
				t.Fatalf("%s %s: status %d", model, ref.Pooling, resp.StatusCode)
			}
			vec := decodeEmbedding(t, got.Data[0].Embedding)
			if c := cosine(vec, ref.Embedding); c < minCos {
				t.Errorf("%s %s %q (%s): cosine %.5f < %.3f", model, ref.Pooling, ref.Text, format, c, minCos)
			}
		}
	}
}

func decodeEmbedding(t *testing.T, raw json.RawMessage) []float64 {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(b)/4)
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
		return out
	}
	var v []float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func cosine(a, b []float64) float64 {
	if len(a) != len(b) {
		return 0
	}
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

func TestEmbeddingsDimensionsAndBatch(t *testing.T) {
	ts := startServer(t, nil)
	var got struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	var fromIDs struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	ts.post(t, "/v1/embeddings", map[string]any{"model": "stories260K", "input": [][]int{{1, 403, 407}, {1, 378}}}, &fromIDs)
	if len(fromIDs.Data) != 2 || len(fromIDs.Data[1].Embedding) != 64 {
		t.Errorf("token-id input: %d embeddings", len(fromIDs.Data))
	}
	ts.post(t, "/v1/embeddings", map[string]any{"model": "stories260K", "input": []string{"a dog", "a cat", "a ball"}, "dimensions": 16}, &got)
	if len(got.Data) != 3 {
		t.Fatalf("%d embeddings, want 3", len(got.Data))
	}
	for i, d := range got.Data {
		if d.Index != i || len(d.Embedding) != 16 {
			t.Errorf("embedding %d: index %d, %d dims", i, d.Index, len(d.Embedding))
		}
		var ss float64
		for _, v := range d.Embedding {
			ss += v * v
		}
		if math.Abs(ss-1) > 1e-4 {
			t.Errorf("embedding %d has squared norm %g, want 1", i, ss)
		}
	}
}

// TestConcurrentGreedyBatched runs the reference prompts at once on a
// server with as many slots: their decode steps share batched forward
// passes (continuous batching), and each still gets llama.cpp's greedy
// continuation.
func TestConcurrentGreedyBatched(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Parallel = 3 })
	// Line 3 has a near tie (1e-3) in its greedy path that F16 rounding
	// may break either way, so it is left out.
	refs := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))[:3]
	tok := testTokenizer(t, "models", "stories260K.gguf")
	var wg sync.WaitGroup
	got := make([]completionResp, len(refs))
	for round := range 3 {
		for i, ref := range refs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": ref.Tokens,
					"max_tokens": len(ref.Greedy), "temperature": 0}, &got[i])
			}()
		}
		wg.Wait()
		for i, ref := range refs {
			var want []byte
			for _, id := range ref.Greedy {
				if tok.IsEOG(id) {
					break
				}
				want = append(want, tok.Piece(id)...)
			}
			if len(got[i].Choices) == 0 || got[i].Choices[0].Text != string(want) {
				t.Errorf("round %d line %d: %+v, want %q", round, i, got[i].Choices, want)
			}
		}
	}
	var batches, steps int64
	ts.mu.Lock()
	for sc := range ts.scheds {
		if sc.batch == nil {
			t.Fatal("no batcher with 3 slots")
		}
		batches, steps = sc.batch.batches.Load(), sc.batch.steps.Load()
	}
	ts.mu.Unlock()
	t.Logf("%d decode steps in %d batched passes", steps, batches)
	if steps <= batches {
		t.Errorf("%d decode steps in %d passes: no pass served two requests", steps, batches)
	}
	metrics, _ := io.ReadAll(ts.do(t, "GET", "/metrics", nil, nil, nil).Body)
	if want := fmt.Sprintf("foretoken_decode_batch_size_count %d", batches); !strings.Contains(string(metrics), want) {
		t.Errorf("metrics lack %q", want)
	}
}

// TestStreamUsageField: with stream_options.include_usage every chunk has
// a usage field, null but in the last (whose choices are empty), as in
// OpenAI's API; without it no chunk has one.
func TestStreamUsageField(t *testing.T) {
	ts := startServer(t, nil)
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		for _, include := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%v", path, include), func(t *testing.T) {
				body := map[string]any{"model": "stories260K", "prompt": "Once", "messages": []map[string]any{{"role": "user", "content": "Hi"}},
					"max_tokens": 4, "temperature": 0, "stream": true, "stream_options": map[string]any{"include_usage": include}}
				events := ts.stream(t, path, body)
				for i, ev := range events {
					u, has := ev["usage"]
					last := i == len(events)-1
					switch {
					case !include && has:
						t.Errorf("event %d has usage %v without include_usage", i, u)
					case include && !has:
						t.Errorf("event %d lacks the usage field", i)
					case include && !last && u != nil:
						t.Errorf("event %d: usage %v, want null", i, u)
					case include && last:
						m, _ := u.(map[string]any)
						if m == nil || m["completion_tokens"] != float64(4) || len(ev["choices"].([]any)) != 0 {
							t.Errorf("last event: usage %v, choices %v", u, ev["choices"])
						}
					}
				}
			})
		}
	}
}
