package chat

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foretoken/foretoken/internal/testdata"
)

// refCase is one entry of reference/chat-templates/cases.json, rendered by
// Python's Jinja2 as Hugging Face transformers does.
type refCase struct {
	Template            string            `json:"template"`
	Case                string            `json:"case"`
	Messages            []Message         `json:"messages"`
	AddGenerationPrompt bool              `json:"add_generation_prompt"`
	BOSToken            *string           `json:"bos_token"`
	EOSToken            *string           `json:"eos_token"`
	Tools               []json.RawMessage `json:"tools"`
	Expected            *string           `json:"expected"`
	Error               *string           `json:"error"`
}

// pinnedClock is the date the reference was rendered with.
func pinnedClock() time.Time { return time.Date(2026, time.November, 26, 12, 0, 0, 0, time.UTC) }

func loadCases(t *testing.T) (dir string, cases []refCase) {
	dir = testdata.Path(t, "reference", "chat-templates")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("decode cases.json: %v", err)
	}
	return dir, cases
}

func (c *refCase) request() Request {
	req := Request{Messages: c.Messages, AddGenerationPrompt: c.AddGenerationPrompt}
	if c.BOSToken != nil {
		req.BOSToken = *c.BOSToken
	}
	if c.EOSToken != nil {
		req.EOSToken = *c.EOSToken
	}
	if c.Tools != nil {
		for _, tool := range c.Tools {
			req.Tools = append(req.Tools, tool)
		}
	}
	return req
}

func TestReferenceCases(t *testing.T) {
	dir, cases := loadCases(t)
	compiled := map[string]*Template{}
	passed := 0
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.Template, ".jinja")+"/"+c.Case, func(t *testing.T) {
			tmpl, ok := compiled[c.Template]
			if !ok {
				src, err := os.ReadFile(filepath.Join(dir, "templates", c.Template))
				if err != nil {
					t.Fatal(err)
				}
				tmpl, err = New(string(src), WithClock(pinnedClock))
				if err != nil {
					t.Fatalf("compile: %v", err)
				}
				if !tmpl.adapted {
					t.Fatal("the engine rejected our adaptation of the template")
				}
				compiled[c.Template] = tmpl
			}
			got, err := tmpl.Render(context.Background(), c.request())
			if c.Error != nil {
				if err == nil {
					t.Fatalf("rendered without error; reference raised %q", *c.Error)
				}
				// The template's own raise_exception: the message must match.
				if msg, ok := strings.CutPrefix(*c.Error, "TemplateError: "); ok {
					var e *Error
					if !errors.As(err, &e) || !e.Raised || e.Msg != msg {
						t.Fatalf("error %v, want raise_exception(%q)", err, msg)
					}
				}
				passed++
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if got != *c.Expected {
				t.Fatalf("output differs from reference:\n%s", firstDiff(got, *c.Expected))
			}
			passed++
		})
	}
	t.Logf("%d of %d reference cases pass", passed, len(cases))
}

// firstDiff shows both texts around their first difference.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-80)
	return "at byte " + itoa(i) + "\n got: " + quoteSnippet(got, lo, i+120) + "\nwant: " + quoteSnippet(want, lo, i+120)
}

func quoteSnippet(s string, lo, hi int) string {
	hi = min(hi, len(s))
	if lo > hi {
		lo = hi
	}
	b, _ := json.Marshal(s[lo:hi])
	return string(b)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// BenchmarkRender renders each reference template's tool-call case (the
// largest conversation), compiled once.
func BenchmarkRender(b *testing.B) {
	dir := testdata.Path(b, "reference", "chat-templates")
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		b.Fatal(err)
	}
	var cases []refCase
	if err := json.Unmarshal(data, &cases); err != nil {
		b.Fatal(err)
	}
	for _, c := range cases {
		if c.Case != "tool_call_and_result" || c.Error != nil {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, "templates", c.Template))
		if err != nil {
			b.Fatal(err)
		}
		tmpl, err := New(string(src), WithClock(pinnedClock))
		if err != nil {
			b.Fatal(err)
		}
		req := c.request()
		b.Run(strings.TrimSuffix(c.Template, ".jinja"), func(b *testing.B) {
			for b.Loop() {
				if _, err := tmpl.Render(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
