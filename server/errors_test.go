package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/inference/chat"
)

type errorResp struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// TestErrors sends every kind of bad request and checks the status, the
// OpenAI error shape and that the message names what is wrong.
func TestErrors(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MaxBody = 16384; c.CtxSize = 256 })
	long := strings.Repeat("Once upon a time there was a dog. ", 40) // > 256 tokens
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		param  string   // expected error.param ("" = not checked)
		code   string   // expected error.code ("" = not checked)
		words  []string // the message must contain these
	}{
		{"malformed json", "/v1/completions", `{"model": "stories260K", "prompt": `, 400, "", "", []string{"malformed JSON"}},
		{"not an object", "/v1/completions", `[1,2]`, 400, "", "", []string{"JSON object"}},
		{"empty body", "/v1/completions", ``, 400, "", "", []string{"empty"}},
		{"wrong type max_tokens", "/v1/completions", `{"model":"stories260K","prompt":"a","max_tokens":"ten"}`, 400, "max_tokens", "", []string{"max_tokens", "integer"}},
		{"wrong type temperature", "/v1/chat/completions", `{"model":"stories260K","messages":[],"temperature":"hot"}`, 400, "temperature", "", []string{"temperature"}},
		{"wrong type prompt", "/v1/completions", `{"model":"stories260K","prompt":{"a":1}}`, 400, "prompt", "", []string{"prompt"}},
		{"wrong type stop", "/v1/completions", `{"model":"stories260K","prompt":"a","stop":5}`, 400, "stop", "", []string{"stop"}},
		{"missing model", "/v1/completions", `{"prompt":"a"}`, 400, "model", "", []string{"model"}},
		{"missing prompt", "/v1/completions", `{"model":"stories260K"}`, 400, "prompt", "", []string{"prompt"}},
		{"unknown model", "/v1/completions", `{"model":"nope","prompt":"a"}`, 404, "model", "model_not_found", []string{"nope"}},
		{"path as model", "/v1/completions", `{"model":"../models/stories260K","prompt":"a"}`, 404, "model", "model_not_found", nil},
		{"unknown model chat", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"a"}]}`, 404, "model", "model_not_found", nil},
		{"unknown model embeddings", "/v1/embeddings", `{"model":"nope","input":"a"}`, 404, "model", "model_not_found", nil},
		{"context overflow", "/v1/completions", `{"model":"stories260K","prompt":"Once upon a time","max_tokens":300}`, 400, "max_tokens", "", []string{"256", "305", "5 in the prompt"}},
		{"prompt overflow", "/v1/completions", `{"model":"stories260K","prompt":"` + long + `"}`, 400, "max_tokens", "", []string{"256"}},
		{"chat overflow", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"hi"}],"max_tokens":100000}`, 400, "max_tokens", "", []string{"256", "100000"}},
		{"temperature range", "/v1/completions", `{"model":"stories260K","prompt":"a","temperature":3}`, 400, "temperature", "", []string{"temperature"}},
		{"top_p range", "/v1/completions", `{"model":"stories260K","prompt":"a","top_p":1.5}`, 400, "top_p", "", nil},
		{"negative max_tokens", "/v1/completions", `{"model":"stories260K","prompt":"a","max_tokens":-1}`, 400, "max_tokens", "", nil},
		{"n range", "/v1/completions", `{"model":"stories260K","prompt":"a","n":0}`, 400, "n", "", nil},
		{"logprobs range", "/v1/completions", `{"model":"stories260K","prompt":"a","logprobs":21}`, 400, "logprobs", "", []string{"21"}},
		{"too many stops", "/v1/completions", `{"model":"stories260K","prompt":"a","stop":["a","b","c","d","e"]}`, 400, "stop", "", []string{"4"}},
		{"penalty range", "/v1/completions", `{"model":"stories260K","prompt":"a","presence_penalty":5}`, 400, "presence_penalty", "", nil},
		{"logit_bias key", "/v1/completions", `{"model":"stories260K","prompt":"a","logit_bias":{"99999":1}}`, 400, "logit_bias", "", []string{"99999"}},
		{"token id out of vocab", "/v1/completions", `{"model":"stories260K","prompt":[1,99999]}`, 400, "prompt", "", []string{"99999"}},
		{"negative token id", "/v1/completions", `{"model":"stories260K","prompt":[1,-3]}`, 400, "prompt", "", nil},
		{"top_logprobs range", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":21}`, 400, "top_logprobs", "", nil},
		{"top_logprobs without logprobs", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"top_logprobs":2}`, 400, "top_logprobs", "", nil},
		{"no messages", "/v1/chat/completions", `{"model":"stories260K","messages":[]}`, 400, "messages", "", nil},
		{"bad role", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"wizard","content":"a"}]}`, 400, "messages", "", []string{"wizard"}},
		{"image part", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "", "", nil},
		{"encoding format", "/v1/embeddings", `{"model":"stories260K","input":"a","encoding_format":"hex"}`, 400, "encoding_format", "", nil},
		{"dimensions range", "/v1/embeddings", `{"model":"stories260K","input":"a","dimensions":65}`, 400, "dimensions", "", []string{"64"}},
		{"empty input list", "/v1/embeddings", `{"model":"stories260K","input":[]}`, 400, "input", "", nil},
		{"explain top range", "/v1/explain", `{"model":"stories260K","prompt":"a","top_logprobs":50}`, 400, "top_logprobs", "", nil},
		{"explain two prompts", "/v1/explain", `{"model":"stories260K","prompt":["a","b"]}`, 400, "prompt", "", nil},
		{"body too large", "/v1/completions", `{"model":"stories260K","prompt":"` + strings.Repeat("x", 17000) + `"}`, 413, "", "body_too_large", nil},
		{"detokenize bad id", "/detokenize", `{"model":"stories260K","tokens":[100000]}`, 400, "tokens", "", nil},
		{"unknown route", "/v1/nothing", `{}`, 404, "", "not_found", nil},
		{"stop null element", "/v1/completions", `{"model":"stories260K","prompt":"a","stop":["x",null]}`, 400, "stop", "", []string{"element 1"}},
		{"suffix", "/v1/completions", `{"model":"stories260K","prompt":"a","suffix":"b"}`, 400, "suffix", "", []string{"not supported"}},
		{"best_of", "/v1/completions", `{"model":"stories260K","prompt":"a","best_of":3}`, 400, "best_of", "", []string{"best_of 3"}},
		{"message content type", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"},{"role":"user","content":5}]}`, 400, "messages", "", []string{"messages[1]", "content"}},
		{"message role type", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":1,"content":"a"}]}`, 400, "messages", "", []string{"messages[0].role", "string"}},
		{"message null", "/v1/chat/completions", `{"model":"stories260K","messages":[null]}`, 400, "messages", "", []string{"messages[0]"}},
		{"messages not a list", "/v1/chat/completions", `{"model":"stories260K","messages":"hi"}`, 400, "messages", "", nil},
		{"response_format type", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"response_format":{"type":"xml"}}`, 400, "response_format", "", []string{"xml"}},
		{"response_format not an object", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"response_format":"json"}`, 400, "response_format", "", nil},
		{"response_format schema", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}`, 400, "response_format", "", []string{"schema"}},
		{"functions", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"functions":[{"name":"f"}]}`, 400, "functions", "", []string{"tools"}},
		{"audio", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"modalities":["text","audio"]}`, 400, "modalities", "", nil},
		{"tool type", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tools":[{"type":"code_interpreter"}]}`, 400, "tools", "", []string{"code_interpreter"}},
		{"tool without name", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"description":"x"}}]}`, 400, "tools", "", []string{"name"}},
		{"tool twice", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]}`, 400, "tools", "", []string{"twice"}},
		{"tools not a list", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tools":{"type":"function"}}`, 400, "tools", "", nil},
		{"tool_choice required", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`, 400, "tool_choice", "", []string{"required"}},
		{"tool_choice named", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`, 400, "tool_choice", "", nil},
		{"tool_choice unknown", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"tool_choice":"sometimes"}`, 400, "tool_choice", "", []string{"sometimes"}},
		{"empty embedding input", "/v1/embeddings", `{"model":"stories260K","input":["a",""]}`, 400, "input", "", []string{"input 1"}},
		{"huge max_tokens", "/v1/completions", `{"model":"stories260K","prompt":"a","max_tokens":1e30}`, 400, "max_tokens", "", []string{"integer"}},
		{"max_tokens overflows int", "/v1/completions", `{"model":"stories260K","prompt":"a","max_tokens":9223372036854775807}`, 400, "max_tokens", "", []string{"256", "9223372036854775807"}},
		{"chat max_tokens overflows int", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775807}`, 400, "max_tokens", "", []string{"256"}},
		{"explain max_tokens overflows int", "/v1/explain", `{"model":"stories260K","prompt":"a","max_tokens":9223372036854775807}`, 400, "max_tokens", "", []string{"256"}},
		{"temperature NaN string", "/v1/completions", `{"model":"stories260K","prompt":"a","temperature":"NaN"}`, 400, "temperature", "", nil},
		{"n too large", "/v1/completions", `{"model":"stories260K","prompt":"a","n":1000}`, 400, "n", "", []string{"1000"}},
		{"logit_bias bad key", "/v1/completions", `{"model":"stories260K","prompt":"a","logit_bias":{"abc":1}}`, 400, "logit_bias", "", []string{"abc"}},
		{"logit_bias bad value", "/v1/completions", `{"model":"stories260K","prompt":"a","logit_bias":{"5":1000}}`, 400, "logit_bias", "", nil},
		{"too many prompts", "/v1/completions", `{"model":"stories260K","prompt":[` + strings.Repeat(`"a",`, 2048) + `"a"]}`, 400, "prompt", "", []string{"2049", "2048"}},
		{"too many inputs", "/v1/embeddings", `{"model":"stories260K","input":[` + strings.Repeat(`"a",`, 2048) + `"a"]}`, 400, "input", "", []string{"2049", "2048"}},
		{"prediction", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"prediction":{"type":"content","content":"x"}}`, 400, "prediction", "", nil},
		{"web_search_options", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"web_search_options":{}}`, 400, "web_search_options", "", nil},
		{"function_call", "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"a"}],"function_call":{"name":"f"}}`, 400, "function_call", "", nil},
		{"empty nested prompt", "/v1/completions", `{"model":"stories260K","prompt":[[]]}`, 400, "prompt", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got errorResp
			resp := ts.post(t, tc.path, tc.body, &got)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tc.status, got.Error)
			}
			if got.Error.Message == "" || got.Error.Type == "" {
				t.Errorf("error %+v lacks message or type", got.Error)
			}
			if tc.param != "" && (got.Error.Param == nil || *got.Error.Param != tc.param) {
				t.Errorf("param %v, want %q (message %q)", got.Error.Param, tc.param, got.Error.Message)
			}
			if tc.code != "" && (got.Error.Code == nil || *got.Error.Code != tc.code) {
				t.Errorf("code %v, want %q", got.Error.Code, tc.code)
			}
			for _, w := range tc.words {
				if !strings.Contains(got.Error.Message, w) {
					t.Errorf("message %q does not mention %q", got.Error.Message, w)
				}
			}
		})
	}
	// The server still answers after all that.
	var ok completionResp
	if resp := ts.post(t, "/v1/completions", `{"model":"stories260K","prompt":"a","max_tokens":2}`, &ok); resp.StatusCode != 200 {
		t.Errorf("after the bad requests: status %d", resp.StatusCode)
	}
}

// TestIgnoredFields: what README.md lists as accepted without effect,
// and the neutral values of refused features, are answered 200.
func TestIgnoredFields(t *testing.T) {
	ts := startServer(t, nil)
	const msgs = `"messages":[{"role":"user","content":"a"}],"max_tokens":1`
	for _, body := range []string{
		`{"model":"stories260K",` + msgs + `,"user":"u","store":false,"metadata":{"k":"v"},"service_tier":"auto"}`,
		`{"model":"stories260K",` + msgs + `,"modalities":["text"],"functions":[],"function_call":"none"}`,
		`{"model":"stories260K","prompt":"a","max_tokens":1,"user":"u","suffix":"","best_of":1}`,
	} {
		path := "/v1/chat/completions"
		if strings.Contains(body, `"prompt"`) {
			path = "/v1/completions"
		}
		var got errorResp
		if resp := ts.post(t, path, body, &got); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: status %d %+v", path, body, resp.StatusCode, got.Error)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	ts := startServer(t, nil)
	resp := ts.do(t, http.MethodGet, "/v1/completions", nil, nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/completions: status %d, want 405", resp.StatusCode)
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.APIKey = "sekret" })
	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		status int
	}{
		{"health needs no key", "GET", "/health", "", 200},
		{"models without key", "GET", "/v1/models", "", 401},
		{"metrics without key", "GET", "/metrics", "", 401},
		{"wrong key", "GET", "/v1/models", "Bearer nope", 401},
		{"not bearer", "GET", "/v1/models", "Basic sekret", 401},
		{"right key", "GET", "/v1/models", "Bearer sekret", 200},
		{"completion without key", "POST", "/v1/completions", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			var body any
			if tc.method == "POST" {
				body = `{"model":"stories260K","prompt":"a","max_tokens":1}`
			}
			resp := ts.do(t, tc.method, tc.path, body, nil, h)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 {
				var e errorResp
				b, _ := io.ReadAll(resp.Body)
				if json.Unmarshal(b, &e) != nil || e.Error.Code == nil || *e.Error.Code != "invalid_api_key" {
					t.Errorf("401 body %s", b)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		origin  string
		want    string
	}{
		{"off by default", nil, "http://a.example", ""},
		{"allowed origin", []string{"http://a.example"}, "http://a.example", "http://a.example"},
		{"other origin", []string{"http://a.example"}, "http://b.example", ""},
		{"wildcard", []string{"*"}, "http://b.example", "*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(c *config.Config) { c.CORSOrigins = tc.origins })
			h := http.Header{"Origin": {tc.origin}, "Access-Control-Request-Method": {"POST"}}
			resp := ts.do(t, http.MethodOptions, "/v1/completions", nil, nil, h)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Errorf("preflight Allow-Origin %q, want %q", got, tc.want)
			}
			if tc.want != "" && resp.StatusCode != http.StatusNoContent {
				t.Errorf("preflight status %d, want 204", resp.StatusCode)
			}
			resp = ts.do(t, http.MethodGet, "/v1/models", nil, nil, http.Header{"Origin": {tc.origin}})
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Errorf("GET Allow-Origin %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRecover: a panicking handler answers 500 in the error shape and the
// server goes on.
func TestRecover(t *testing.T) {
	ts := startServer(t, nil)
	r := gin.New()
	r.Use(ts.recoverMiddleware)
	r.GET("/boom", func(c *gin.Context) { panic("boom") })
	r.GET("/fine", func(c *gin.Context) { c.String(200, "fine") })
	for _, path := range []string{"/boom", "/fine"} {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		r.ServeHTTP(rec, req)
		want := 200
		if path == "/boom" {
			want = 500
			var e errorResp
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Type != "server_error" {
				t.Errorf("panic answer %q", rec.Body.String())
			}
		}
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", path, rec.Code, want)
		}
	}
}

// TestRenderError: chat template failures caused by the request answer
// 400; an engine panic stays a 500; a client that left gets its
// cancellation.
func TestRenderError(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		status int // 0: not an apiError
		is     error
	}{
		{"raise_exception", context.Background(), &chat.Error{Msg: "Conversation roles must alternate", Raised: true}, 400, nil},
		{"too slow", context.Background(), &chat.Error{Msg: "render timed out", Err: context.DeadlineExceeded}, 400, nil},
		{"too long", context.Background(), &chat.Error{Msg: "output exceeds 16777216 bytes"}, 400, nil},
		{"engine panic", context.Background(), &chat.Error{Msg: "engine panic: index out of range"}, 0, nil},
		{"client gone", cancelled, &chat.Error{Msg: "render", Err: context.Canceled}, 0, context.Canceled},
		{"not a template error", context.Background(), errors.New("disk on fire"), 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renderError(tc.ctx, tc.err)
			var ae *apiError
			switch {
			case tc.status != 0 && (!errors.As(got, &ae) || ae.Status != tc.status || ae.Param != "messages"):
				t.Errorf("got %#v, want a %d about messages", got, tc.status)
			case tc.status == 0 && errors.As(got, &ae):
				t.Errorf("got %d %q, want no status of its own", ae.Status, ae.Message)
			case tc.is != nil && !errors.Is(got, tc.is):
				t.Errorf("got %v, want %v", got, tc.is)
			}
		})
	}
}
