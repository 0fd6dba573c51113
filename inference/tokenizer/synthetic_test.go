package tokenizer

import (
	"fmt"
	"slices"
	"testing"
)

// These tests build tiny vocabularies by hand, so the expected ids follow
// from the algorithms' definitions rather than from any reference output.

func i32(x int32) *int32 { return &x }

func spmVocab() *Vocab {
	v := &Vocab{Model: "llama"}
	add := func(text string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, text)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, TypeUnknown) // 0
	add("<s>", 0, TypeControl)   // 1
	add("</s>", 0, TypeControl)  // 2
	for b := range 256 {         // 3..258
		add(fmt.Sprintf("<0x%02X>", b), 0, TypeByte)
	}
	add("▁", -1, TypeNormal)   // 259
	add("a", -2, TypeNormal)   // 260
	add("b", -2, TypeNormal)   // 261
	add("▁a", -5, TypeNormal)  // 262
	add("ab", -3, TypeNormal)  // 263: preferred over ▁a
	add("▁ab", -4, TypeNormal) // 264
	add("<tag>", 0, TypeUserDefined)
	return v
}

func TestSyntheticSPM(t *testing.T) {
	tok, err := New(spmVocab())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text     string
		want     []int32
		lossless bool
	}{
		{"ab", []int32{264}, true},                    // ab (-3) merges before ▁a (-5), then ▁ab
		{"a", []int32{262}, true},                     // ▁a
		{"b a", []int32{259, 261, 262}, true},         // ▁ b ▁a
		{"é", []int32{259, 3 + 0xC3, 3 + 0xA9}, true}, // no token: byte fallback
		// User-defined tokens are always matched, and the text after them
		// gets the prefix space again (so it does not decode back).
		{"a<tag>a", []int32{262, 265, 262}, false},
		{"<s>", []int32{259, 3 + '<', 3 + 's', 3 + '>'}, true},
	}
	for _, tt := range tests {
		if got := tok.Encode(tt.text, false, false); !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.text, got, tt.want)
		}
		if got := tok.Decode(tok.Encode(tt.text, false, false)); tt.lossless && got != tt.text {
			t.Errorf("%q decodes to %q", tt.text, got)
		}
	}
	if got := tok.Encode("<s>a", true, true); !slices.Equal(got, []int32{1, 1, 262}) {
		t.Errorf("add+parse special: %v", got)
	}
	v := spmVocab()
	v.AddSpacePrefix = new(bool)
	tok, err = New(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("ab", false, false); !slices.Equal(got, []int32{263}) {
		t.Errorf("no space prefix: %v", got)
	}
}

func bpeVocab() *Vocab {
	v := &Vocab{Model: "gpt2", Pre: "gpt-2"}
	m := gpt2ByteMap()
	for b := range 256 {
		v.Tokens = append(v.Tokens, string(m[b]))
	}
	// 256 "ab", 257 "abc", 258 "Ġa", 259 "Ġab", 260 "<|endoftext|>"
	v.Tokens = append(v.Tokens, "ab", "abc", "Ġa", "Ġab", "<|endoftext|>")
	v.Merges = []string{"a b", "ab c", "Ġ a", "Ġa b", "b c"}
	v.Types = make([]int32, len(v.Tokens))
	for i := range v.Types {
		v.Types[i] = TypeNormal
	}
	v.Types[260] = TypeControl
	v.EOS = i32(260)
	return v
}

func TestSyntheticBPE(t *testing.T) {
	tok, err := New(bpeVocab())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want []int32
	}{
		{"abc", []int32{257}},            // a b -> ab (rank 0), ab c -> abc (rank 1)
		{"bc", []int32{'b', 'c'}},        // "b c" is a merge but bc is no token: bytes
		{" abd", []int32{' ', 256, 'd'}}, // a b (rank 0) beats Ġ a (rank 2); Ġ ab is no merge
		{" acd", []int32{258, 'c', 'd'}}, // Ġ a -> Ġa
		{"abcabc", []int32{257, 257}},    // equal ranks: leftmost first
		{"é", []int32{0xC3, 0xA9}},       // two byte symbols
		{"<|endoftext|>", []int32{'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'}},
	}
	for _, tt := range tests {
		if got := tok.Encode(tt.text, false, false); !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.text, got, tt.want)
		}
		if got := tok.Decode(tok.Encode(tt.text, false, false)); got != tt.text {
			t.Errorf("%q decodes to %q", tt.text, got)
		}
	}
	if got := tok.Encode("<|endoftext|>", false, true); !slices.Equal(got, []int32{260}) {
		t.Errorf("parse special: %v", got)
	}
	if !tok.IsEOG(260) || tok.IsEOG(256) {
		t.Errorf("eog %v", tok.EOG())
	}
}

func TestNewErrors(t *testing.T) {
	for _, v := range []*Vocab{
		{},
		{Model: "t5", Tokens: []string{"a"}},
		{Model: "gpt2", Pre: "nonsense", Tokens: []string{"a"}, Merges: []string{"a a"}},
		{Model: "gpt2", Tokens: []string{"a"}},
		{Model: "llama", Tokens: []string{"a"}, Scores: []float32{1, 2}},
	} {
		if _, err := New(v); err == nil {
			t.Errorf("%+v: no error", v)
		}
	}
}
