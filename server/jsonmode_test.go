package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/inference/tokenizer"
	"github.com/foretoken/foretoken/internal/testdata"
)

func TestJSONState(t *testing.T) {
	tests := []struct {
		text     string
		ok       bool // a prefix of a JSON object
		complete bool
	}{
		{`{}`, true, true},
		{"{\n  \"a\": 1,\n\t\"b\" : [ 2 ]\n}", true, true},
		{`{"a": [1, -2.5e+3, 0, 0.1, true, false, null, "x\"\\\u00e9\n", {"b": []}]}`, true, true},
		{"{\n  \"key\": \"é 😀\"\n}", true, true},
		{`{"a": {"b": {"c": [[[]]]}}}`, true, true},
		{`{"a": 12`, true, false},
		{`{"a": tr`, true, false},
		{`{"a": "unfinished`, true, false},
		{`{"a": "\u12`, true, false},
		{`{`, true, false},
		{``, true, false},

		{`[1]`, false, false},             // the root must be an object
		{`"s"`, false, false},             // likewise
		{`{"a": 1} `, false, false},       // nothing after the object
		{`{"a": 1}{`, false, false},       // likewise
		{`{a: 1}`, false, false},          // keys are strings
		{`{"a" 1}`, false, false},         // colon missing
		{`{"a": 01}`, false, false},       // no leading zeros
		{`{"a": 1.}`, false, false},       // a fraction needs digits
		{`{"a": -}`, false, false},        // so does a sign
		{`{"a": 1e}`, false, false},       // and an exponent
		{`{"a": tru }`, false, false},     // literals are whole
		{`{"a": "\x"}`, false, false},     // unknown escape
		{`{"a": "\u12g4"}`, false, false}, // \u takes hex
		{"{\"a\": \"line\nbreak\"}", false, false},
		{`{"a": 1,}`, false, false}, // no trailing comma
		{`{"a": [1,]}`, false, false},
		{`{"a": [1}`, false, false}, // closes must match
		{`{"a": 1]`, false, false},
		{`{,}`, false, false},
		{` {"a": 1}`, false, false},                                        // the answer starts with the object
		{"{  }", false, false},                                             // one space,
		{"{\n\n}", false, false},                                           // or one newline
		{"{\n" + strings.Repeat(" ", jsonMaxIndent+1) + "}", false, false}, // and an indent
		{"{\r\n}", false, false},
		{`{"a":` + strings.Repeat("[", jsonMaxDepth) + strings.Repeat("]", jsonMaxDepth) + `}`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			var s jsonState
			ok := s.accepts([]byte(tc.text))
			if ok != tc.ok {
				t.Fatalf("accepts = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			s.feed([]byte(tc.text))
			if s.complete() != tc.complete {
				t.Errorf("complete = %v, want %v", s.complete(), tc.complete)
			}
			if tc.complete {
				var v map[string]any
				if err := json.Unmarshal([]byte(tc.text), &v); err != nil {
					t.Errorf("accepted as complete but encoding/json says %v", err)
				}
			}
		})
	}
}

// TestJSONModeAnswers: with response_format json_object (and Ollama's
// format "json") the answers of real models are JSON objects, or prefixes
// of one when max_tokens cut them; a scripted model whose answer is an
// object followed by text stops at the object's end.
func TestJSONModeAnswers(t *testing.T) {
	ts := startServer(t, nil)
	for _, model := range []string{"stories260K", "qwen2-256.f16"} {
		for seed := range 3 {
			t.Run(fmt.Sprintf("%s/seed%d", model, seed), func(t *testing.T) {
				var resp toolChatResp
				r := ts.post(t, "/v1/chat/completions", map[string]any{"model": model, "seed": seed, "max_tokens": 60,
					"messages":        []map[string]any{{"role": "user", "content": "Answer in JSON."}},
					"response_format": map[string]any{"type": "json_object"}}, &resp)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("status %d", r.StatusCode)
				}
				checkJSONAnswer(t, *resp.Choices[0].Message.Content, resp.Choices[0].FinishReason)
			})
		}
	}
	// Ollama's format "json", through its client.
	_, client, _ := ollamaServer(t)
	for seed := range 2 {
		var text, reason string
		err := client.Generate(context.Background(), &api.GenerateRequest{Model: "stories260K", Prompt: "JSON please", Format: json.RawMessage(`"json"`),
			Options: map[string]any{"seed": seed, "num_predict": 60}}, func(r api.GenerateResponse) error {
			text += r.Response
			reason = r.DoneReason
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if reason == "" {
			t.Fatal("no done_reason")
		}
		checkJSONAnswer(t, text, reason)
	}

	script := startScripted(t, "{\"city\": \"Paris\", \"temp\": [21.5, 22]} That is all.")
	var resp toolChatResp
	script.post(t, "/v1/chat/completions", map[string]any{"model": "script", "max_tokens": 200, "temperature": 0,
		"messages":        []map[string]any{{"role": "user", "content": "Weather?"}},
		"response_format": map[string]any{"type": "json_object"}}, &resp)
	if c := resp.Choices[0]; *c.Message.Content != `{"city": "Paris", "temp": [21.5, 22]}` || c.FinishReason != "stop" {
		t.Errorf("scripted JSON answer %q, finish %q", *c.Message.Content, c.FinishReason)
	}
	// Without JSON mode the same model goes on after the object.
	script.post(t, "/v1/chat/completions", map[string]any{"model": "script", "max_tokens": 200, "temperature": 0,
		"messages": []map[string]any{{"role": "user", "content": "Weather?"}}}, &resp)
	if c := resp.Choices[0]; !strings.HasSuffix(*c.Message.Content, "That is all.") {
		t.Errorf("scripted free answer %q", *c.Message.Content)
	}
}

func checkJSONAnswer(t *testing.T, text, finish string) {
	t.Helper()
	var s jsonState
	if !s.accepts([]byte(text)) {
		t.Fatalf("answer %q is not a prefix of a JSON object", text)
	}
	s.feed([]byte(text))
	switch finish {
	case "stop":
		var v map[string]any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			t.Errorf("finished answer %q: %v", text, err)
		}
	case "length":
		if s.complete() {
			t.Errorf("answer %q is complete but finish_reason is length", text)
		}
	default:
		t.Errorf("finish_reason %q", finish)
	}
}

// vocabEngine answers mask's questions from a real tokenizer.
type vocabEngine struct {
	scriptEngine
	tok *tokenizer.Tokenizer
}

func (e *vocabEngine) TokenBytes(id int32) []byte { return e.tok.Piece(id) }
func (e *vocabEngine) IsSpecial(id int32) bool    { return e.tok.IsControl(id) }
func (e *vocabEngine) IsEOG(id int32) bool        { return e.tok.IsEOG(id) }

// BenchmarkJSONMask is the cost JSON mode adds to each generated token
// with Qwen 2's vocabulary of 151936 tokens, inside a string value.
func BenchmarkJSONMask(b *testing.B) {
	f, err := gguf.Open(testdata.Path(b, "vocab", "ggml-vocab-qwen2.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		b.Fatal(err)
	}
	eng := &vocabEngine{tok: tok}
	logits := make([]float32, tok.VocabSize())
	var c jsonConstraint
	c.st.feed([]byte(`{"name": "Ada`))
	b.ResetTimer()
	for range b.N {
		if !c.mask(eng, logits) {
			b.Fatal("nothing allowed")
		}
	}
}
