package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks that tokenizing never panics, yields valid ids, and
// (for valid UTF-8 the vocabulary can represent) decodes back to the input,
// for one vocabulary of each kind. Seeds are in testdata/fuzz/FuzzEncode.
func FuzzEncode(f *testing.F) {
	toks := []*Tokenizer{
		vocab(f, "models", "stories260K.gguf"),
		vocab(f, vocabFile("gpt-2")...),
		vocab(f, vocabFile("qwen2")...),
		vocab(f, vocabFile("bert-bge")...),
	}
	f.Add("Hello world")
	f.Add("<|im_start|>user\n<s>hi</s>")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			for _, parse := range []bool{false, true} {
				ids := tok.Encode(s, true, parse)
				for _, id := range ids {
					if id < 0 || int(id) >= tok.VocabSize() {
						t.Fatalf("%s: id %d out of range", tok.Kind(), id)
					}
				}
				// The streaming decoder emits valid UTF-8 whatever the ids.
				d := tok.NewDecoder(DecodeOptions{Special: true})
				for _, id := range ids {
					if part := d.Add(id); !utf8.ValidString(part) {
						t.Fatalf("decoder emitted %q", part)
					}
				}
				d.Flush()
			}
			if tok.Kind() == WPM || !utf8.ValidString(s) || !canRepresent(tok, s) {
				continue
			}
			if tok.Kind() == SPM && strings.Contains(s, "▁") {
				continue // SentencePiece stores spaces as U+2581
			}
			if back := tok.Decode(tok.Encode(s, false, false)); back != s {
				t.Fatalf("%s: %q decodes to %q", tok.Kind(), s, back)
			}
		}
	})
}
