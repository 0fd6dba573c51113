package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/foretoken/foretoken/internal/testdata"
)

// cached loads each test vocabulary once per test binary.
var (
	cacheMu sync.Mutex
	cache   = map[string]*Tokenizer{}
)

func vocab(t testing.TB, elem ...string) *Tokenizer {
	t.Helper()
	path := testdata.Path(t, elem...)
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if tok, ok := cache[path]; ok {
		return tok
	}
	tok := loadTokenizer(t, path)
	cache[path] = tok
	return tok
}

func vocabFile(name string) []string { return []string{"vocab", "ggml-vocab-" + name + ".gguf"} }

// Character classes for random text: plain ASCII, whitespace runs, control
// characters, accents and combining marks, other scripts, emoji (with ZWJ
// sequences and skin tones), CJK, and characters near the byte map's edges.
var runePools = [][]rune{
	[]rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
	[]rune(" \t\n\r\v\f"),
	[]rune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
	{0x00, 0x01, 0x07, 0x1B, 0x1F, 0x7F, 0x85, 0xA0, 0xAD, 0x200B, 0x200D, 0x2028, 0x3000, 0xFEFF, 0xFFFD},
	[]rune("éèêëàâäôöûüçñÅØßÆœĳǅ\u0301\u0308\u20dd"),
	[]rune("привет мир Ελληνικά עברית العربية हिन्दी ไทย"),
	[]rune("日本語中文한국어カタカナ"),
	{0x1F999, 0x1F600, 0x1F468, 0x200D, 0x1F469, 0x1F44D, 0x1F3FD, 0x2764, 0xFE0F, 0x1F1FA, 0x1F1F8},
	{0x100, 0x120, 0x143, 0xFF, 0x7E, 0x80, 0x9F},
}

func randomText(r *rand.Rand, maxLen int) string {
	var b strings.Builder
	n := r.IntN(maxLen + 1)
	for range n {
		pool := runePools[r.IntN(len(runePools))]
		c := pool[r.IntN(len(pool))]
		reps := 1
		if r.IntN(8) == 0 {
			reps = 1 + r.IntN(40) // long runs: whitespace, digits, repeated letters
		}
		for range reps {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// checkRoundTrip encodes s and checks ids are valid, decode gives s back,
// and the streaming decoder gives the same text in valid pieces.
func checkRoundTrip(t *testing.T, tok *Tokenizer, s string) {
	t.Helper()
	ids := tok.Encode(s, false, false)
	for _, id := range ids {
		if id < 0 || int(id) >= tok.VocabSize() {
			t.Fatalf("%q: id %d out of range", s, id)
		}
	}
	if len(s) > 0 && len(ids) == 0 {
		t.Fatalf("%q: no tokens", s)
	}
	if !canRepresent(tok, s) {
		return
	}
	if back := tok.Decode(ids); back != s {
		t.Fatalf("%q: encodes to %v, decodes to %q", s, ids, back)
	}
	d := tok.NewDecoder(DecodeOptions{StartOfText: true})
	var streamed strings.Builder
	for _, id := range ids {
		part := d.Add(id)
		if !utf8.ValidString(part) {
			t.Fatalf("%q: decoder emitted invalid UTF-8 %q", s, part)
		}
		streamed.WriteString(part)
	}
	streamed.WriteString(d.Flush())
	if streamed.String() != s {
		t.Fatalf("%q: streamed decode %q", s, streamed.String())
	}
}

// canRepresent reports whether every byte of s has a token: some BPE
// vocabularies lack a few byte tokens (Falcon has none for 0x0B), and
// llama.cpp drops such bytes.
func canRepresent(tok *Tokenizer, s string) bool {
	if tok.kind != BPE {
		return true
	}
	for i := 0; i < len(s); i++ {
		if id := tok.bpe.byteSym[s[i]]; id < 0 || id >= tok.bpe.nVocab {
			return false
		}
	}
	return true
}

// TestRoundTripRandom: for every kind of lossless vocabulary, random
// Unicode text decodes back to itself (SentencePiece text without U+2581,
// which it reserves for spaces).
func TestRoundTripRandom(t *testing.T) {
	for _, name := range []string{"llama-spm", "baichuan", "gpt-2", "gpt-neox", "mpt", "refact", "llama-bpe", "qwen2", "falcon", "deepseek-llm", "deepseek-coder", "starcoder"} {
		t.Run(name, func(t *testing.T) {
			tok := vocab(t, vocabFile(name)...)
			r := rand.New(rand.NewPCG(1, uint64(len(name))))
			for range 300 {
				checkRoundTrip(t, tok, randomText(r, 60))
			}
			for _, s := range []string{"", " ", "\n\n\n", strings.Repeat(" ", 1000), strings.Repeat("\t \n", 300),
				strings.Repeat("9", 500), strings.Repeat("🦙", 50), "a\u0301\u0301\u0301", "\x00\x01\x7f"} {
				checkRoundTrip(t, tok, s)
			}
		})
	}
}

// TestWordPieceRandom: WordPiece is lossy, so check only that every id is
// valid, that text with something other than whitespace gives tokens, and
// that lower-case ASCII words come back.
func TestWordPieceRandom(t *testing.T) {
	tok := vocab(t, vocabFile("bert-bge")...)
	r := rand.New(rand.NewPCG(2, 3))
	for range 300 {
		s := randomText(r, 60)
		ids := tok.Encode(s, false, false)
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("%q: id %d out of range", s, id)
			}
		}
	}
	for _, s := range []string{"hello world", "the quick brown fox jumps over the lazy dog", "tokenization is fun"} {
		if got := tok.Decode(tok.Encode(s, false, false)); got != s {
			t.Errorf("%q decodes to %q", s, got)
		}
	}
	// Accents are stripped and case folded; punctuation splits words.
	if got, want := tok.Decode(tok.Encode("Héllo, Wörld!", false, false)), "hello , world !"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// CLS and SEP around the text.
	ids := tok.Encode("hello", true, false)
	if ids[0] != tok.CLS() || ids[len(ids)-1] != tok.SEP() || tok.TokenText(ids[0]) != "[CLS]" || tok.TokenText(ids[len(ids)-1]) != "[SEP]" {
		t.Errorf("add special: %v", ids)
	}
}

// TestDecoderSplitCharacters uses stories260K, whose 512-token vocabulary
// spells most non-ASCII characters with byte tokens: the decoder must hold
// back the first bytes of a character until its last byte arrives.
func TestDecoderSplitCharacters(t *testing.T) {
	tok := vocab(t, "models", "stories260K.gguf")
	text := "Lily saw a 🦙 and said: ¡Olé! 日本 ünïcödé"
	ids := tok.Encode(text, true, false)
	if ids[0] != tok.BOS() {
		t.Fatalf("no BOS: %v", ids)
	}
	bytesTokens := 0
	for _, id := range ids {
		if tok.TokenType(id) == TypeByte {
			bytesTokens++
		}
	}
	if bytesTokens < 8 {
		t.Fatalf("expected byte tokens for the emoji and CJK, got %d in %v", bytesTokens, ids)
	}
	d := tok.NewDecoder(DecodeOptions{StartOfText: true})
	var out strings.Builder
	held := false
	for _, id := range ids {
		part := d.Add(id)
		if !utf8.ValidString(part) {
			t.Fatalf("invalid UTF-8 emitted: %q", part)
		}
		if d.Pending() > 0 {
			held = true
		}
		out.WriteString(part)
	}
	out.WriteString(d.Flush())
	if !held {
		t.Error("decoder never held back a partial character")
	}
	if out.String() != text {
		t.Errorf("got %q, want %q", out.String(), text)
	}
	if got := tok.Decode(ids); got != text {
		t.Errorf("Decode: got %q", got)
	}

	// The first two of the four byte tokens of 🦙 (F0 9F A6 99) give
	// nothing; Flush then reports the broken character as U+FFFD.
	llama := tok.Encode("🦙", false, false)
	var emoji []int32
	for _, id := range llama {
		if tok.TokenType(id) == TypeByte {
			emoji = append(emoji, id)
		}
	}
	if len(emoji) != 4 {
		t.Fatalf("🦙 as %v, want 4 byte tokens", llama)
	}
	d = tok.NewDecoder(DecodeOptions{})
	if s := d.Add(emoji[0]) + d.Add(emoji[1]); s != "" {
		t.Errorf("partial character emitted: %q", s)
	}
	if s := d.Flush(); s != "\uFFFD" {
		t.Errorf("Flush = %q, want U+FFFD", s)
	}
	// A continuation byte with no lead byte is invalid at once.
	d = tok.NewDecoder(DecodeOptions{})
	if s := d.Add(emoji[2]) + d.Add(tok.Encode("a", false, false)[0]); s != "\uFFFD a" && s != "\uFFFDa" {
		t.Errorf("stray continuation byte: %q", s)
	}
}

// TestSpecialTokens checks BOS/EOS addition, parse_special and the
// end-of-generation set against the token texts of real vocabularies.
func TestSpecialTokens(t *testing.T) {
	lookup := func(t *testing.T, tok *Tokenizer, s string) int32 {
		t.Helper()
		id, ok := tok.Lookup(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		return id
	}
	t.Run("qwen2", func(t *testing.T) {
		tok := vocab(t, vocabFile("qwen2")...)
		imStart, imEnd, eot := lookup(t, tok, "<|im_start|>"), lookup(t, tok, "<|im_end|>"), lookup(t, tok, "<|endoftext|>")
		for _, id := range []int32{imEnd, eot} {
			if !tok.IsEOG(id) {
				t.Errorf("%q not end of generation", tok.TokenText(id))
			}
		}
		if tok.IsEOG(imStart) || !tok.IsControl(imStart) {
			t.Errorf("<|im_start|>: eog %v control %v", tok.IsEOG(imStart), tok.IsControl(imStart))
		}
		got := tok.Encode("<|im_start|>user\nhi<|im_end|>", false, true)
		if got[0] != imStart || got[len(got)-1] != imEnd {
			t.Errorf("parse special: %v", got)
		}
		plain := tok.Encode("<|im_start|>user\nhi<|im_end|>", false, false)
		if slices.Contains(plain, imStart) || slices.Contains(plain, imEnd) {
			t.Errorf("control text parsed without parse_special: %v", plain)
		}
		if tok.Decode(plain) != "<|im_start|>user\nhi<|im_end|>" {
			t.Errorf("plain decode: %q", tok.Decode(plain))
		}
		// Qwen2 adds no BOS (add_bos_token false).
		if ids := tok.Encode("hi", true, false); len(ids) != 1 {
			t.Errorf("add special added tokens: %v", ids)
		}
		if s := string(tok.AppendDecode(nil, got, DecodeOptions{Special: true})); s != "<|im_start|>user\nhi<|im_end|>" {
			t.Errorf("special decode: %q", s)
		}
	})
	t.Run("llama-bpe", func(t *testing.T) {
		tok := vocab(t, vocabFile("llama-bpe")...)
		bot, eotID := lookup(t, tok, "<|begin_of_text|>"), lookup(t, tok, "<|eot_id|>")
		if tok.BOS() != bot || !tok.IsEOG(eotID) || !tok.IsEOG(tok.EOS()) || tok.EOT() != eotID {
			t.Errorf("bos %d eot %d eog %v", tok.BOS(), tok.EOT(), tok.EOG())
		}
		ids := tok.Encode("Hello", true, false)
		if ids[0] != bot || len(ids) != 2 {
			t.Errorf("add special: %v", ids)
		}
		ids = tok.Encode("<|begin_of_text|>Hello<|eot_id|>", false, true)
		if len(ids) != 3 || ids[0] != bot || ids[2] != eotID {
			t.Errorf("parse special: %v", ids)
		}
	})
	t.Run("llama-spm", func(t *testing.T) {
		tok := vocab(t, vocabFile("llama-spm")...)
		hello := tok.Encode("Hello", false, false)
		// After a special token SentencePiece adds the prefix space again.
		ids := tok.Encode("<s>Hello</s>", false, true)
		want := append(append([]int32{tok.BOS()}, hello...), tok.EOS())
		if !slices.Equal(ids, want) {
			t.Errorf("parse special: %v, want %v", ids, want)
		}
		if ids := tok.Encode("Hello", true, false); ids[0] != tok.BOS() || len(ids) != len(hello)+1 {
			t.Errorf("add special: %v", ids)
		}
		if !tok.IsEOG(tok.EOS()) || tok.TokenText(tok.EOS()) != "</s>" || tok.TokenText(tok.BOS()) != "<s>" {
			t.Errorf("bos %d eos %d", tok.BOS(), tok.EOS())
		}
		if got := tok.Detokenize(append([]int32{tok.BOS()}, hello...), true, false); got != " Hello" {
			// llama.cpp keeps the space when it removes a leading BOS.
			t.Errorf("Detokenize: %q", got)
		}
		if got := tok.Detokenize(tok.Encode("Hello , world .", false, false), false, false); got != "Hello, world." {
			t.Errorf("Detokenize clean spaces: %q", got)
		}
	})
	t.Run("phi-3", func(t *testing.T) {
		// llama.cpp makes Phi-3's special tokens eat the whitespace after
		// them (general.name "Phi3").
		tok := vocab(t, vocabFile("phi-3")...)
		end := lookup(t, tok, "<|end|>")
		a := tok.Encode("<|end|> \n  hi", false, true)
		b := tok.Encode("<|end|>hi", false, true)
		if a[0] != end || !slices.Equal(a, b) {
			t.Errorf("rstrip: %v vs %v", a, b)
		}
		if !tok.IsEOG(end) {
			t.Errorf("<|end|> not end of generation")
		}
	})
	t.Run("gpt-2", func(t *testing.T) {
		tok := vocab(t, vocabFile("gpt-2")...)
		eot := lookup(t, tok, "<|endoftext|>")
		if !tok.IsEOG(eot) || tok.EOS() != eot {
			t.Errorf("eos %d eog %v", tok.EOS(), tok.EOG())
		}
	})
}

// TestEncodeEmpty: the empty string gives no tokens, even for SentencePiece
// (which would otherwise prefix a space).
func TestEncodeEmpty(t *testing.T) {
	for _, name := range []string{"llama-spm", "gpt-2", "bert-bge"} {
		tok := vocab(t, vocabFile(name)...)
		if ids := tok.Encode("", false, false); len(ids) != 0 {
			t.Errorf("%s: %v", name, ids)
		}
	}
}

// TestSPMWordwiseMatchesWhole: merging SentencePiece text word by word (the
// fast path) gives the same ids as merging the whole fragment at once.
func TestSPMWordwiseMatchesWhole(t *testing.T) {
	checked := 0
	for _, elem := range [][]string{vocabFile("llama-spm"), vocabFile("phi-3"), vocabFile("baichuan"), {"models", "stories260K.gguf"}} {
		tok := vocab(t, elem...)
		if !tok.spmWordwise {
			t.Logf("%s: no word-wise fast path", elem[len(elem)-1])
			continue
		}
		checked++
		r := rand.New(rand.NewPCG(5, 5))
		texts := []string{strings.Repeat(" ", 50) + "a  b   c", "▁▁x▁", "Hello world. " + strings.Repeat("\t ", 20)}
		for range 300 {
			texts = append(texts, randomText(r, 60))
		}
		s := new(session)
		for _, text := range texts {
			esc := []byte("▁" + strings.ReplaceAll(text, " ", "▁"))
			if !utf8.Valid(esc) {
				continue
			}
			whole := tok.spmChunk(s, esc, nil)
			if fast := tok.spm(s, esc, nil); !slices.Equal(fast, whole) {
				t.Fatalf("%s %q: word-wise %v, whole %v", elem[len(elem)-1], text, fast, whole)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no vocabulary takes the word-wise path: the test compared nothing")
	}
}

// TestConcurrentEncode: one Tokenizer serves many goroutines (run with
// -race to check the pooled scratch buffers).
func TestConcurrentEncode(t *testing.T) {
	tok := vocab(t, vocabFile("gpt-2")...)
	texts := []string{"Hello world", " this is 🦙.cpp", strings.Repeat("concurrency ", 50), "\n\n\t x"}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s, false, false)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (g + k) % len(texts)
				if got := tok.Encode(texts[i], false, false); !slices.Equal(got, want[i]) {
					errs <- texts[i]
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Encode(%q) differs", s)
	}
}
