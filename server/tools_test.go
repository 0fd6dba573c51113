package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ollama/ollama/api"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/inference/chat"
	"github.com/foretoken/foretoken/internal/testdata"
)

func TestParseToolCalls(t *testing.T) {
	known := map[string]bool{"get_weather": true, "get_time": true}
	paris := `{"location":"Paris"}`
	tests := []struct {
		name    string
		text    string
		content string
		calls   []toolCall
	}{
		{"qwen hermes", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>", "",
			[]toolCall{{"get_weather", paris}}},
		{"hermes two calls and text", "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
			"Let me check.", []toolCall{{"get_weather", paris}, {"get_time", "{}"}}},
		{"hermes close tag cut", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}", "",
			[]toolCall{{"get_weather", paris}}},
		{"arguments as a string", `<tool_call>{"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}</tool_call>`, "",
			[]toolCall{{"get_weather", paris}}},
		{"llama3 json", `{"name": "get_weather", "parameters": {"location": "Paris"}}`, "", []toolCall{{"get_weather", paris}}},
		{"llama3 python tag", `<|python_tag|>{"name": "get_weather", "parameters": {"location": "Paris"}}`, "", []toolCall{{"get_weather", paris}}},
		{"llama3 two objects", `{"name": "get_weather", "parameters": {"location": "Paris"}}; {"name": "get_time", "parameters": {}}`, "",
			[]toolCall{{"get_weather", paris}, {"get_time", "{}"}}},
		{"mistral", `[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "abc123def"}]`, "",
			[]toolCall{{"get_weather", paris}}},
		{"firefunction", ` functools[{"name": "get_weather", "arguments": {"location": "Paris"}}]`, "", []toolCall{{"get_weather", paris}}},
		{"function tag", `<function=get_weather>{"location": "Paris"}</function>`, "", []toolCall{{"get_weather", paris}}},
		{"openai shape", `{"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Paris"}}}`, "",
			[]toolCall{{"get_weather", paris}}},
		{"no arguments", `{"name": "get_time"}`, "", []toolCall{{"get_time", "{}"}}},
		// The forms the reference templates render (cases.json,
		// tool_call_and_result).
		{"command r plus", "Action:\n```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n        \"parameters\": {\n            \"location\": \"Paris\"\n        }\n    }\n]```", "",
			[]toolCall{{"get_weather", paris}}},
		{"command r7b", "<|START_THINKING|>Look it up.<|END_THINKING|><|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}\n]<|END_ACTION|>",
			"<|START_THINKING|>Look it up.<|END_THINKING|>", []toolCall{{"get_weather", paris}}},
		{"deepseek r1", "<think>weather</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
			"<think>weather</think>", []toolCall{{"get_weather", paris}, {"get_time", "{}"}}},
		{"functionary v3.2", ">>>all\nLet me see.>>>get_weather\n{\"location\": \"Paris\"}", "Let me see.", []toolCall{{"get_weather", paris}}},
		{"functionary v3.2 text only", ">>>all\nHello there", ">>>all\nHello there", nil},

		// Not calls: the text stays content.
		{"prose", "The weather in Paris is sunny.", "The weather in Paris is sunny.", nil},
		{"unknown tool", `<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>`, `<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>`, nil},
		{"json that is not a call", `{"location": "Paris"}`, `{"location": "Paris"}`, nil},
		{"json then prose", `{"name": "get_time", "parameters": {}} and then more`, `{"name": "get_time", "parameters": {}} and then more`, nil},
		{"broken json", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"loc", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"loc", nil},
		{"arguments not an object", `{"name": "get_weather", "parameters": [1, 2]}`, `{"name": "get_weather", "parameters": [1, 2]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			content, calls := parseToolCalls(tc.text, known)
			if content != tc.content {
				t.Errorf("content %q, want %q", content, tc.content)
			}
			if !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("calls %+v, want %+v", calls, tc.calls)
			}
		})
	}
}

// qwenToolCase is the Qwen 2.5 tool case of the shared chat-template
// reference (rendered by Python's Jinja2).
func qwenToolCase(t *testing.T) (msgs []chat.Message, tools []json.RawMessage, expected string) {
	t.Helper()
	b, err := os.ReadFile(testdata.Path(t, "reference", "chat-templates", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Template string            `json:"template"`
		Case     string            `json:"case"`
		Messages []chat.Message    `json:"messages"`
		Tools    []json.RawMessage `json:"tools"`
		Expected string            `json:"expected"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Template == "Qwen-Qwen2.5-7B-Instruct.jinja" && c.Case == "tool_call_and_result" {
			return c.Messages, c.Tools, c.Expected
		}
	}
	t.Fatal("cases.json has no Qwen 2.5 tool_call_and_result case")
	return nil, nil, ""
}

// TestChatToolsReachTemplate: the tools of a chat request are rendered by
// qwen2-256's real (Qwen 2.5) template exactly as Python's Jinja2 renders
// the reference case, both in the engine and through the HTTP API (whose
// prompt token count must be that of the reference text).
func TestChatToolsReachTemplate(t *testing.T) {
	msgs, tools, expected := qwenToolCase(t)
	eng, err := LoadModel(testdata.Path(t, "models", "synth", "qwen2-256.f16.gguf"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	defs := make([]any, len(tools))
	for i, d := range tools {
		defs[i] = d
	}
	got, err := eng.RenderChat(context.Background(), msgs, defs)
	if err != nil {
		t.Fatal(err)
	}
	if got != expected {
		t.Fatalf("rendered\n%s\nwant\n%s", got, expected)
	}

	// Over HTTP, in OpenAI's form: tool call arguments as a JSON string.
	var body map[string]any
	raw, _ := json.Marshal(map[string]any{"messages": msgs, "tools": tools})
	_ = json.Unmarshal(raw, &body)
	for _, m := range body["messages"].([]any) {
		for _, tc := range asList(m.(map[string]any)["tool_calls"]) {
			f := tc.(map[string]any)["function"].(map[string]any)
			args, _ := json.Marshal(f["arguments"])
			f["arguments"] = string(args)
		}
	}
	body["model"], body["max_tokens"], body["temperature"] = "qwen2-256.f16", 1, 0
	ts := startServer(t, nil)
	var resp chatResp
	if r := ts.post(t, "/v1/chat/completions", body, &resp); r.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.StatusCode)
	}
	want := len(eng.(*modelEngine).tok.Encode(expected, true, true))
	if resp.Usage.PromptTokens != want {
		t.Errorf("prompt_tokens %d, the reference rendering has %d", resp.Usage.PromptTokens, want)
	}
	// tool_choice "none" leaves the tools out of the prompt.
	body["tool_choice"] = "none"
	var none chatResp
	ts.post(t, "/v1/chat/completions", body, &none)
	if none.Usage.PromptTokens >= resp.Usage.PromptTokens {
		t.Errorf("tool_choice none: %d prompt tokens, with tools %d", none.Usage.PromptTokens, resp.Usage.PromptTokens)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// scriptEngine is a model whose greedy answer to any prompt ending in
// scriptMark is a fixed text, one byte a token: it lets tests drive the
// server's handling of an answer (tool calls) without depending on what
// random weights say.
type scriptEngine struct{ answer string }

const (
	scriptEOS  = 256
	scriptMark = 0x01
)

func (e *scriptEngine) Info() ModelInfo {
	return ModelInfo{Arch: "script", ContextLength: 4096, EmbeddingDim: 4, VocabSize: 257, Layers: 1, Heads: 1, HasTemplate: true}
}

func (e *scriptEngine) Tokenize(text string, addSpecial bool) ([]int32, error) {
	ids := make([]int32, len(text))
	for i := range len(text) {
		ids[i] = int32(text[i])
	}
	return ids, nil
}

func (e *scriptEngine) TokenBytes(id int32) []byte {
	if id == scriptEOS {
		return []byte("</s>")
	}
	return []byte{byte(id)}
}
func (e *scriptEngine) IsSpecial(id int32) bool { return id == scriptEOS }
func (e *scriptEngine) IsEOG(id int32) bool     { return id == scriptEOS }
func (e *scriptEngine) NewDecoder() Decoder     { return &byteDecoder{} }
func (e *scriptEngine) Detokenize(ids []int32) string {
	var b []byte
	for _, id := range ids {
		if id != scriptEOS {
			b = append(b, byte(id))
		}
	}
	return string(b)
}

func (e *scriptEngine) RenderChat(ctx context.Context, msgs []chat.Message, tools []any) (string, error) {
	var sb strings.Builder
	for _, m := range msgs {
		s, _ := m.Content.String()
		sb.WriteString(m.Role + ": " + s + "\n")
	}
	sb.WriteByte(scriptMark)
	return sb.String(), nil
}
func (e *scriptEngine) ChatStops() []string { return nil }
func (e *scriptEngine) NewSequence(ctxLen int) Sequence {
	return &scriptSeq{e: e, cap: ctxLen}
}
func (e *scriptEngine) Close() error { return nil }

type byteDecoder struct{ pending []byte }

func (d *byteDecoder) Add(id int32) string {
	if id == scriptEOS {
		return ""
	}
	d.pending = append(d.pending, byte(id))
	n := len(d.pending)
	for n > 0 && !utf8.Valid(d.pending[:n]) {
		n--
	}
	out := string(d.pending[:n])
	d.pending = d.pending[n:]
	return out
}

func (d *byteDecoder) Flush() string {
	out := strings.ToValidUTF8(string(d.pending), "\uFFFD")
	d.pending = nil
	return out
}

type scriptSeq struct {
	e    *scriptEngine
	toks []int32
	cap  int
	res  Result
}

func (s *scriptSeq) Len() int       { return len(s.toks) }
func (s *scriptSeq) Cap() int       { return s.cap }
func (s *scriptSeq) Truncate(n int) { s.toks = s.toks[:n] }

func (s *scriptSeq) Forward(ctx context.Context, tokens []int32, want Want) (*Result, error) {
	s.res.Logits = s.res.Logits[:0]
	for i, id := range tokens {
		s.toks = append(s.toks, id)
		if want.AllLogits || i == len(tokens)-1 {
			s.res.Logits = append(s.res.Logits, s.next())
		}
	}
	return &s.res, nil
}

// next gives logits that make the answer's next byte (after the last mark)
// the certain choice.
func (s *scriptSeq) next() []float32 {
	k := 0
	for i := len(s.toks) - 1; i >= 0 && s.toks[i] != scriptMark; i-- {
		k++
	}
	want := int32(scriptEOS)
	if k < len(s.e.answer) {
		want = int32(s.e.answer[k])
	}
	row := make([]float32, scriptEOS+1)
	for i := range row {
		row[i] = -20
	}
	row[want] = 20
	return row
}

// startScripted serves one model, "script", that answers text.
func startScripted(t *testing.T, answer string) *testServer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script.gguf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return startServerLoad(t, dir, func(c *config.Config) { c.Parallel = 1 }, func(ctx context.Context, path string) (Engine, error) {
		return &scriptEngine{answer: answer}, nil
	})
}

type toolChatResp struct {
	Choices []struct {
		Message struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// TestChatToolCalls: a model answer holding tool calls comes back as
// OpenAI tool_calls with finish_reason "tool_calls", whole and streamed.
func TestChatToolCalls(t *testing.T) {
	const answer = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n" +
		"<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}\n</tool_call>"
	ts := startScripted(t, answer)
	tool := func(name string) map[string]any {
		return map[string]any{"type": "function", "function": map[string]any{"name": name, "parameters": map[string]any{"type": "object"}}}
	}
	base := func() map[string]any {
		return map[string]any{"model": "script", "temperature": 0, "max_tokens": 400,
			"messages": []map[string]any{{"role": "user", "content": "Weather and time in Paris?"}},
			"tools":    []any{tool("get_weather"), tool("get_time")}}
	}
	wantCalls := [][2]string{{"get_weather", `{"location":"Paris","unit":"celsius"}`}, {"get_time", `{"zone":"CET"}`}}

	tests := []struct {
		name    string
		edit    func(map[string]any)
		finish  string
		content string // "<null>" for null
		calls   [][2]string
	}{
		{"auto", func(map[string]any) {}, "tool_calls", "Checking.", wantCalls},
		{"not parallel", func(b map[string]any) { b["parallel_tool_calls"] = false }, "tool_calls", "Checking.", wantCalls[:1]},
		{"choice none", func(b map[string]any) { b["tool_choice"] = "none" }, "stop", answer, nil},
		{"undeclared tool", func(b map[string]any) { b["tools"] = []any{tool("get_weather")} }, "stop", answer, nil},
		{"no tools", func(b map[string]any) { delete(b, "tools") }, "stop", answer, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := base()
			tc.edit(body)
			var resp toolChatResp
			if r := ts.post(t, "/v1/chat/completions", body, &resp); r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			ch := resp.Choices[0]
			if ch.FinishReason != tc.finish {
				t.Errorf("finish_reason %q, want %q", ch.FinishReason, tc.finish)
			}
			if ch.Message.Content == nil || *ch.Message.Content != tc.content {
				t.Errorf("content %v, want %q", ch.Message.Content, tc.content)
			}
			var got [][2]string
			for _, c := range ch.Message.ToolCalls {
				if !strings.HasPrefix(c.ID, "call_") || c.Type != "function" {
					t.Errorf("tool call id %q type %q", c.ID, c.Type)
				}
				got = append(got, [2]string{c.Function.Name, c.Function.Arguments})
			}
			if !reflect.DeepEqual(got, tc.calls) {
				t.Errorf("tool calls %v, want %v", got, tc.calls)
			}

			// Streamed: the same calls in deltas, indexed.
			body["stream"] = true
			var sgot [][2]string
			var sfinish, scontent string
			for _, ev := range ts.stream(t, "/v1/chat/completions", body) {
				for _, c := range ev["choices"].([]any) {
					c := c.(map[string]any)
					if f, ok := c["finish_reason"].(string); ok {
						sfinish = f
					}
					d := c["delta"].(map[string]any)
					if s, ok := d["content"].(string); ok {
						scontent += s
					}
					for i, tc := range asList(d["tool_calls"]) {
						tc := tc.(map[string]any)
						if idx, _ := tc["index"].(float64); int(idx) != i {
							t.Errorf("streamed tool call %d has index %v", i, tc["index"])
						}
						f := tc["function"].(map[string]any)
						sgot = append(sgot, [2]string{f["name"].(string), f["arguments"].(string)})
					}
				}
			}
			if sfinish != tc.finish || scontent != tc.content || !reflect.DeepEqual(sgot, tc.calls) {
				t.Errorf("stream: finish %q content %q calls %v; want %q %q %v", sfinish, scontent, sgot, tc.finish, tc.content, tc.calls)
			}
		})
	}

	// Only a call, no text: content is null, as OpenAI sends it.
	only := startScripted(t, `{"name": "get_time", "parameters": {"zone": "UTC"}}`)
	var resp toolChatResp
	only.post(t, "/v1/chat/completions", base(), &resp)
	if c := resp.Choices[0]; c.Message.Content != nil || len(c.Message.ToolCalls) != 1 || c.FinishReason != "tool_calls" {
		t.Errorf("call-only answer: content %v, %d calls, finish %q", c.Message.Content, len(c.Message.ToolCalls), c.FinishReason)
	}
}

// TestOllamaToolCalls: /api/chat with tools, through Ollama's own client,
// returns the model's tool calls in Ollama's shape, streamed or not.
func TestOllamaToolCalls(t *testing.T) {
	ts := startScripted(t, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"days\": 2}}\n</tool_call>")
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := api.NewClient(u, http.DefaultClient)
	var tool api.Tool
	if err := json.Unmarshal([]byte(`{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}`), &tool); err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		req := &api.ChatRequest{Model: "script", Stream: &stream, Tools: api.Tools{tool},
			Messages: []api.Message{{Role: "user", Content: "Weather in Paris?"}}, Options: map[string]any{"temperature": 0}}
		var calls []api.ToolCall
		var content string
		var done bool
		err := client.Chat(context.Background(), req, func(r api.ChatResponse) error {
			calls = append(calls, r.Message.ToolCalls...)
			content += r.Message.Content
			done = done || r.Done
			return nil
		})
		if err != nil {
			t.Fatalf("stream %v: %v", stream, err)
		}
		if !done || content != "" || len(calls) != 1 {
			t.Fatalf("stream %v: done %v content %q calls %+v", stream, done, content, calls)
		}
		f := calls[0].Function
		loc, _ := f.Arguments.Get("location")
		days, _ := f.Arguments.Get("days")
		if f.Name != "get_weather" || loc != "Paris" || days != float64(2) {
			t.Errorf("stream %v: call %s(%v, %v)", stream, f.Name, loc, days)
		}
	}
}
