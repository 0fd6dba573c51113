package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/config"
)

// FuzzOpenAIRequests sends arbitrary bodies to /v1/completions (chat
// false) and /v1/chat/completions: whatever the body, the answer is a
// success or a 4xx in OpenAI's error shape, never a 500 or a panic. The
// model is scriptEngine, so that the run measures request handling, not
// forward passes. Seeds: testdata/fuzz/FuzzOpenAIRequests.
func FuzzOpenAIRequests(f *testing.F) {
	for _, seed := range []struct {
		chat bool
		body string
	}{
		{false, `{"model":"script","prompt":"hi","max_tokens":3}`},
		{false, `{"model":"script","prompt":[[1,2],[3]],"n":2,"echo":true,"logprobs":2,"stream":true,"stream_options":{"include_usage":true}}`},
		{false, `{"model":"script","prompt":["a","b"],"stop":["x","y"],"logit_bias":{"5":-100},"seed":-1,"temperature":0.5,"top_k":3,"min_p":0.1}`},
		{true, `{"model":"script","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"logprobs":true,"top_logprobs":2}`},
		{true, `{"model":"script","messages":[{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"q"}],"stream":true,"tools":[{"type":"function","function":{"name":"f"}}]}`},
		{true, `{"model":"script","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":"r"}]}`},
	} {
		f.Add(seed.chat, seed.body)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script.gguf"), nil, 0o644); err != nil {
		f.Fatal(err)
	}
	cfg := config.Default()
	cfg.ModelDirs = []string{dir}
	cfg.OllamaDir = "-"
	cfg.MaxBody = 1 << 16
	cfg.Parallel = 1
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Load: func(ctx context.Context, path string) (Engine, error) {
			return &scriptEngine{answer: "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> ok é"}, nil
		}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.models.close)
	h := srv.Handler()

	f.Fuzz(func(t *testing.T, chat bool, body string) {
		path := "/v1/completions"
		if chat {
			path = "/v1/chat/completions"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
				checkSSE(t, rec.Body.String())
			} else if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("200 with invalid JSON %q", rec.Body.String())
			}
		case rec.Code >= 400 && rec.Code < 500 && rec.Code != statusClientClosed:
			var e errorResp
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("status %d with body %q, not an OpenAI error", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}

// checkSSE checks that a stream is data events of JSON objects ending
// with [DONE], or an error event.
func checkSSE(t *testing.T, s string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("stream line %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("stream event %q: %v", data, err)
		}
		if _, isErr := ev["error"]; isErr {
			done = true
		}
	}
	if !done {
		t.Fatalf("stream %q ended without [DONE]", s)
	}
}
