package chat

import (
	"context"
	"testing"
	"time"
)

// FuzzTemplate checks that no template text, however broken, makes New
// or Render panic or run past its budget.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"{% for m in messages %}{{ m.role }}: {{ m.content|trim }}{% endfor %}",
		"{{ '}}' }}{% raw %}{{ x }}{% endraw %}{# c #}",
		"{%- for x in range(3) if x recursive -%}{{ loop.index }}{%- endfor -%}",
		"{% set ns = namespace(a=[]) %}{{ ns.a | tojson(indent=2) }}",
		"{{ messages[::-1] | map(attribute='role') | join(',') }}",
	} {
		f.Add(s)
	}
	msgs := []Message{{Role: "user", Content: Text("hi")}, {Role: "assistant", Content: Content{Null: true}}}
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := New(src, WithTimeout(100*time.Millisecond), WithMaxOutput(1<<16))
		if err != nil {
			return
		}
		start := time.Now()
		tmpl.Render(context.Background(), Request{Messages: msgs, AddGenerationPrompt: true})
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("render took %v", d)
		}
	})
}
