package server

import (
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/config"

	"github.com/foretoken/foretoken/internal/testdata"
)

type chatResp struct {
	Choices []struct {
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
		Logprobs     *struct {
			Content []struct {
				Token       string  `json:"token"`
				Logprob     float64 `json:"logprob"`
				Bytes       []int   `json:"bytes"`
				TopLogprobs []struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
				} `json:"top_logprobs"`
			} `json:"content"`
		} `json:"logprobs"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// TestChatUsesTemplate checks that chat on qwen2-256 renders Qwen 2.5's
// template (default system prompt, ChatML markers) by comparing with a
// plain completion of the prompt that template produces.
func TestChatUsesTemplate(t *testing.T) {
	ts := startServer(t, nil)
	const rendered = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
		"<|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\n"
	var chat chatResp
	resp := ts.post(t, "/v1/chat/completions", map[string]any{"model": "qwen2-256.f16",
		"messages":   []map[string]any{{"role": "user", "content": []map[string]any{{"type": "text", "text": "Tell me a story"}}}},
		"max_tokens": 12, "temperature": 0, "logprobs": true, "top_logprobs": 3}, &chat)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var plain completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "qwen2-256.f16", "prompt": rendered, "max_tokens": 12, "temperature": 0}, &plain)
	if chat.Usage.PromptTokens != plain.Usage.PromptTokens {
		t.Errorf("chat prompt has %d tokens, the rendered template %d", chat.Usage.PromptTokens, plain.Usage.PromptTokens)
	}
	if chat.Choices[0].Message.Content != plain.Choices[0].Text {
		t.Errorf("chat answer %q, completion of the rendered prompt %q", chat.Choices[0].Message.Content, plain.Choices[0].Text)
	}
	if chat.Choices[0].Message.Role != "assistant" {
		t.Errorf("role %q", chat.Choices[0].Message.Role)
	}
	lp := chat.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != chat.Usage.CompletionTokens {
		t.Fatalf("logprobs %+v for %d tokens", lp, chat.Usage.CompletionTokens)
	}
	for i, c := range lp.Content {
		if len(c.TopLogprobs) != 3 {
			t.Errorf("token %d: %d top logprobs, want 3", i, len(c.TopLogprobs))
		}
		// Greedy: the chosen token is the most likely one.
		if len(c.TopLogprobs) > 0 && math.Abs(c.TopLogprobs[0].Logprob-c.Logprob) > 1e-6 {
			t.Errorf("token %d: logprob %g, best alternative %g", i, c.Logprob, c.TopLogprobs[0].Logprob)
		}
		if len(c.Bytes) == 0 || c.Logprob > 0 {
			t.Errorf("token %d: %+v", i, c)
		}
	}
}

// TestChatStreamEqualsNonStream compares chat streaming deltas with the
// whole answer, and checks the chunk shapes.
func TestChatStreamEqualsNonStream(t *testing.T) {
	ts := startServer(t, nil)
	body := map[string]any{"model": "qwen2-256.q8_0", "messages": []map[string]any{
		{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"},
		{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Story?"}},
		"max_completion_tokens": 20, "temperature": 0.7, "seed": 11}
	var plain chatResp
	ts.post(t, "/v1/chat/completions", body, &plain)
	body["stream"] = true
	events := ts.stream(t, "/v1/chat/completions", body)
	var text strings.Builder
	for i, ev := range events {
		if ev["object"] != "chat.completion.chunk" {
			t.Errorf("event %d object %v", i, ev["object"])
		}
		for _, c := range ev["choices"].([]any) {
			delta := c.(map[string]any)["delta"].(map[string]any)
			if i == 0 && delta["role"] != "assistant" {
				t.Errorf("first delta %v has no assistant role", delta)
			}
			if s, ok := delta["content"].(string); ok {
				text.WriteString(s)
			}
		}
	}
	if text.String() != plain.Choices[0].Message.Content {
		t.Errorf("stream %q, plain %q", text.String(), plain.Choices[0].Message.Content)
	}
}

// TestChatFallbackTemplate: stories260K has no chat template; chat still
// answers through the ChatML fallback.
func TestChatFallbackTemplate(t *testing.T) {
	ts := startServer(t, nil)
	var got chatResp
	resp := ts.post(t, "/v1/chat/completions", map[string]any{"model": "stories260K",
		"messages": []map[string]any{{"role": "user", "content": "Once upon a time"}}, "max_tokens": 8, "temperature": 0}, &got)
	if resp.StatusCode != http.StatusOK || got.Usage.CompletionTokens == 0 {
		t.Fatalf("status %d, %+v", resp.StatusCode, got)
	}
	// The same answer as a plain completion of the ChatML text, written
	// out here by hand.
	const rendered = "<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n"
	var plain completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": rendered, "max_tokens": 8, "temperature": 0}, &plain)
	if got.Usage.PromptTokens != plain.Usage.PromptTokens {
		t.Errorf("chat prompt has %d tokens, the ChatML text %d", got.Usage.PromptTokens, plain.Usage.PromptTokens)
	}
	if len(plain.Choices) != 1 || got.Choices[0].Message.Content != plain.Choices[0].Text {
		t.Errorf("chat answer %q, completion of the ChatML text %+v", got.Choices[0].Message.Content, plain.Choices)
	}
}

type explainResp struct {
	Tokens []struct {
		ID          int32    `json:"id"`
		Text        string   `json:"text"`
		Offset      int      `json:"offset"`
		Special     bool     `json:"special"`
		Generated   bool     `json:"generated"`
		Logprob     *float64 `json:"logprob"`
		Rank        *int     `json:"rank"`
		Entropy     *float64 `json:"entropy_bits"`
		TopLogprobs []struct {
			ID      int32   `json:"id"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"tokens"`
	Next struct {
		Entropy     float64 `json:"entropy_bits"`
		TopLogprobs []struct {
			ID      int32   `json:"id"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"next"`
	Summary struct {
		Scored            int     `json:"scored_tokens"`
		TotalLogprob      float64 `json:"total_logprob"`
		Perplexity        float64 `json:"perplexity"`
		MeanSurprisalBits float64 `json:"mean_surprisal_bits"`
	} `json:"summary"`
	Attention []struct {
		Layer int         `json:"layer"`
		Heads [][]float64 `json:"heads"`
	} `json:"attention"`
	Layers []struct {
		Layer       int `json:"layer"`
		TopLogprobs []struct {
			ID      int32   `json:"id"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"layers"`
}

// TestExplainMatchesReference checks /v1/explain's per-token numbers and
// summary against llama.cpp's logprobs for the same ids, and the shapes of
// attention and the logit lens.
func TestExplainMatchesReference(t *testing.T) {
	ts := startServer(t, nil)
	ref := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))[1]
	var got explainResp
	resp := ts.post(t, "/v1/explain", map[string]any{"model": "stories260K", "prompt": ref.Tokens, "top_logprobs": 4,
		"attention": true, "layers": true}, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(got.Tokens) != len(ref.Tokens) {
		t.Fatalf("%d tokens, want %d", len(got.Tokens), len(ref.Tokens))
	}
	if got.Tokens[0].Logprob != nil || !got.Tokens[0].Special {
		t.Errorf("first token (BOS) %+v: want special, no logprob", got.Tokens[0])
	}
	sum, n := 0.0, 0
	for i := 1; i < len(ref.Tokens); i++ {
		tk := got.Tokens[i]
		want, ok := refLogprob(ref.PromptTop[i-1], ref.Tokens[i])
		if tk.Logprob == nil || tk.Rank == nil || tk.Entropy == nil {
			t.Fatalf("token %d lacks numbers: %+v", i, tk)
		}
		if ok && math.Abs(*tk.Logprob-want) > 0.04 {
			t.Errorf("token %d logprob %.4f, want %.4f", i, *tk.Logprob, want)
		}
		if ok {
			rank := 1
			for _, c := range ref.PromptTop[i-1] {
				if c[1] > want+1e-3 {
					rank++
				}
			}
			if *tk.Rank != rank && math.Abs(ref.PromptTop[i-1][max(rank-1, 0)][1]-want) > 1e-3 {
				t.Errorf("token %d rank %d, want %d", i, *tk.Rank, rank)
			}
		}
		if len(tk.TopLogprobs) != 4 || tk.TopLogprobs[0].ID != int32(ref.PromptTop[i-1][0][0]) {
			t.Errorf("token %d alternatives %+v, reference best %v", i, tk.TopLogprobs, ref.PromptTop[i-1][0])
		}
		if *tk.Entropy < 0 || *tk.Entropy > math.Log2(512)+1e-6 {
			t.Errorf("token %d entropy %g bits out of range", i, *tk.Entropy)
		}
		sum += *tk.Logprob
		n++
		if tk.Offset <= got.Tokens[i-1].Offset && len(got.Tokens[i-1].Text) > 0 {
			t.Errorf("token %d offset %d not after %d", i, tk.Offset, got.Tokens[i-1].Offset)
		}
	}
	if got.Summary.Scored != n || math.Abs(got.Summary.TotalLogprob-sum) > 1e-3 {
		t.Errorf("summary %+v, want %d tokens totalling %.4f", got.Summary, n, sum)
	}
	if ppl := math.Exp(-sum / float64(n)); math.Abs(got.Summary.Perplexity-ppl) > 1e-3*ppl {
		t.Errorf("perplexity %g, want %g", got.Summary.Perplexity, ppl)
	}
	if bits := -sum / float64(n) / math.Ln2; math.Abs(got.Summary.MeanSurprisalBits-bits) > 1e-3 {
		t.Errorf("mean surprisal %g bits, want %g", got.Summary.MeanSurprisalBits, bits)
	}
	last := ref.PromptTop[len(ref.Tokens)-1]
	if got.Next.TopLogprobs[0].ID != int32(last[0][0]) || math.Abs(got.Next.TopLogprobs[0].Logprob-last[0][1]) > 0.04 {
		t.Errorf("next prediction %+v, reference %v", got.Next.TopLogprobs[0], last[0])
	}
	// stories260K: 5 layers, 8 heads.
	if len(got.Attention) != 5 || len(got.Attention[0].Heads) != 8 {
		t.Fatalf("attention has %d layers", len(got.Attention))
	}
	for _, l := range got.Attention {
		for h, w := range l.Heads {
			s := 0.0
			for _, v := range w {
				s += v
			}
			if len(w) != len(ref.Tokens) || math.Abs(s-1) > 1e-3 {
				t.Errorf("layer %d head %d: %d weights summing to %g", l.Layer, h, len(w), s)
			}
		}
	}
	if len(got.Layers) != 5 {
		t.Fatalf("logit lens has %d layers, want 5", len(got.Layers))
	}
	// The last layer's lens is the model's own prediction.
	top := got.Layers[4].TopLogprobs[0]
	if top.ID != got.Next.TopLogprobs[0].ID || math.Abs(top.Logprob-got.Next.TopLogprobs[0].Logprob) > 1e-3 {
		t.Errorf("last layer lens %+v != prediction %+v", top, got.Next.TopLogprobs[0])
	}
}

// TestExplainGenerates: with max_tokens the greedy continuation is
// explained too and follows the reference.
func TestExplainGenerates(t *testing.T) {
	ts := startServer(t, nil)
	ref := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))[0]
	var got explainResp
	ts.post(t, "/v1/explain", map[string]any{"model": "stories260K", "prompt": ref.Tokens, "max_tokens": 5}, &got)
	if len(got.Tokens) != len(ref.Tokens)+5 {
		t.Fatalf("%d tokens, want %d", len(got.Tokens), len(ref.Tokens)+5)
	}
	for k := range 5 {
		tk := got.Tokens[len(ref.Tokens)+k]
		if !tk.Generated || tk.ID != ref.Greedy[k] || *tk.Rank != 1 {
			t.Errorf("generated %d: %+v, want id %d rank 1", k, tk, ref.Greedy[k])
		}
	}
}

func TestTokenizeDetokenize(t *testing.T) {
	ts := startServer(t, nil)
	var tok struct {
		Tokens []int32 `json:"tokens"`
	}
	ts.post(t, "/tokenize", map[string]any{"model": "stories260K", "content": "Once upon a time", "add_special": true}, &tok)
	want := []int32{1, 403, 407, 261, 378} // the first line of the reference ids
	if len(tok.Tokens) != len(want) {
		t.Fatalf("tokens %v, want %v", tok.Tokens, want)
	}
	for i := range want {
		if tok.Tokens[i] != want[i] {
			t.Fatalf("tokens %v, want %v", tok.Tokens, want)
		}
	}
	var pieces struct {
		Tokens []struct {
			ID    int32  `json:"id"`
			Piece string `json:"piece"`
		} `json:"tokens"`
	}
	ts.post(t, "/tokenize", map[string]any{"model": "stories260K", "content": "Once upon", "with_pieces": true}, &pieces)
	if len(pieces.Tokens) != 2 || pieces.Tokens[0].Piece != " Once" {
		t.Errorf("pieces %+v", pieces.Tokens)
	}
	var det struct {
		Content string `json:"content"`
	}
	ts.post(t, "/detokenize", map[string]any{"model": "stories260K", "tokens": tok.Tokens[1:]}, &det)
	if det.Content != "Once upon a time" {
		t.Errorf("detokenize %q, want %q", det.Content, "Once upon a time")
	}
}

// TestTokenizeDefaultModel: llama-server clients send no model; with one
// model served that one is used, with several the request is refused.
func TestTokenizeDefaultModel(t *testing.T) {
	one := startServer(t, func(c *config.Config) {
		c.Models = []config.ModelSpec{{Path: filepath.Join(c.ModelDirs[0], "stories260K.gguf")}}
		c.ModelDirs = nil
	})
	var tok struct {
		Tokens []int32 `json:"tokens"`
	}
	if resp := one.post(t, "/tokenize", map[string]any{"content": "Once upon a time", "add_special": true}, &tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if want := []int32{1, 403, 407, 261, 378}; !slices.Equal(tok.Tokens, want) { // the first line of the reference ids
		t.Errorf("tokens %v, want %v", tok.Tokens, want)
	}
	var det struct {
		Content string `json:"content"`
	}
	if resp := one.post(t, "/detokenize", map[string]any{"tokens": []int32{403, 407, 261, 378}}, &det); resp.StatusCode != http.StatusOK || det.Content != "Once upon a time" {
		t.Errorf("detokenize: status %d, %q", resp.StatusCode, det.Content)
	}
	many := startServer(t, nil)
	for _, path := range []string{"/tokenize", "/detokenize"} {
		var e errorResp
		resp := many.post(t, path, map[string]any{"content": "a", "tokens": []int32{1}}, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Error.Param == nil || *e.Error.Param != "model" {
			t.Errorf("%s without a model among several: status %d, %+v", path, resp.StatusCode, e.Error)
		}
	}
}
