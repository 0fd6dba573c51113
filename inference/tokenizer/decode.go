package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// buildPieces computes the bytes of every token once, the way llama.cpp's
// token_to_piece renders it with special=true: control, unknown and
// user-defined tokens as their text, byte tokens as their byte, normal
// tokens with ▁ as space (SPM, WordPiece) or through the byte map (BPE).
func (t *Tokenizer) buildPieces() {
	t.pieces = make([][]byte, len(t.tokens))
	var all []byte
	ends := make([]int, len(t.tokens))
	for id, text := range t.tokens {
		a := t.attrs[id]
		switch {
		case a&(attrControl|attrUnknown|attrUserDefined) != 0:
			all = append(all, text...)
		case a&attrNormal != 0:
			if t.kind == BPE {
				all = t.bpe.decode(all, text)
			} else {
				all = append(all, strings.ReplaceAll(text, "▁", " ")...)
			}
		case a&attrByte != 0 && t.kind != BPE:
			if b, ok := parseByteToken(text); ok {
				all = append(all, b)
			}
		}
		ends[id] = len(all)
	}
	start := 0
	for id, end := range ends {
		t.pieces[id] = all[start:end:end]
		start = end
	}
}

// parseByteToken reads "<0xNN>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(s[3:5], 16, 8)
	return byte(v), err == nil
}

// Piece returns the bytes that token id contributes to the text (a control
// token's own text, such as "<|im_end|>", included). The slice is shared:
// do not modify it. Pieces of multi-byte characters can be partial UTF-8.
func (t *Tokenizer) Piece(id int32) []byte {
	if id < 0 || int(id) >= len(t.pieces) {
		return nil
	}
	return t.pieces[id]
}

// piece is the bytes of id in text output: control and unknown tokens render
// nothing unless special is set.
func (t *Tokenizer) piece(id int32, special bool) []byte {
	if id < 0 || int(id) >= len(t.pieces) {
		return nil
	}
	if !special && t.attrs[id]&(attrControl|attrUnknown) != 0 {
		return nil
	}
	return t.pieces[id]
}

// DecodeOptions control how ids become text.
type DecodeOptions struct {
	// Special renders control tokens as their text (<|im_end|>); otherwise
	// they render nothing.
	Special bool
	// StartOfText says the ids begin the text: for SentencePiece
	// vocabularies that prefix a space when encoding (and for WordPiece,
	// whose words all start with one), the first space of the first token
	// that renders something is dropped again.
	StartOfText bool
}

// Decode returns the text of ids as the start of a text: control tokens are
// left out and the SentencePiece prefix space is removed, so that
// Decode(Encode(s, false, false)) == s whenever the vocabulary can represent
// s. The result can hold invalid UTF-8 when ids end inside a character; use
// a Decoder for text that must be valid.
func (t *Tokenizer) Decode(ids []int32) string {
	return string(t.AppendDecode(nil, ids, DecodeOptions{StartOfText: true}))
}

// AppendDecode appends the bytes of ids to dst.
func (t *Tokenizer) AppendDecode(dst []byte, ids []int32, opts DecodeOptions) []byte {
	strip := opts.StartOfText && t.stripsFirstSpace()
	for _, id := range ids {
		p := t.piece(id, opts.Special)
		if strip && len(p) > 0 {
			if p[0] == ' ' {
				p = p[1:]
			}
			strip = false
		}
		dst = append(dst, p...)
	}
	return dst
}

// stripsFirstSpace reports whether the first token of a text carries a
// space that encoding added: SentencePiece's prefix space, or the phantom
// space that marks every WordPiece word start.
func (t *Tokenizer) stripsFirstSpace() bool {
	return (t.kind == SPM && t.addSpacePrefix) || t.kind == WPM
}

// Detokenize is llama.cpp's llama_detokenize: removeSpecial drops a leading
// BOS and trailing EOS that the vocabulary adds, unparseSpecial renders
// control tokens, the prefix space of the first token is removed for
// SentencePiece, and vocabularies that ask for it get llama.cpp's
// clean-up of spaces before punctuation and contractions.
func (t *Tokenizer) Detokenize(ids []int32, removeSpecial, unparseSpecial bool) string {
	removeSpace := t.kind == SPM && t.addSpacePrefix
	if removeSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if removeSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var text []byte
	for _, id := range ids {
		p := t.piece(id, unparseSpecial)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		text = append(text, p...)
	}
	if t.cleanSpaces {
		text = cleanSpaces(text)
	}
	return string(text)
}

// cleanSpaces is llama.cpp's three passes: " ?" " !" " ." " ," lose their
// space, " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose their space.
func cleanSpaces(text []byte) []byte {
	out := text[:0:0]
	for i, x := range text {
		if i > 0 && text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			out = out[:len(out)-1]
		}
		out = append(out, x)
	}
	text = out
	out = text[:0:0]
	for i := 0; i < len(text); i++ {
		x := text[i]
		if i > 0 && x == '\'' && i+1 < len(text) && text[i-1] == ' ' && text[i+1] == ' ' {
			out = out[:len(out)-1]
			out = append(out, x)
			i++
			continue
		}
		out = append(out, x)
	}
	text = out
	out = text[:0:0]
	for i, x := range text {
		if i > 0 && text[i-1] == ' ' && x == '\'' && i+1 < len(text) {
			x1 := text[i+1]
			switch {
			case x1 == 's' || x1 == 'm':
				out = out[:len(out)-1]
			case i+2 < len(text):
				x2 := text[i+2]
				if (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e') {
					out = out[:len(out)-1]
				}
			}
		}
		out = append(out, x)
	}
	return out
}

// Decoder turns a stream of ids into text without ever splitting a UTF-8
// character: the bytes of a character cut across tokens are held back until
// the token that completes it arrives. Bytes that can never form a valid
// character come out as U+FFFD.
type Decoder struct {
	t       *Tokenizer
	opts    DecodeOptions
	pending []byte
	out     []byte
}

// NewDecoder starts a stream. With opts.StartOfText the SentencePiece prefix
// space of the first token is removed as in Decode; leave it unset when the
// ids continue a prompt.
func (t *Tokenizer) NewDecoder(opts DecodeOptions) *Decoder {
	return &Decoder{t: t, opts: opts}
}

// Add feeds one id and returns the text it completes (possibly "").
func (d *Decoder) Add(id int32) string {
	p := d.t.piece(id, d.opts.Special)
	if d.opts.StartOfText && len(p) > 0 {
		if d.t.stripsFirstSpace() && p[0] == ' ' {
			p = p[1:]
		}
		d.opts.StartOfText = false
	}
	d.pending = append(d.pending, p...)
	out := d.out[:0]
	rest := d.pending
	for len(rest) > 0 {
		if !utf8.FullRune(rest) {
			break // the start of a character that later bytes may complete
		}
		r, n := utf8.DecodeRune(rest)
		if r == utf8.RuneError && n == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, rest[:n]...)
		}
		rest = rest[n:]
	}
	d.pending = append(d.pending[:0], rest...)
	d.out = out
	return string(out)
}

// Flush ends the stream: a character left incomplete becomes U+FFFD.
func (d *Decoder) Flush() string {
	if len(d.pending) == 0 {
		return ""
	}
	d.pending = d.pending[:0]
	return "\uFFFD"
}

// Pending reports how many bytes are held back.
func (d *Decoder) Pending() int { return len(d.pending) }
