package tokenizer

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"

	"github.com/foretoken/foretoken/internal/testdata"
)

// benchText is about 1 MiB built from llama.cpp's tokenizer test strings
// (English prose, code, whitespace runs, other scripts) repeated.
func benchText(tb testing.TB) string {
	tb.Helper()
	in, err := os.ReadFile(testdata.Path(tb, "vocab", "ggml-vocab-llama-spm.gguf.inp"))
	if err != nil {
		tb.Fatal(err)
	}
	unit := strings.ReplaceAll(string(in), "\n__ggml_vocab_test__\n", "\n")
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString(unit)
	}
	return b.String()
}

// BenchmarkEncode reports tokens/s and MB/s of each kind of tokenizer on
// about 1 MiB of text.
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, name := range []string{"llama-spm", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "bert-bge"} {
		b.Run(name, func(b *testing.B) {
			tok := vocab(b, vocabFile(name)...)
			b.SetBytes(int64(len(text)))
			var n int
			for b.Loop() {
				n = len(tok.Encode(text, false, false))
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDecode measures streaming detokenization.
func BenchmarkDecode(b *testing.B) {
	text := benchText(b)
	tok := vocab(b, vocabFile("llama-bpe")...)
	ids := tok.Encode(text, false, false)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		d := tok.NewDecoder(DecodeOptions{})
		for _, id := range ids {
			d.Add(id)
		}
		d.Flush()
	}
}

const (
	llama3Regex = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	gpt2Regex   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	qwen2Regex  = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	gpt4oRegex  = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	tekkenRegex = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// splitRegexp2 splits text with a backtracking regular expression, keeping
// the text between matches as pieces, and returns piece lengths in code
// points.
func splitRegexp2(tb testing.TB, re *regexp2.Regexp, text string) []int32 {
	var out []int32
	prev := 0
	m, err := re.FindStringMatch(text)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		if m.Index > prev {
			out = append(out, int32(m.Index-prev))
		}
		out = append(out, int32(m.Length))
		prev = m.Index + m.Length
	}
	if err != nil {
		tb.Fatal(err)
	}
	if n := utf8.RuneCountInString(text); prev < n {
		out = append(out, int32(n-prev))
	}
	return out
}

func splitHand(m matcher, text string) []int32 {
	var t cptText
	t.cpts, t.flags = appendCodepoints(nil, nil, text)
	return split(&t, m, []int32{int32(len(t.cpts))}, nil)
}

// TestMatchersAgreeWithRegexp2 cross-checks the hand-written GPT-2 and
// Llama 3 splitters against the original expressions run by a backtracking
// engine with look-ahead, on the test strings and random text.
func TestMatchersAgreeWithRegexp2(t *testing.T) {
	in, err := os.ReadFile(testdata.Path(t, "vocab", "ggml-vocab-llama-bpe.gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(in), "\n__ggml_vocab_test__\n")
	texts = append(texts, "ÉCOLE", "ñANDU ÀÉÎõü", "HELLOworld", "aÉB", " McDonald's", "x/\n/", "ÉA", "ÉAb", "AÉ", "'ÉAÉA", "DON'T you're I'M Ñ's x'll 'S")
	r := rand.New(rand.NewPCG(7, 7))
	for range 500 {
		if s := randomText(r, 80); utf8.ValidString(s) {
			texts = append(texts, s)
		}
	}
	for _, c := range []struct {
		name string
		expr string
		m    matcher
	}{
		{"llama3", llama3Regex, matchLlama3(3)},
		{"gpt2", gpt2Regex, matchGPT2},
		{"qwen2", qwen2Regex, matchLlama3(1)},
		{"tekken", tekkenRegex, matchTekken},
		{"gpt-4o", gpt4oRegex, matchGPT4o},
	} {
		re := regexp2.MustCompile(c.expr, regexp2.None)
		for _, s := range texts {
			want := splitRegexp2(t, re, s)
			if got := splitHand(c.m, s); !slices.Equal(got, want) {
				t.Errorf("%s %q:\n got %v\nwant %v", c.name, s, got, want)
			}
		}
	}
}

// BenchmarkPreTokenize compares the hand-written Llama 3 splitter with
// regexp2 running the original expression.
func BenchmarkPreTokenize(b *testing.B) {
	text := benchText(b)
	b.Run("hand", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		var t cptText
		var segs []int32
		for b.Loop() {
			t.cpts, t.flags = appendCodepoints(t.cpts[:0], t.flags[:0], text)
			segs = split(&t, matchLlama3(3), []int32{int32(len(t.cpts))}, segs[:0])
		}
	})
	b.Run("regexp2", func(b *testing.B) {
		re := regexp2.MustCompile(llama3Regex, regexp2.None)
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			splitRegexp2(b, re, text)
		}
	})
}

// BenchmarkNew measures building the tables of the largest vocabularies
// (GGUF parsing excluded).
func BenchmarkNew(b *testing.B) {
	for _, name := range []string{"llama-bpe", "qwen2", "llama-spm"} {
		b.Run(name, func(b *testing.B) {
			f := openVocab(b, name)
			v, err := VocabFromGGUF(f)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := New(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzMatchers compares the hand-written splitters with regexp2 running the
// original expressions.
func FuzzMatchers(f *testing.F) {
	f.Add("Hello WORLD's ÉCOLE 12345 \n\n  x")
	exprs := []struct {
		re *regexp2.Regexp
		m  matcher
	}{
		{regexp2.MustCompile(llama3Regex, regexp2.None), matchLlama3(3)},
		{regexp2.MustCompile(gpt2Regex, regexp2.None), matchGPT2},
		{regexp2.MustCompile(tekkenRegex, regexp2.None), matchTekken},
		{regexp2.MustCompile(gpt4oRegex, regexp2.None), matchGPT4o},
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for i, e := range exprs {
			want := splitRegexp2(t, e.re, s)
			if got := splitHand(e.m, s); !slices.Equal(got, want) {
				t.Fatalf("expression %d on %q:\n got %v\nwant %v", i, s, got, want)
			}
		}
	})
}
