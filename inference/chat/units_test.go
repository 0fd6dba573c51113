package chat

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ardanlabs/jinja"
)

func render(t *testing.T, src string, req Request, opts ...Option) (string, error) {
	t.Helper()
	tmpl, err := New(src, append([]Option{WithClock(pinnedClock)}, opts...)...)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return tmpl.Render(context.Background(), req)
}

// The expected texts below are what Python's Jinja2 3.1 (trim_blocks,
// lstrip_blocks) prints for the same template and data.
func TestJinja2Semantics(t *testing.T) {
	vars := map[string]any{
		"none": nil, "one": 1.0, "s": "<b>'", "n": 3, "list": json.RawMessage(`[null, "it's"]`), "yes": true,
		"obj": json.RawMessage(`{"b": 1, "a": {"é": "x<&>\u2028"}}`),
	}
	tests := []struct{ name, src, want string }{
		{"print None", "{{ none }}", "None"},
		{"print float", "{{ one }}", "1.0"},
		{"print list repr", "{{ list }}", `[None, "it's"]`},
		{"print bool", "{{ yes }}", "True"},
		{"trim None", "{{ none|trim }}", "None"},
		{"string None", "{{ none|string }}", "None"},
		{"trim chars", "{{ 'xxhixx'|trim('x') }}", "hi"},
		{"tojson order", "{{ obj|tojson }}", `{"b": 1, "a": {"é": "x<&>` + "\u2028" + `"}}`},
		{"tojson indent", "{{ obj | tojson(indent=2) }}", "{\n  \"b\": 1,\n  \"a\": {\n    \"é\": \"x<&>\u2028\"\n  }\n}"},
		{"tojson sort", "{{ obj|tojson(sort_keys=true, separators=(',', ':')) }}", `{"a":{"é":"x<&>` + "\u2028" + `"},"b":1}`},
		{"tojson in set", "{% set s = obj.a | tojson %}{{ s }}", `{"é": "x<&>` + "\u2028" + `"}`},
		{"tojson in string untouched", "{{ '| tojson' }}", "| tojson"},
		{"closer in string", "{{ '}}' }}", "}}"},
		{"raw block", "{% raw %}{{ none }}{% endraw %}", "{{ none }}"},
		{"for with filter", "{% for x in [1, 2, 3] if x != 2 %}{{ x }}{% endfor %}", "13"},
		{"for else", "{% for x in [] %}x{% else %}empty{% endfor %}", "empty"},
		{"for undefined", "{% for x in nothing %}x{% endfor %}.", "."},
		{"loop controls", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", "013"},
		{"namespace", "{% set ns = namespace(n=0) %}{% for x in range(3) %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}", "3"},
		{"trim_blocks", "{% if true %}\nA\n{% endif %}\n", "A\n"},
		{"lstrip_blocks", "  {% if true %}A{% endif %}", "A"},
		{"string methods", "{{ ' a,b '.strip().split(',')[1] }}{{ 'abc'.startswith('ab') }}", "bTrue"},
		{"macro", "{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(none) }}", "<None>"},
		{"strftime_now", "{{ strftime_now('%d %b %Y') }}", "26 Nov 2026"},
		{"markup concat", `{{ "a"|safe + s + "<i>" }}`, "a&lt;b&gt;&#39;&lt;i&gt;"},
		{"plain concat", `{{ s + "x" }}`, "<b>'x"},
		{"guarded arithmetic", "{{ n * 2 - 1 }}", "5"},
		{"namespace arithmetic", "{% set ns = namespace(k=1) %}{% for i in range(3) %}{% set ns.k = ns.k * 2 + i %}{% endfor %}{{ ns.k }}", "12"},
		{"map then list", `{{ [{"a": 1}]|map(attribute="a")|list|tojson }}`, `[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(t, tt.src, Request{Extra: vars})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name, src string
		raised    string // message of the template's own raise_exception
		contains  string
	}{
		{"raise_exception", "{{ raise_exception('Roles must alternate') }}", "Roles must alternate", ""},
		{"iterate None", "{% for t in tools %}{% endfor %}", "", "not iterable"},
		{"huge range", "{% for i in range(100000000) %}{% endfor %}", "", "range longer"},
		{"tojson undefined", "{{ nothing|tojson }}", "", "not JSON serializable"},
		{"undefined operand", `{{ "x" + nothing }}`, "", "UndefinedError: 'nothing' is undefined"},
		{"None operand", `{{ "a" + nv }}`, "", "TypeError"},
		{"tojson generator", `{{ [{"a": 1}]|map(attribute="a")|tojson }}`, "", "Object of type generator is not JSON serializable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(t, tt.src, Request{Extra: map[string]any{"nv": nil}})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want *chat.Error", err)
			}
			if tt.raised != "" && (!e.Raised || e.Msg != tt.raised) {
				t.Fatalf("error %+v, want raised %q", e, tt.raised)
			}
			if tt.contains != "" && (e.Raised || !strings.Contains(e.Msg, tt.contains)) {
				t.Fatalf("error %+v, want one containing %q", e, tt.contains)
			}
		})
	}
	if _, err := New("{% if %}"); err == nil {
		t.Error("compiled a broken template")
	}
}

// A template must not hold a server thread: runaway loops stop at the
// deadline or the output limit.
func TestRenderBounded(t *testing.T) {
	loop := "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}"
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"output limit", []Option{WithMaxOutput(1 << 16)}, "exceeds"},
		{"timeout", []Option{WithTimeout(50 * time.Millisecond), WithMaxOutput(1 << 40)}, "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := render(t, loop, Request{}, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	tmpl, _ := New(loop)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tmpl.Render(ctx, Request{}); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("cancelled render: %v", err)
	}
}

func TestChatMLFallback(t *testing.T) {
	msgs := []Message{
		{Role: "system", Content: Text("Be brief.")},
		{Role: "user", Content: Content{Parts: []Part{{Type: "text", Text: "Hi"}, {Type: "text", Text: "there"}}}},
		{Role: "assistant", Content: Content{Null: true}, ToolCalls: []ToolCall{{ID: "c1", Function: FunctionCall{Name: "f", Arguments: json.RawMessage(`"{\"a\":1}"`)}}}},
		{Role: "tool", ToolCallID: "c1", Content: Text("2")},
	}
	// llama.cpp's chatml: "<|im_start|>" role "\n" content "<|im_end|>\n",
	// then "<|im_start|>assistant\n" for the generation prompt.
	want := "<|im_start|>system\nBe brief.<|im_end|>\n" +
		"<|im_start|>user\nHi\nthere<|im_end|>\n" +
		`<|im_start|>assistant` + "\n" + `[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]<|im_end|>` + "\n" +
		"<|im_start|>tool\n2<|im_end|>\n" +
		"<|im_start|>assistant\n"
	for _, src := range []string{"", " \n"} {
		tmpl, err := New(src)
		if err != nil {
			t.Fatal(err)
		}
		if !tmpl.IsFallback() {
			t.Fatalf("New(%q) is not the fallback", src)
		}
		got, err := tmpl.Render(context.Background(), Request{Messages: msgs, AddGenerationPrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
		if s := tmpl.StopStrings(); !slices.Equal(s, []string{"<|im_end|>"}) {
			t.Errorf("stop strings %q", s)
		}
	}
	got, err := ChatML().Render(context.Background(), Request{Messages: msgs[:1]})
	if err != nil || got != "<|im_start|>system\nBe brief.<|im_end|>\n" {
		t.Errorf("without generation prompt: %q, %v", got, err)
	}
}

// messageFields prints what a template sees of each message.
const messageFields = `{% for m in messages %}{{ m.role }}|{{ m.content }}|{{ m.name is defined }}:{{ m.name }}|` +
	`{{ m.tool_call_id is defined }}|{{ m.reasoning_content }}|` +
	`{% for c in m.tool_calls %}{{ c.id }},{{ c.type }},{{ c.function.name }},{{ c.function.arguments|tojson }};{% endfor %}#{% endfor %}`

func TestMessageMapping(t *testing.T) {
	tests := []struct {
		name string
		msgs func(t *testing.T) []Message
		want string
	}{
		{
			name: "openai",
			msgs: func(t *testing.T) []Message {
				var msgs []Message
				body := `[
					{"role": "developer", "content": "rules"},
					{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "name": "ann"},
					{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
						"function": {"name": "get", "arguments": "{\"z\": 1, \"a\": [true]}"}}]},
					{"role": "tool", "tool_call_id": "call_1", "content": "ok"},
					{"role": "assistant", "content": "done"}]`
				if err := json.Unmarshal([]byte(body), &msgs); err != nil {
					t.Fatal(err)
				}
				return msgs
			},
			want: "system|rules|False:|False||#" +
				"user|a\nb|True:ann|False||#" +
				`assistant|None|False:|False||call_1,function,get,{"z": 1, "a": [true]};#` +
				"tool|ok|False:|True||#" +
				"assistant|done|False:|False||#",
		},
		{
			name: "ollama",
			msgs: func(t *testing.T) []Message {
				var in []OllamaMessage
				body := `[
					{"role": "user", "content": "hi"},
					{"role": "assistant", "content": "", "thinking": "hmm", "tool_calls": [{"function": {"name": "get", "arguments": {"z": 1, "a": "x"}}}]},
					{"role": "tool", "content": "ok", "tool_name": "get"}]`
				if err := json.Unmarshal([]byte(body), &in); err != nil {
					t.Fatal(err)
				}
				var msgs []Message
				for _, m := range in {
					msgs = append(msgs, FromOllama(m))
				}
				return msgs
			},
			want: "user|hi|False:|False||#" +
				`assistant|None|False:|False|hmm|,function,get,{"z": 1, "a": "x"};#` +
				"tool|ok|True:get|False||#",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(t, messageFields, Request{Messages: tt.msgs(t)})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}

	var m Message
	if err := json.Unmarshal([]byte(`{"role": "user", "content": [{"type": "image_url"}]}`), &m); err != nil {
		t.Fatal(err)
	}
	if _, err := render(t, messageFields, Request{Messages: []Message{m}}); err == nil || !strings.Contains(err.Error(), "only text parts") {
		t.Errorf("image part: %v", err)
	}
	b, err := json.Marshal(Message{Role: "assistant", Content: Content{Null: true}})
	if err != nil || string(b) != `{"role":"assistant","content":null}` {
		t.Errorf("marshal: %s, %v", b, err)
	}
}

// Templates that print arguments with '+' get them as JSON text; those
// that apply tojson get the object (reference cases prove both outputs).
func TestArgumentsForm(t *testing.T) {
	dir := filepath.Join(loadDir(t), "templates")
	tests := map[string]bool{
		"Qwen-Qwen2.5-7B-Instruct.jinja":                 false,
		"meta-llama-Llama-3.1-8B-Instruct.jinja":         false,
		"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja": true,
		"meetkai-functionary-medium-v3.2.jinja":          true,
	}
	for name, wantString := range tests {
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := New(string(src))
		if err != nil {
			t.Fatal(err)
		}
		if tmpl.stringArgs != wantString {
			t.Errorf("%s: string arguments %v, want %v", name, tmpl.stringArgs, wantString)
		}
	}
}

func loadDir(t *testing.T) string {
	dir, _ := loadCases(t)
	return dir
}

func TestStopStrings(t *testing.T) {
	dir := filepath.Join(loadDir(t), "templates")
	tests := map[string][]string{
		"Qwen-Qwen2.5-7B-Instruct.jinja":         {"<|im_end|>"},
		"meta-llama-Llama-3.1-8B-Instruct.jinja": {"<|eot_id|>", "<|eom_id|>"},
		"google-gemma-2-2b-it.jinja":             {"<end_of_turn>"},
		"microsoft-Phi-3.5-mini-instruct.jinja":  {"<|end|>"},
	}
	for name, want := range tests {
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := New(string(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := tmpl.StopStrings(); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestStrftime(t *testing.T) {
	at := time.Date(2026, time.November, 26, 9, 5, 7, 0, time.UTC)
	// Python: datetime(2026, 11, 26, 9, 5, 7).strftime(format)
	tests := map[string]string{
		"%d %b %Y":       "26 Nov 2026",
		"%A %a %B %b":    "Thursday Thu November Nov",
		"%H:%M:%S %I %p": "09:05:07 09 AM",
		"%j %y %m":       "330 26 11",
		"%e|%%|%Q":       "26|%|%Q",
		"%Y-%m-%d":       "2026-11-26",
	}
	for format, want := range tests {
		if got := strftime(at, format); got != want {
			t.Errorf("strftime(%q) = %q, want %q", format, got, want)
		}
	}
}

// Python: json.dumps(v, ensure_ascii=False, ...) for the same value.
func TestToJSON(t *testing.T) {
	v, err := jsonToValue([]byte(`{"b": [1, 2.5, null, true], "a": "é\"\\\n\t\u0001<&>` + "\u2028😀" + `", "c": {}, "d": [], "e": 1e20, "f": 0.0001, "g": 1e-5, "h": 3.0}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opt  jsonOptions
		want string
	}{
		{pythonJSON, `{"b": [1, 2.5, null, true], "a": "é\"\\\n\t\u0001<&>` + "\u2028😀" + `", "c": {}, "d": [], "e": 1e+20, "f": 0.0001, "g": 1e-05, "h": 3.0}`},
		{jsonOptions{indent: 2, itemSep: ",", keySep: ": "}, "{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"a\": \"é\\\"\\\\\\n\\t\\u0001<&>\u2028😀\",\n  \"c\": {},\n  \"d\": [],\n  \"e\": 1e+20,\n  \"f\": 0.0001,\n  \"g\": 1e-05,\n  \"h\": 3.0\n}"},
		{jsonOptions{indent: -1, itemSep: ",", keySep: ":", sortKeys: true}, `{"a":"é\"\\\n\t\u0001<&>` + "\u2028😀" + `","b":[1,2.5,null,true],"c":{},"d":[],"e":1e+20,"f":0.0001,"g":1e-05,"h":3.0}`},
	}
	for _, tt := range tests {
		got, err := toJSON(v, tt.opt)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	if _, err := toJSON(jinja.Undefined(), pythonJSON); err == nil {
		t.Error("undefined serialized")
	}
}

// Renders share one compiled template; run with -race.
func TestConcurrentRender(t *testing.T) {
	tmpl, err := New(messageFields)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tmpl.Render(context.Background(), Request{Messages: []Message{{Role: "user", Content: Text("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < 50; j++ {
				got, err := tmpl.Render(context.Background(), Request{Messages: []Message{{Role: "user", Content: Text("x")}}})
				if err == nil && got != want {
					err = errors.New("concurrent render differs: " + got)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
