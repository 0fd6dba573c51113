package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/internal/testdata"
)

// vocabCase is one llama.cpp tokenizer test string and its expected ids.
type vocabCase struct {
	text string
	ids  []int32
}

// readVocabCases parses NAME.gguf.inp (strings separated by the line
// __ggml_vocab_test__) and NAME.gguf.out (one line of ids per string).
func readVocabCases(t *testing.T, inp, out string) []vocabCase {
	t.Helper()
	in, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(in), "\n__ggml_vocab_test__\n")
	// The file ends with a separator line; the last split element is empty.
	if n := len(texts); n > 0 && texts[n-1] == "" {
		texts = texts[:n-1]
	}
	lines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d strings but %d id lines", filepath.Base(inp), len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i, text := range texts {
		var ids []int32
		for _, f := range strings.Fields(lines[i]) {
			v, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				t.Fatalf("%s line %d: %v", filepath.Base(out), i+1, err)
			}
			ids = append(ids, int32(v))
		}
		cases[i] = vocabCase{text: text, ids: ids}
	}
	return cases
}

func loadTokenizer(t testing.TB, path string) *Tokenizer {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// vocabsWithoutGGUF are llama.cpp test cases whose vocabulary is not in the
// shared folder.
var vocabsWithoutGGUF = map[string]bool{"command-r": true, "chameleon": true, "roberta-bpe": true, "deepseek-r1-qwen": true}

// TestVocabCases runs llama.cpp's tokenizer tests for every vocabulary in
// the shared folder: each string must give exactly llama.cpp's ids, and
// decoding must give the string back where the vocabulary can represent it.
func TestVocabCases(t *testing.T) {
	dir := testdata.Path(t, "vocab")
	inps, err := filepath.Glob(filepath.Join(dir, "ggml-vocab-*.gguf.inp"))
	if err != nil || len(inps) == 0 {
		t.Fatalf("no test cases in %s: %v", dir, err)
	}
	for _, inp := range inps {
		model := strings.TrimSuffix(inp, ".inp")
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(model), "ggml-vocab-"), ".gguf")
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(model); err != nil {
				if vocabsWithoutGGUF[name] {
					t.Skipf("no %s in the shared folder", filepath.Base(model))
				}
				t.Fatalf("test cases without a vocabulary: %v", err)
			}
			t.Parallel()
			tok := loadTokenizer(t, model)
			cases := readVocabCases(t, inp, model+".out")
			for i, c := range cases {
				got := tok.Encode(c.text, false, false)
				if !slices32Equal(got, c.ids) {
					t.Errorf("case %d %q:\n got %v\nwant %v", i, c.text, got, c.ids)
					continue
				}
				if representable(tok, c.ids) {
					if back := tok.Decode(got); back != c.text {
						t.Errorf("case %d %q: decodes to %q", i, c.text, back)
					}
				}
			}
		})
	}
}

// representable reports whether ids hold no unknown token, so that the
// text they came from can be rebuilt exactly. WordPiece is lossy (case,
// accents, spacing) and is excluded.
func representable(tok *Tokenizer, ids []int32) bool {
	if tok.Kind() == WPM {
		return false
	}
	for _, id := range ids {
		if id == tok.UNK() && tok.TokenType(id) != TypeNormal {
			return false
		}
	}
	return true
}

func slices32Equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func openVocab(tb testing.TB, name string) *gguf.File {
	tb.Helper()
	f, err := gguf.Open(testdata.Path(tb, vocabFile(name)...))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}
