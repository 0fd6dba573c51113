package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ollama/ollama/api"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/internal/testdata"
)

// ollamaServer serves the Ollama API over the shared models and returns
// Ollama's own Go client for it, so the tests speak the real wire format.
func ollamaServer(t *testing.T) (*Server, *api.Client, string) {
	t.Helper()
	cfg := config.Default()
	cfg.ModelDirs = []string{testdata.Path(t, "models")}
	cfg.OllamaDir = "-"
	cfg.Threads = 1
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	srv.ollamaRoutes(r)
	hs := httptest.NewServer(r)
	t.Cleanup(func() {
		hs.Close()
		srv.models.close()
	})
	u, err := url.Parse(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	return srv, api.NewClient(u, hs.Client()), hs.URL
}

// greedy are the options that make Ollama's sampler llama.cpp's greedy
// reference: temperature 0 and no repeat penalty (Ollama's default is 1.1).
func greedy(n int) map[string]any {
	return map[string]any{"temperature": 0, "repeat_penalty": 1, "num_predict": n}
}

func ptr[T any](v T) *T { return &v }

// TestOllamaGenerateMatchesReference sends the reference prompts as raw
// text and expects llama.cpp's greedy continuation, its token ids in
// context, and the token counts in the metrics, streamed or not.
func TestOllamaGenerateMatchesReference(t *testing.T) {
	_, client, _ := ollamaServer(t)
	refs := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))
	promptsText, err := os.ReadFile(testdata.Path(t, "reference", "logits", "prompts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	prompts := strings.Split(strings.TrimRight(string(promptsText), "\n"), "\n")
	tok := testTokenizer(t, "models", "stories260K.gguf")
	checked := 0
	for i, ref := range refs {
		if checked == 2 {
			break
		}
		if i >= len(prompts) || !slices.Equal(tok.Encode(prompts[i], true, true), ref.Tokens) {
			continue // a reference line made from ids, not from this text
		}
		checked++
		var want []byte
		wantCtx := []int{}
		for _, id := range ref.Tokens {
			wantCtx = append(wantCtx, int(id))
		}
		for _, id := range ref.Greedy {
			if tok.IsEOG(id) {
				break
			}
			want = append(want, tok.Piece(id)...)
			wantCtx = append(wantCtx, int(id))
		}
		for _, stream := range []bool{false, true} {
			var text strings.Builder
			var last api.GenerateResponse
			chunks := 0
			err := client.Generate(context.Background(), &api.GenerateRequest{Model: "stories260K", Prompt: prompts[i],
				Raw: true, Stream: &stream, Options: greedy(len(ref.Greedy))}, func(r api.GenerateResponse) error {
				text.WriteString(r.Response)
				last = r
				chunks++
				return nil
			})
			if err != nil {
				t.Fatalf("line %d stream=%v: %v", i, stream, err)
			}
			if text.String() != string(want) {
				t.Errorf("line %d stream=%v: text\n%q\nwant\n%q", i, stream, text.String(), want)
			}
			if !last.Done || last.DoneReason != "length" || !slices.Equal(last.Context, wantCtx) {
				t.Errorf("line %d stream=%v: done %v %q, context %v, want %v", i, stream, last.Done, last.DoneReason, last.Context, wantCtx)
			}
			if last.EvalCount != len(ref.Greedy) || last.PromptEvalCount < 1 || last.PromptEvalCount > len(ref.Tokens) {
				t.Errorf("line %d stream=%v: eval %d prompt_eval %d, want %d and at most %d", i, stream,
					last.EvalCount, last.PromptEvalCount, len(ref.Greedy), len(ref.Tokens))
			}
			if stream != (chunks > 1) {
				t.Errorf("line %d stream=%v: %d chunks", i, stream, chunks)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no reference line is the tokenization of its prompt text")
	}
	t.Logf("%d reference lines checked", checked)
}

// TestOllamaGenerateContinuesContext: a request whose context holds the
// first tokens of a reference line and whose raw prompt is the rest of its
// text continues as llama.cpp's greedy run of the whole line.
func TestOllamaGenerateContinuesContext(t *testing.T) {
	_, client, _ := ollamaServer(t)
	ref := readJSONL[refLine](t, testdata.Path(t, "reference", "logits", "stories260K.jsonl"))[0]
	promptsText, err := os.ReadFile(testdata.Path(t, "reference", "logits", "prompts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The first reference line is BOS " Once" " upon" and then the rest of
	// the first prompt, which SentencePiece starts with a space.
	const head = "Once upon "
	first, _, _ := strings.Cut(string(promptsText), "\n")
	rest, ok := strings.CutPrefix(first, head)
	if !ok || !slices.Equal(ref.Tokens[:3], []int32{1, 403, 407}) {
		t.Fatalf("reference line 0 does not start with %q as BOS 403 407: %q, %v", head, first, ref.Tokens[:3])
	}
	tok := testTokenizer(t, "models", "stories260K.gguf")
	var want []byte
	wantCtx := []int{}
	for _, id := range ref.Tokens {
		wantCtx = append(wantCtx, int(id))
	}
	for _, id := range ref.Greedy {
		if tok.IsEOG(id) {
			break
		}
		want = append(want, tok.Piece(id)...)
		wantCtx = append(wantCtx, int(id))
	}
	var got api.GenerateResponse
	err = client.Generate(context.Background(), &api.GenerateRequest{Model: "stories260K", Prompt: rest, Raw: true,
		Context: wantCtx[:3], Stream: ptr(false), Options: greedy(len(ref.Greedy))}, func(r api.GenerateResponse) error { got = r; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Response != string(want) || !slices.Equal(got.Context, wantCtx) {
		t.Errorf("response %q, context %v;\nwant %q, %v", got.Response, got.Context, want, wantCtx)
	}
}

// TestOllamaChat checks that /api/chat sends the conversation through the
// model's chat template: its answer, streamed or not, is the raw generation
// from the prompt that template gives (written out by hand).
func TestOllamaChat(t *testing.T) {
	_, client, _ := ollamaServer(t)
	msgs := []api.Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Tell me a story."},
	}
	for _, model := range []string{"qwen2-256.q8_0", "stories260K"} {
		t.Run(model, func(t *testing.T) {
			// Qwen 2.5's template, given a system message, and the ChatML
			// fallback of stories260K (which has no template) both write
			// this, spelled out here by hand.
			const prompt = "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n"
			var want api.GenerateResponse
			err := client.Generate(context.Background(), &api.GenerateRequest{Model: model, Prompt: prompt, Raw: true,
				Stream: ptr(false), Options: greedy(12)}, func(r api.GenerateResponse) error { want = r; return nil })
			if err != nil {
				t.Fatal(err)
			}
			for _, stream := range []bool{false, true} {
				var text strings.Builder
				var last api.ChatResponse
				err := client.Chat(context.Background(), &api.ChatRequest{Model: model, Messages: msgs, Stream: &stream,
					Options: greedy(12)}, func(r api.ChatResponse) error {
					if r.Message.Role != "assistant" {
						t.Errorf("role %q", r.Message.Role)
					}
					text.WriteString(r.Message.Content)
					last = r
					return nil
				})
				if err != nil {
					t.Fatalf("stream=%v: %v", stream, err)
				}
				if want.EvalCount == 0 {
					t.Fatalf("the raw generation produced nothing to compare with: %+v", want)
				}
				if text.String() != want.Response {
					t.Errorf("stream=%v: chat reply %q, want the raw generation of the rendered prompt %q", stream, text.String(), want.Response)
				}
				if !last.Done || last.DoneReason != want.DoneReason || last.EvalCount != want.EvalCount {
					t.Errorf("stream=%v: final %+v, want done %q after %d tokens", stream, last, want.DoneReason, want.EvalCount)
				}
			}
		})
	}
}

// TestOllamaEmbedMatchesReference compares /api/embed and /api/embeddings
// with llama.cpp's pooled, normalized embeddings.
func TestOllamaEmbedMatchesReference(t *testing.T) {
	_, client, _ := ollamaServer(t)
	type refEmb struct {
		Model, Pooling, Text string
		Embedding            []float64
	}
	var texts []string
	var want [][]float64
	for _, r := range readJSONL[refEmb](t, testdata.Path(t, "reference", "embeddings", "embeddings.jsonl")) {
		if r.Model == "stories260K.gguf" && r.Pooling == "mean" {
			texts = append(texts, r.Text)
			want = append(want, r.Embedding)
		}
	}
	if len(texts) == 0 {
		t.Fatal("no reference embeddings for stories260K")
	}
	resp, err := client.Embed(context.Background(), &api.EmbedRequest{Model: "stories260K", Input: texts})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Embeddings) != len(texts) || resp.PromptEvalCount == 0 {
		t.Fatalf("%d embeddings, %d prompt tokens", len(resp.Embeddings), resp.PromptEvalCount)
	}
	for i, e := range resp.Embeddings {
		got := make([]float64, len(e))
		for j, x := range e {
			got[j] = float64(x)
		}
		if c := cosine(got, want[i]); c < 0.999 {
			t.Errorf("text %d: cosine %.5f to the reference, want > 0.999 (F32)", i, c)
		}
	}
	old, err := client.Embeddings(context.Background(), &api.EmbeddingRequest{Model: "stories260K", Prompt: texts[0]})
	if err != nil {
		t.Fatal(err)
	}
	if c := cosine(old.Embedding, want[0]); c < 0.999 {
		t.Errorf("/api/embeddings: cosine %.5f to the reference", c)
	}
	short, err := client.Embed(context.Background(), &api.EmbedRequest{Model: "stories260K", Input: texts[0], Dimensions: 8})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(short.Embeddings[0]); n != 8 {
		t.Errorf("dimensions 8: got %d values", n)
	}
}

// TestOllamaModels checks /api/tags against the model files, /api/show
// against the GGUF metadata, and /api/ps after a load.
func TestOllamaModels(t *testing.T) {
	_, client, _ := ollamaServer(t)
	ctx := context.Background()
	var files []string
	err := filepath.WalkDir(testdata.Path(t, "models"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".gguf") {
			files = append(files, strings.TrimSuffix(d.Name(), ".gguf"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range tags.Models {
		names = append(names, m.Name)
		if m.Name == "stories260K" {
			// README: llama architecture, all F32.
			if m.Details.Family != "llama" || m.Details.QuantizationLevel != "F32" || m.Details.Format != "gguf" || m.Size == 0 {
				t.Errorf("stories260K details %+v size %d", m.Details, m.Size)
			}
		}
	}
	slices.Sort(files)
	slices.Sort(names)
	if !slices.Equal(names, files) {
		t.Errorf("tags %v, want the model files %v", names, files)
	}

	show, err := client.Show(ctx, &api.ShowRequest{Model: "qwen2-256.q8_0"})
	if err != nil {
		t.Fatal(err)
	}
	if show.ModelInfo["general.architecture"] != "qwen2" || !strings.Contains(show.Template, "<|im_start|>") ||
		show.Details.Family != "qwen2" || show.Details.QuantizationLevel != "Q8_0" {
		t.Errorf("show: arch %v, details %+v, template %.40q", show.ModelInfo["general.architecture"], show.Details, show.Template)
	}
	// Qwen 2.5's template shows tools; stories260K has no template.
	if !slices.Contains(show.Capabilities, "tools") {
		t.Errorf("qwen2-256 capabilities %v lack tools", show.Capabilities)
	}
	tiny, err := client.Show(ctx, &api.ShowRequest{Model: "stories260K"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tiny.Capabilities, "tools") {
		t.Errorf("stories260K capabilities %v", tiny.Capabilities)
	}
	if _, err := client.Show(ctx, &api.ShowRequest{Model: "nope"}); err == nil {
		t.Error("show of an unknown model succeeded")
	}

	// An empty prompt loads the model, as in Ollama.
	var load api.GenerateResponse
	if err := client.Generate(ctx, &api.GenerateRequest{Model: "stories260K"}, func(r api.GenerateResponse) error {
		load = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !load.Done || load.DoneReason != "load" {
		t.Errorf("load: %+v", load)
	}
	ps, err := client.ListRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Models) != 1 || ps.Models[0].Name != "stories260K" || ps.Models[0].ExpiresAt.Before(time.Now()) {
		t.Errorf("ps: %+v", ps.Models)
	}
	v, err := client.Version(ctx)
	if err != nil || v != ollamaVersion {
		t.Errorf("version %q, %v", v, err)
	}
}

// TestOllamaErrors checks that what foretoken does not do is refused in
// Ollama's error shape with a fitting status, before any generation.
func TestOllamaErrors(t *testing.T) {
	_, _, base := ollamaServer(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"unknown model", "POST", "/api/generate", `{"model": "nope", "prompt": "hi"}`, 404, `"nope"`},
		{"images", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "images": ["AAAA"]}`, 400, "images"},
		{"format schema", "POST", "/api/chat", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "format": {"type": "object"}}`, 400, "format"},
		{"format other", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "format": "yaml"}`, 400, "format"},
		{"tool without name", "POST", "/api/chat", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"description": "f"}}]}`, 400, "name"},
		{"tool type", "POST", "/api/chat", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "retrieval", "function": {"name": "f"}}]}`, 400, "retrieval"},
		{"option type", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "options": {"temperature": "hot"}}`, 400, `"temperature": expected number`},
		{"mirostat", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "options": {"mirostat": 2}}`, 400, "mirostat"},
		{"typical_p", "POST", "/api/chat", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "options": {"typical_p": 0.5}}`, 400, "typical_p"},
		{"num_ctx zero", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "options": {"num_ctx": 0}}`, 400, "num_ctx"},
		{"prompt over num_ctx", "POST", "/api/generate", `{"model": "stories260K", "prompt": "Once upon a time", "raw": true, "options": {"num_ctx": 3}}`, 400, "maximum context length is 3"},
		{"bad keep_alive", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "keep_alive": "soon"}`, 400, "soon"},
		{"think", "POST", "/api/chat", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "think": true}`, 400, "thinking"},
		{"role", "POST", "/api/chat", `{"model": "stories260K", "messages": [{"role": "wizard", "content": "hi"}]}`, 400, "role"},
		{"bad option", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "options": {"temperature": -1}}`, 400, "temperature"},
		{"context token", "POST", "/api/generate", `{"model": "stories260K", "prompt": "hi", "context": [100000]}`, 400, "vocabulary"},
		{"bad json", "POST", "/api/generate", `{"model": `, 400, ""},
		{"pull", "POST", "/api/pull", `{"model": "llama3"}`, 501, "GGUF"},
		{"delete", "DELETE", "/api/delete", `{"model": "stories260K"}`, 501, "GGUF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("status %d, body not {\"error\": ...}: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tt.status || body.Error == "" || !strings.Contains(body.Error, tt.msg) {
				t.Errorf("status %d error %q, want %d with %q", resp.StatusCode, body.Error, tt.status, tt.msg)
			}
		})
	}

	// Ollama's client turns the error into a StatusError.
	_, client, _ := ollamaServer(t)
	err := client.Generate(context.Background(), &api.GenerateRequest{Model: "nope", Prompt: "x"}, func(api.GenerateResponse) error { return nil })
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Errorf("client error %v", err)
	}

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if string(b) != "Ollama is running" {
		t.Errorf("root: %q", b)
	}
}

// TestOllamaKeepAliveAndNumCtx: a request's keep_alive decides when its
// model is unloaded (and what /api/ps says); num_ctx narrows the context.
func TestOllamaKeepAliveAndNumCtx(t *testing.T) {
	srv, client, _ := ollamaServer(t)
	ctx := context.Background()
	gen := func(req *api.GenerateRequest) api.GenerateResponse {
		t.Helper()
		req.Stream = ptr(false)
		var last api.GenerateResponse
		if err := client.Generate(ctx, req, func(r api.GenerateResponse) error { last = r; return nil }); err != nil {
			t.Fatal(err)
		}
		return last
	}
	psOf := func(id string) (api.ProcessModelResponse, bool) {
		ps, err := client.ListRunning(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ps.Models {
			if m.Name == id {
				return m, true
			}
		}
		return api.ProcessModelResponse{}, false
	}

	// num_ctx 12 with a 5-token prompt leaves 7 tokens: the answer stops
	// there (greedy stories260K goes on much longer).
	r := gen(&api.GenerateRequest{Model: "stories260K", Prompt: "Once upon a time", Raw: true,
		Options: map[string]any{"temperature": 0, "num_ctx": 12}, KeepAlive: &api.Duration{Duration: time.Minute}})
	if r.PromptEvalCount != 5 || r.EvalCount != 7 || r.DoneReason != "length" {
		t.Errorf("num_ctx 12: prompt %d + eval %d tokens, done_reason %q; want 5 + 7, length", r.PromptEvalCount, r.EvalCount, r.DoneReason)
	}
	m, ok := psOf("stories260K")
	if !ok {
		t.Fatal("stories260K not in /api/ps after use")
	}
	if left := time.Until(m.ExpiresAt); left > time.Minute || left < 50*time.Second {
		t.Errorf("keep_alive 1m: expires in %v", left)
	}

	// Negative: never unloaded.
	gen(&api.GenerateRequest{Model: "stories260K", KeepAlive: &api.Duration{Duration: -1}})
	if m, _ := psOf("stories260K"); time.Until(m.ExpiresAt) < 24*time.Hour {
		t.Errorf("keep_alive -1: expires at %v", m.ExpiresAt)
	}

	// Zero: unloaded as soon as the request ends (Ollama's unload call).
	if r := gen(&api.GenerateRequest{Model: "stories260K", KeepAlive: &api.Duration{}}); r.DoneReason != "unload" {
		t.Errorf("unload call: done_reason %q", r.DoneReason)
	}
	if ids := srv.models.loadedIDs(); len(ids) != 0 {
		t.Errorf("keep_alive 0 left %v loaded", ids)
	}
}
