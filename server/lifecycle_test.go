package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/internal/testdata"
)

// openStream starts a streaming completion and returns once the first
// event arrived, so the request surely holds a slot.
func openStream(t *testing.T, ctx context.Context, url string, body map[string]any) (*http.Response, *bufio.Reader) {
	t.Helper()
	body["stream"] = true
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream status %d", resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return resp, r
}

// longGen keeps a slot busy for seconds: llama256.f32 is the slowest
// model, and the bias rules out EOS (id 2) so it cannot stop early.
func longGen() map[string]any {
	return map[string]any{"model": "llama256.f32", "prompt": "Once upon a time", "max_tokens": 2000, "temperature": 1, "seed": 1,
		"logit_bias": map[string]float64{"2": -100}}
}

// TestCancelFreesSlot: with one slot and no queue, a second request gets
// 429 while a stream runs; when the streaming client goes away, the slot
// is free at once.
func TestCancelFreesSlot(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Parallel = 1; c.Queue = 0; c.CtxSize = 2048 })
	ctx, cancel := context.WithCancel(context.Background())
	resp, _ := openStream(t, ctx, ts.URL, longGen())

	var e errorResp
	busy := ts.post(t, "/v1/completions", map[string]any{"model": "llama256.f32", "prompt": "hi", "max_tokens": 1}, &e)
	if busy.StatusCode != http.StatusTooManyRequests || busy.Header.Get("Retry-After") == "" {
		t.Errorf("while busy: status %d, Retry-After %q; want 429 with Retry-After", busy.StatusCode, busy.Header.Get("Retry-After"))
	}
	// So do streams, chat ones included: nothing is sent before a slot is
	// held.
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		body := map[string]any{"model": "llama256.f32", "prompt": "hi", "messages": []map[string]any{{"role": "user", "content": "hi"}},
			"max_tokens": 1, "stream": true}
		if r := ts.post(t, path, body, &e); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s stream while busy: status %d; want 429 with Retry-After", path, r.StatusCode)
		}
	}
	// A waiting request whose client leaves is dropped from the queue.
	ts2 := startServer(t, func(c *config.Config) { c.Parallel = 1; c.Queue = 1; c.CtxSize = 2048 })
	ctx2, cancel2 := context.WithCancel(context.Background())
	resp2, _ := openStream(t, ctx2, ts2.URL, longGen())
	qctx, qcancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"model": "llama256.f32", "prompt": "hi", "max_tokens": 1})
		req, _ := http.NewRequestWithContext(qctx, http.MethodPost, ts2.URL+"/v1/completions", bytes.NewReader(b))
		_, err := http.DefaultClient.Do(req)
		queued <- err
	}()
	waitFor(t, "one queued request", func() bool { return ts2.queueDepth() == 1 })
	qcancel()
	<-queued
	waitFor(t, "an empty queue", func() bool { return ts2.queueDepth() == 0 })
	cancel2()
	resp2.Body.Close()

	cancel()
	resp.Body.Close()
	start := time.Now()
	for {
		var got completionResp
		r := ts.post(t, "/v1/completions", map[string]any{"model": "llama256.f32", "prompt": "hi", "max_tokens": 1}, &got)
		if r.StatusCode == 200 {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("slot not freed 2 s after the client left (status %d)", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("slot free %v after cancel", time.Since(start))
	if n := ts.activeSlots(); n != 0 {
		t.Errorf("%d slots still active", n)
	}
}

// TestQueueWaits: with one slot and a queue, a second request waits for
// the first instead of failing.
func TestQueueWaits(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Parallel = 1; c.Queue = 4 })
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got completionResp
			codes[i] = ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 50}, &got).StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d, want 200", i, c)
		}
	}
}

// TestGracefulShutdown: a request in flight when the server is told to stop
// finishes; one that outlasts the grace period is cancelled; Serve returns.
func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Grace = 100 * time.Millisecond; c.CtxSize = 2048 })
	resp, r := openStream(t, context.Background(), ts.URL, longGen())
	defer resp.Body.Close()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- ts.stop() }()
	// The stream ends, cut short, rather than running its 2000 tokens.
	rest, _ := io.ReadAll(r)
	if n := bytes.Count(rest, []byte("data: ")); n >= 2000 {
		t.Errorf("stream ran to the end (%d events) despite shutdown", n)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Errorf("stream ended after %v, before the grace period", time.Since(start))
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a grace of 100ms", took)
	}
	if _, err := http.Get(ts.URL + "/health"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

// TestShutdownFinishesInFlight: a request running when shutdown begins
// completes within the grace period, with its whole answer.
func TestShutdownFinishesInFlight(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Grace = 10 * time.Second; c.CtxSize = 2048 })
	body := longGen()
	body["max_tokens"] = 300
	resp, r := openStream(t, context.Background(), ts.URL, body)
	defer resp.Body.Close()
	errc := make(chan error, 1)
	go func() { errc <- ts.stop() }()
	rest, _ := io.ReadAll(r)
	if !bytes.Contains(rest, []byte(`"finish_reason":"length"`)) || !bytes.HasSuffix(bytes.TrimSpace(rest), []byte("data: [DONE]")) {
		t.Errorf("in-flight stream did not finish normally; its end: %q", rest[max(0, len(rest)-200):])
	}
	if err := <-errc; err != nil {
		t.Errorf("Serve returned %v", err)
	}
}

func TestKeepAliveUnloads(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.KeepAlive = 500 * time.Millisecond })
	var got completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "a", "max_tokens": 1}, &got)
	if ids := ts.models.loadedIDs(); len(ids) != 1 {
		t.Fatalf("loaded %v right after use", ids)
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(ts.models.loadedIDs()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("model still loaded 3 s after a 500ms keep-alive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It loads again on demand.
	if r := ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "a", "max_tokens": 1}, &got); r.StatusCode != 200 {
		t.Errorf("reload: status %d", r.StatusCode)
	}
}

func TestMaxLoaded(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MaxLoaded = 1 })
	for _, m := range []string{"stories260K", "qwen2-256.q8_0", "stories260K"} {
		var got completionResp
		if r := ts.post(t, "/v1/completions", map[string]any{"model": m, "prompt": "a", "max_tokens": 2}, &got); r.StatusCode != 200 {
			t.Fatalf("%s: status %d", m, r.StatusCode)
		}
		if ids := ts.models.loadedIDs(); len(ids) != 1 || ids[0] != m {
			t.Errorf("after using %s loaded %v, want just it", m, ids)
		}
	}
}

// TestMaxLoadedBusy: when the only loaded model is in use, another model
// cannot be loaded: 503 with Retry-After.
func TestMaxLoadedBusy(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MaxLoaded = 1; c.CtxSize = 2048 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := openStream(t, ctx, ts.URL, longGen())
	defer resp.Body.Close()
	var e errorResp
	r := ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "a", "max_tokens": 1}, &e)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || e.Error.Code == nil || *e.Error.Code != "models_busy" {
		t.Errorf("status %d, Retry-After %q, %+v; want 503 models_busy", r.StatusCode, r.Header.Get("Retry-After"), e)
	}
}

func TestHealth(t *testing.T) {
	ts := startServer(t, nil)
	var h map[string]string
	if r := ts.do(t, "GET", "/health", nil, &h, nil); r.StatusCode != 200 || h["status"] != "ok" {
		t.Errorf("health %d %v before any load", r.StatusCode, h)
	}
	if ids := ts.models.loadedIDs(); len(ids) != 0 {
		t.Errorf("models loaded before any request: %v", ids)
	}

	// While shutting down: 503 everywhere.
	ts.draining.Store(true)
	if r := ts.do(t, "GET", "/health", nil, nil, nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health while draining: %d, want 503", r.StatusCode)
	}
	var e errorResp
	if r := ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "a"}, &e); r.StatusCode != http.StatusServiceUnavailable || e.Error.Code == nil || *e.Error.Code != "shutting_down" {
		t.Errorf("completion while draining: %d %+v, want 503 shutting_down", r.StatusCode, e)
	}
	ts.draining.Store(false)

	empty := config.Default()
	empty.ModelDirs = []string{t.TempDir()}
	empty.OllamaDir = "-"
	srv, err := New(empty, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := newTestRecorder(srv, "GET", "/health")
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("health without models: %d, want 503", rec.Code)
	}
}

// TestOllamaStore builds a small Ollama store whose one model is
// stories260K and serves it by its Ollama name.
func TestOllamaStore(t *testing.T) {
	src := testdata.Path(t, "models", "stories260K.gguf")
	store := t.TempDir()
	const hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(store, "blobs"), 0o755))
	must(os.Symlink(src, filepath.Join(store, "blobs", "sha256-"+hex)))
	write := func(rel, digest string) {
		p := filepath.Join(store, "manifests", "registry.ollama.ai", rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		m := fmt.Sprintf(`{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:%s"},{"mediaType":"application/vnd.ollama.image.model","digest":"%s","size":1}]}`, hex, digest)
		must(os.WriteFile(p, []byte(m), 0o644))
	}
	write("library/tiny/latest", "sha256:"+hex)
	write("someone/tiny/q8", "sha256:"+hex)
	write("library/evil/latest", "sha256:../../../etc/passwd")
	write("library/missing/latest", "sha256:"+strings.Repeat("f", 64))

	t.Setenv("OLLAMA_MODELS", store)
	ts := startServer(t, func(c *config.Config) { c.ModelDirs = nil; c.OllamaDir = "" })
	var list struct {
		Data []modelObject `json:"data"`
	}
	ts.do(t, "GET", "/v1/models", nil, &list, nil)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "someone/tiny:q8,tiny:latest" {
		t.Errorf("models %v, want someone/tiny:q8 and tiny:latest", ids)
	}
	var got completionResp
	if r := ts.post(t, "/v1/completions", map[string]any{"model": "tiny:latest", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}, &got); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if got.Choices[0].Text != ", there was a little" {
		t.Errorf("text %q", got.Choices[0].Text)
	}
	// As in Ollama, a name without a tag is its "latest" tag, and only that.
	for name, status := range map[string]int{"tiny": 200, "someone/tiny": 404, "tiny:q8": 404} {
		var e errorResp
		if r := ts.post(t, "/v1/completions", map[string]any{"model": name, "prompt": "Once", "max_tokens": 1}, &e); r.StatusCode != status {
			t.Errorf("model %q: status %d, want %d", name, r.StatusCode, status)
		}
	}
	var one modelObject
	if r := ts.do(t, "GET", "/v1/models/someone/tiny:q8", nil, &one, nil); r.StatusCode != 200 || one.ID != "someone/tiny:q8" {
		t.Errorf("GET /v1/models/someone/tiny:q8: %d %+v", r.StatusCode, one)
	}
}

// TestBrokenModelFile: a file that is not a GGUF model fails to load with
// a 500 naming it, and the server goes on serving the others.
func TestBrokenModelFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "broken.gguf")
	if err := os.WriteFile(bad, []byte("GGUF but not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) { c.Models = []config.ModelSpec{{Path: bad}} })
	var e errorResp
	r := ts.post(t, "/v1/completions", map[string]any{"model": "broken", "prompt": "a"}, &e)
	if r.StatusCode != http.StatusInternalServerError || e.Error.Code == nil || *e.Error.Code != "model_load_failed" || !strings.Contains(e.Error.Message, "broken") {
		t.Errorf("status %d %+v, want 500 model_load_failed", r.StatusCode, e)
	}
	var ok completionResp
	if r := ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "a", "max_tokens": 1}, &ok); r.StatusCode != 200 {
		t.Errorf("other model after the failure: %d", r.StatusCode)
	}
}

func TestModelsEndpoint(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Models = []config.ModelSpec{{Path: filepath.Join(c.ModelDirs[0], "stories260K.gguf"), Alias: "tiny"}}
	})
	var list struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}
	ts.do(t, "GET", "/v1/models", nil, &list, nil)
	// 15 llama256, 3 qwen2-256, stories260K, and the alias.
	if list.Object != "list" || len(list.Data) != 20 {
		t.Errorf("object %q with %d models, want list of 20", list.Object, len(list.Data))
	}
	var m modelObject
	if r := ts.do(t, "GET", "/v1/models/tiny", nil, &m, nil); r.StatusCode != 200 || m.ID != "tiny" || m.Object != "model" {
		t.Errorf("GET /v1/models/tiny: %d %+v", r.StatusCode, m)
	}
	var e errorResp
	if r := ts.do(t, "GET", "/v1/models/nope", nil, &e, nil); r.StatusCode != 404 || e.Error.Code == nil || *e.Error.Code != "model_not_found" {
		t.Errorf("GET /v1/models/nope: %d %+v", r.StatusCode, e)
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, nil)
	var got completionResp
	ts.post(t, "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 7, "temperature": 0}, &got)
	ts.post(t, "/v1/completions", map[string]any{"model": "nope", "prompt": "Once"}, nil)
	r := ts.do(t, "GET", "/metrics", nil, nil, nil)
	body, _ := io.ReadAll(r.Body)
	for _, want := range []string{
		`foretoken_requests_total{endpoint="/v1/completions",status="200"} 1`,
		`foretoken_requests_total{endpoint="/v1/completions",status="404"} 1`,
		`foretoken_generated_tokens_total{model="stories260K"} 7`,
		`foretoken_prompt_tokens_total{model="stories260K"} 2`,
		`foretoken_loaded_models 1`,
		`foretoken_queue_depth 0`,
		`foretoken_generation_tokens_per_second_count{model="stories260K"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestLoad runs 16 clients against a server with 2 slots and a queue of 4
// for a while: every answer is 200 or 429, and no goroutine is left behind.
// The default run lasts 2 s; FORETOKEN_LOADTEST=1 makes it 30 s.
func TestLoad(t *testing.T) {
	dur := 2 * time.Second
	if os.Getenv("FORETOKEN_LOADTEST") == "1" {
		dur = 30 * time.Second
	} else if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	before := runtime.NumGoroutine()
	ts := startServer(t, func(c *config.Config) { c.Parallel = 2; c.Queue = 4 })
	prompts := []string{"Once upon a time", "The little dog", "Lily and Tom went to the park.", "A big red ball"}
	var ok, busy, other, tokens atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(deadline); k++ {
				body := map[string]any{"model": "stories260K", "prompt": prompts[(i+k)%len(prompts)], "max_tokens": 24, "seed": i*1000 + k, "stream": k%3 == 0}
				b, _ := json.Marshal(body)
				resp, err := http.Post(ts.URL+"/v1/completions", "application/json", bytes.NewReader(b))
				if err != nil {
					other.Add(1)
					continue
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
					if !bytes.Contains(data, []byte("data: ")) {
						var c completionResp
						if json.Unmarshal(data, &c) == nil {
							tokens.Add(int64(c.Usage.CompletionTokens))
						}
					}
				case 429:
					busy.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("load: %v, %d ok, %d 429, %d other; %.0f requests/s, %.0f generated tokens/s (non-streamed answers)",
		took.Round(time.Millisecond), ok.Load(), busy.Load(), other.Load(), float64(ok.Load())/took.Seconds(), float64(tokens.Load())/took.Seconds())
	if other.Load() != 0 {
		t.Errorf("%d answers were neither 200 nor 429", other.Load())
	}
	if ok.Load() == 0 {
		t.Error("no request succeeded")
	}
	stopStart := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v", time.Since(stopStart))
	http.DefaultClient.CloseIdleConnections()
	var after int
	for range 100 {
		if after = runtime.NumGoroutine(); after <= before+2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("goroutines settled %v after start", time.Since(start))
	if after > before+2 {
		buf := make([]byte, 1<<16)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines: %d before, %d after\n%s", before, after, buf[:n])
	}
}

func newTestRecorder(s *Server, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStalledReaderDropped: a client that opens a stream and stops reading
// is dropped once a write has waited --write-timeout, which frees its slot
// for others; the server's goroutines go back to where they were.
func TestStalledReaderDropped(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script.gguf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	answer := strings.Repeat("All work and no play makes Jack a dull boy. ", 80) // 3520 tokens
	ts := startServerLoad(t, dir, func(c *config.Config) {
		c.Parallel, c.Queue, c.WriteTimeout = 1, 0, 200*time.Millisecond
	}, func(ctx context.Context, path string) (Engine, error) { return &scriptEngine{answer: answer}, nil })

	// 16 choices of 3520 tokens with 20 alternatives each: tens of MB of
	// events, more than the socket buffers hold.
	body := `{"model":"script","prompt":"\u0001","max_tokens":3600,"n":16,"logprobs":20,"stream":true}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	waitFor(t, "the stream to hold the slot", func() bool { return ts.activeSlots() == 1 })
	start := time.Now()
	waitFor(t, "the stalled client's slot to be freed", func() bool { return ts.activeSlots() == 0 })
	t.Logf("slot freed %v after the stream started", time.Since(start).Round(time.Millisecond))
	var got completionResp
	if r := ts.post(t, "/v1/completions", map[string]any{"model": "script", "prompt": "\u0001", "max_tokens": 3}, &got); r.StatusCode != 200 || got.Choices[0].Text != "All" {
		t.Errorf("after the drop: status %d, text %+v", r.StatusCode, got.Choices)
	}
	conn.Close()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}
