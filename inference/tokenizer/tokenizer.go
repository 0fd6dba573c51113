// Package tokenizer turns text into token ids and back for the vocabularies
// that GGUF files carry: SentencePiece (tokenizer.ggml.model "llama"),
// byte-level BPE ("gpt2", with the pre-tokenizer named by tokenizer.ggml.pre)
// and WordPiece ("bert"). It reproduces llama.cpp's llama-vocab.cpp token for
// token, including its special-token handling.
//
// A Tokenizer is immutable after construction and safe for concurrent use.
package tokenizer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Kind is the tokenization algorithm of a vocabulary.
type Kind int

const (
	SPM Kind = iota + 1 // SentencePiece: bigram merges by score, byte fallback
	BPE                 // byte-level BPE: merges by rank after a pre-tokenizer
	WPM                 // WordPiece: greedy longest match
)

func (k Kind) String() string {
	switch k {
	case SPM:
		return "spm"
	case BPE:
		return "bpe"
	case WPM:
		return "wpm"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Token types as stored in tokenizer.ggml.token_type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Token attributes, llama.cpp's llama_token_attr.
type attr uint16

const (
	attrUnknown attr = 1 << iota
	attrUnused
	attrNormal
	attrControl
	attrUserDefined
	attrByte
	attrNormalized
	attrLstrip
	attrRstrip
	attrSingleWord
)

// NoToken marks an absent special token.
const NoToken int32 = -1

// Vocab is a vocabulary as GGUF metadata describes it. The optional fields
// are pointers: nil means "not in the metadata", and the defaults of
// llama.cpp for the model type apply.
type Vocab struct {
	Model  string    // tokenizer.ggml.model: "llama", "gpt2" or "bert"
	Pre    string    // tokenizer.ggml.pre
	Name   string    // general.name (llama.cpp keys a few fixes on it)
	Tokens []string  // tokenizer.ggml.tokens
	Scores []float32 // tokenizer.ggml.scores (SPM)
	Types  []int32   // tokenizer.ggml.token_type
	Merges []string  // tokenizer.ggml.merges (BPE), "left right"

	BOS, EOS, EOT, EOM, UNK, SEP, PAD, CLS, MASK *int32
	AddBOS, AddEOS, AddSpacePrefix               *bool
}

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	kind   Kind
	tokens []string
	scores []float32
	attrs  []attr
	toID   map[string]int32
	pieces [][]byte // the bytes each token stands for, control text included

	bos, eos, eot, eom, unk, sep, pad, cls, mask int32
	addBOS, addEOS, addSpacePrefix, cleanSpaces  bool

	eog     []int32 // sorted
	isEOG   []bool
	special []int32 // control, user-defined and unknown tokens, longest text first

	byteToken   [256]int32 // SPM byte fallback <0xNN>
	spmWordwise bool       // SPM: no token has ▁ after other characters
	maxTokenLen int        // WPM

	pre *preTokenizer
	bpe *bpeTables

	sessions sync.Pool
}

// New builds a tokenizer from a vocabulary.
func New(v *Vocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	t := &Tokenizer{
		tokens: v.Tokens,
		scores: v.Scores,
		attrs:  make([]attr, n),
		toID:   make(map[string]int32, n),
		bos:    NoToken, eos: NoToken, eot: NoToken, eom: NoToken, unk: NoToken,
		sep: NoToken, pad: NoToken, cls: NoToken, mask: NoToken,
	}
	if t.scores == nil {
		t.scores = make([]float32, n)
	}
	switch v.Model {
	case "llama":
		t.kind = SPM
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addSpacePrefix, t.cleanSpaces, t.addBOS = true, true, true
	case "gpt2":
		t.kind = BPE
		t.bos, t.eos = 11, 11
		pre, err := newPreTokenizer(v.Pre)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		t.pre = pre
		t.cleanSpaces, t.addBOS = pre.cleanSpaces, pre.addBOS
		if pre.noBOS {
			t.bos = NoToken
		}
	case "bert":
		t.kind = WPM
		t.bos, t.unk, t.sep, t.pad, t.mask = 101, 100, 102, 0, 103
		t.cleanSpaces, t.addBOS = true, true
	case "":
		return nil, fmt.Errorf("tokenizer: no tokenizer model in the vocabulary")
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q", v.Model)
	}

	// Later duplicates win, as in llama.cpp's token_to_id.
	for i, s := range v.Tokens {
		t.toID[s] = int32(i)
		if len(s) > t.maxTokenLen {
			t.maxTokenLen = len(s)
		}
		a := attrNormal
		if v.Types != nil {
			a = typeAttr(v.Types[i])
		}
		t.attrs[i] = a
	}

	setID := func(dst *int32, p *int32) {
		if p != nil && *p >= 0 && int(*p) < n {
			*dst = *p
		}
	}
	setID(&t.bos, v.BOS)
	setID(&t.eos, v.EOS)
	setID(&t.eot, v.EOT)
	setID(&t.eom, v.EOM)
	setID(&t.unk, v.UNK)
	setID(&t.sep, v.SEP)
	setID(&t.pad, v.PAD)
	setID(&t.cls, v.CLS)
	setID(&t.mask, v.MASK)
	if v.AddBOS != nil {
		t.addBOS = *v.AddBOS
	}
	if v.AddEOS != nil {
		t.addEOS = *v.AddEOS
	}
	if v.AddSpacePrefix != nil && t.kind == SPM {
		t.addSpacePrefix = *v.AddSpacePrefix
	}
	for _, id := range []*int32{&t.bos, &t.eos, &t.unk, &t.sep, &t.pad, &t.mask} {
		if int(*id) >= n {
			*id = NoToken
		}
	}

	t.findEndOfGeneration()
	t.buildSpecialCache(v.Name)

	if t.kind == SPM {
		t.spmWordwise = true
		for _, s := range t.tokens {
			if strings.Contains(strings.TrimLeft(s, "▁"), "▁") {
				t.spmWordwise = false
				break
			}
		}
		const hex = "0123456789ABCDEF"
		for b := range 256 {
			id, ok := t.toID[string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})]
			if !ok {
				id, ok = t.toID[string([]byte{byte(b)})]
			}
			if !ok {
				id = t.unk
			}
			t.byteToken[b] = id
		}
	}
	if t.kind == BPE {
		b, err := newBPETables(t.toID, n, v.Merges)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		t.bpe = b
	}
	t.buildPieces()
	t.sessions.New = func() any { return new(session) }
	return t, nil
}

func typeAttr(typ int32) attr {
	switch typ {
	case TypeUnknown:
		return attrUnknown
	case TypeUnused:
		return attrUnused
	case TypeNormal:
		return attrNormal
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeByte:
		return attrByte
	}
	return 0
}

// eogTexts are the token texts that end generation, as llama.cpp lists them.
var eogTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"}

// eotTexts are the candidates for the end-of-turn token, in order of
// preference.
var eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>"}

// findEndOfGeneration collects the end-of-generation set the way llama.cpp
// does from token texts, and marks those tokens as control tokens so that
// their text is only parsed when asked.
func (t *Tokenizer) findEndOfGeneration() {
	if t.eot == NoToken {
		for _, s := range eotTexts {
			if id, ok := t.toID[s]; ok {
				t.eot = id
				if t.attrs[id]&attrControl == 0 {
					t.attrs[id] = attrControl
				}
				break
			}
		}
	}
	if t.eom == NoToken {
		if id, ok := t.toID["<|eom_id|>"]; ok {
			t.eom = id
		}
	}
	set := map[int32]bool{}
	for _, s := range eogTexts {
		if id, ok := t.toID[s]; ok {
			set[id] = true
			if t.attrs[id]&attrControl == 0 {
				t.attrs[id] = attrControl
			}
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id != NoToken {
			set[id] = true
		}
	}
	t.isEOG = make([]bool, len(t.tokens))
	for id := range set {
		t.eog = append(t.eog, id)
		t.isEOG[id] = true
	}
	slices.Sort(t.eog)
}

// buildSpecialCache lists the tokens whose text is matched in the input
// before tokenization, longest first.
func (t *Tokenizer) buildSpecialCache(name string) {
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.special = append(t.special, int32(id))
		}
	}
	slices.SortStableFunc(t.special, func(a, b int32) int {
		return cmp.Compare(len(t.tokens[b]), len(t.tokens[a]))
	})
	// llama.cpp's per-model fix: Phi-3's special tokens eat the whitespace
	// after them.
	name = strings.ToLower(name)
	if strings.Contains(name, "phi-3") || strings.Contains(name, "phi3") {
		for _, id := range t.special {
			t.attrs[id] |= attrRstrip
		}
		if id, ok := t.toID["</s>"]; ok {
			t.attrs[id] |= attrRstrip
		}
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			if id, ok := t.toID[s]; ok {
				t.attrs[id] &^= attrRstrip
			}
		}
	}
}

// Kind reports the algorithm of the vocabulary.
func (t *Tokenizer) Kind() Kind { return t.kind }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS, EOS, EOT, UNK, SEP, PAD, CLS return the special token ids, NoToken
// where the vocabulary has none.
func (t *Tokenizer) BOS() int32 { return t.bos }
func (t *Tokenizer) EOS() int32 { return t.eos }
func (t *Tokenizer) EOT() int32 { return t.eot }
func (t *Tokenizer) UNK() int32 { return t.unk }
func (t *Tokenizer) SEP() int32 { return t.sep }
func (t *Tokenizer) PAD() int32 { return t.pad }
func (t *Tokenizer) CLS() int32 { return t.cls }

// AddBOS and AddEOS report whether Encode adds BOS/EOS when asked to add
// special tokens.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// EOG returns the ids that end generation (EOS, EOT and the like), sorted.
func (t *Tokenizer) EOG() []int32 { return slices.Clone(t.eog) }

// IsEOG reports whether id ends generation.
func (t *Tokenizer) IsEOG(id int32) bool {
	return id >= 0 && int(id) < len(t.isEOG) && t.isEOG[id]
}

// IsControl reports whether id is a control token (BOS, EOS, <|im_start|>...).
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.attrs) && t.attrs[id]&attrControl != 0
}

// TokenType returns the type of a token as stored in the vocabulary
// (TypeNormal, TypeControl, ...).
func (t *Tokenizer) TokenType(id int32) int32 {
	if id < 0 || int(id) >= len(t.attrs) {
		return TypeUndefined
	}
	a := t.attrs[id]
	switch {
	case a&attrControl != 0:
		return TypeControl
	case a&attrUserDefined != 0:
		return TypeUserDefined
	case a&attrUnknown != 0:
		return TypeUnknown
	case a&attrByte != 0:
		return TypeByte
	case a&attrUnused != 0:
		return TypeUnused
	case a&attrNormal != 0:
		return TypeNormal
	}
	return TypeUndefined
}

// TokenText returns the token's text as stored in the vocabulary ("▁the",
// "Ġthe", "<0x0A>", "<|im_end|>"), or "" for an id out of range.
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Score returns the SentencePiece score of a token.
func (t *Tokenizer) Score(id int32) float32 {
	if id < 0 || int(id) >= len(t.scores) {
		return 0
	}
	return t.scores[id]
}

// Lookup returns the id of the token with exactly this text.
func (t *Tokenizer) Lookup(text string) (int32, bool) {
	id, ok := t.toID[text]
	return id, ok
}
