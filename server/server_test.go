package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/internal/testdata"
)

// testServer is a real server on a free loopback port over the shared
// models.
type testServer struct {
	*Server
	URL  string
	stop func() error
}

// startServer serves the shared models (stories260K, qwen2-256.*,
// llama256.*) with cfg's settings on 127.0.0.1:0.
func startServer(t *testing.T, edit func(*config.Config)) *testServer {
	t.Helper()
	return startServerLoad(t, testdata.Path(t, "models"), edit, nil)
}

// startServerLoad serves the models of dir, opened by load (nil: the real
// loader).
func startServerLoad(t *testing.T, dir string, edit func(*config.Config), load LoadFunc) *testServer {
	t.Helper()
	cfg := config.Default()
	cfg.ModelDirs = []string{dir}
	cfg.OllamaDir = "-"
	cfg.Port = 0
	cfg.Threads = 1
	cfg.Grace = 2 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Load: load})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	ts := &testServer{Server: srv, URL: "http://" + ln.Addr().String()}
	var stopped bool
	var stopErr error
	ts.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return ts
}

// post sends body (a string or a value to encode) and decodes the JSON
// answer into out (if not nil); it returns the response with its body read.
func (ts *testServer) post(t *testing.T, path string, body any, out any) *http.Response {
	t.Helper()
	return ts.do(t, http.MethodPost, path, body, out, nil)
}

func (ts *testServer) do(t *testing.T, method, path string, body any, out any, header http.Header) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: status %d, decode %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp
}

// stream posts a streaming request and returns the decoded data events,
// checking that the stream ends with [DONE].
func (ts *testServer) stream(t *testing.T, path string, body any) []map[string]any {
	t.Helper()
	resp := ts.post(t, path, body, nil)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream %s: status %d: %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q, want text/event-stream", ct)
	}
	var events []map[string]any
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not an SSE data line", line)
		}
		if done {
			t.Fatalf("event after [DONE]: %q", data)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		events = append(events, ev)
	}
	if !done {
		t.Error("stream did not end with data: [DONE]")
	}
	return events
}
