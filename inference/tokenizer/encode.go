package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// session holds the scratch buffers of one Encode call; sessions are pooled
// so that tokenizing allocates little beyond the result.
type session struct {
	frags, frags2 []fragment
	buf           []byte
	syms          []symbol
	heap          bigramHeap
	text          cptText
	offs          []int32
	segs, segs2   []int32
}

// fragment is a piece of the input: either raw text [start,end) or a special
// token matched in it.
type fragment struct {
	tok        int32 // NoToken for raw text
	start, end int
}

type symbol struct {
	prev, next int32
	start, n   int32
	id         int32 // BPE: symbol id (token id, extra id, or -1)
}

// bigram is a candidate merge of two adjacent symbols. Higher pri pops
// first, then the leftmost; SPM uses the token score, BPE minus the rank.
type bigram struct {
	pri         float32
	left, right int32
	size        int32
	id          int32
}

type bigramHeap []bigram

func (h bigramHeap) less(i, j int) bool {
	return h[i].pri > h[j].pri || (h[i].pri == h[j].pri && h[i].left < h[j].left)
}

func (h *bigramHeap) push(b bigram) {
	*h = append(*h, b)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *bigramHeap) pop() bigram {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r := l + 1; r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// Encode tokenizes text. addSpecial adds BOS/EOS (CLS/SEP for WordPiece) as
// the vocabulary asks; parseSpecial lets the text of control tokens
// ("<|im_start|>") in the input become those tokens. User-defined tokens are
// always matched as llama.cpp does; without parseSpecial the text of control
// tokens is tokenized like any other text.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	return t.AppendEncode(make([]int32, 0, len(text)/3+4), text, addSpecial, parseSpecial)
}

// AppendEncode is Encode appending to out.
func (t *Tokenizer) AppendEncode(out []int32, text string, addSpecial, parseSpecial bool) []int32 {
	s := t.sessions.Get().(*session)
	defer t.sessions.Put(s)
	frags := t.partition(s, text, parseSpecial)

	switch t.kind {
	case SPM:
		if addSpecial && t.addBOS && t.bos != NoToken {
			out = append(out, t.bos)
		}
		prevSpecial := true
		for _, f := range frags {
			if f.tok != NoToken {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			buf := s.buf[:0]
			if t.addSpacePrefix && prevSpecial {
				buf = append(buf, "▁"...)
			}
			for i := f.start; i < f.end; i++ {
				if c := text[i]; c == ' ' {
					buf = append(buf, "▁"...)
				} else {
					buf = append(buf, c)
				}
			}
			s.buf = buf
			out = t.spm(s, buf, out)
			prevSpecial = false
		}
		if addSpecial && t.addEOS && t.eos != NoToken {
			out = append(out, t.eos)
		}
	case BPE:
		if addSpecial && t.addBOS && t.bos != NoToken {
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.tok != NoToken {
				out = append(out, f.tok)
				continue
			}
			out = t.bpeText(s, text[f.start:f.end], out)
		}
		if addSpecial && t.addEOS && t.eos != NoToken {
			out = append(out, t.eos)
		}
	case WPM:
		if addSpecial {
			if t.cls != NoToken {
				out = append(out, t.cls)
			} else if t.bos != NoToken {
				out = append(out, t.bos)
			}
		}
		for _, f := range frags {
			if f.tok != NoToken {
				out = append(out, f.tok)
				continue
			}
			out = t.wpm(s, text[f.start:f.end], out)
		}
		if addSpecial {
			if t.sep != NoToken {
				out = append(out, t.sep)
			} else if t.eos != NoToken {
				out = append(out, t.eos)
			}
		}
	}
	return out
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// partition splits the input at the special tokens it contains, longest
// token first, as llama.cpp's tokenizer_st_partition does.
func (t *Tokenizer) partition(s *session, text string, parseSpecial bool) []fragment {
	frags := s.frags[:0]
	if len(text) == 0 {
		return frags
	}
	frags = append(frags, fragment{tok: NoToken, start: 0, end: len(text)})
	for _, id := range t.special {
		a := t.attrs[id]
		if !parseSpecial && a&(attrControl|attrUnknown) != 0 {
			continue
		}
		tok := t.tokens[id]
		if tok == "" || !strings.Contains(text, tok) {
			continue
		}
		next := s.frags2[:0]
		for _, f := range frags {
			if f.tok != NoToken {
				next = append(next, f)
				continue
			}
			off, end := f.start, f.end
			for off < end {
				k := strings.Index(text[off:end], tok)
				if k < 0 {
					break
				}
				m := off + k
				left := m
				if a&attrLstrip != 0 {
					for left > off && isCSpace(text[left-1]) {
						left--
					}
				}
				if left > off {
					next = append(next, fragment{tok: NoToken, start: off, end: left})
				}
				next = append(next, fragment{tok: id, start: m, end: m + len(tok)})
				off = m + len(tok)
				if a&attrRstrip != 0 {
					for off < end && isCSpace(text[off]) {
						off++
					}
				}
			}
			if off < end {
				next = append(next, fragment{tok: NoToken, start: off, end: end})
			}
		}
		s.frags2 = frags
		frags = next
	}
	s.frags = frags
	return frags
}

// utf8Len is the sequence length announced by a lead byte, as llama.cpp's
// unicode_len_utf8 computes it (continuation bytes count as 1).
func utf8Len(c byte) int32 {
	switch c >> 4 {
	case 12, 13:
		return 2
	case 14:
		return 3
	case 15:
		return 4
	}
	return 1
}

// spm tokenizes one escaped fragment with SentencePiece's bigram merging:
// repeatedly join the adjacent pair whose concatenation is the token with the
// highest score; characters left without a token become byte tokens.
func (t *Tokenizer) spm(s *session, text []byte, out []int32) []int32 {
	// The merge queue of a whole fragment is as long as the fragment and
	// slow to work through. When no token has ▁ after its first other
	// character, no merge can join a character to a following ▁, so each
	// "▁*word" is merged on its own with the same result.
	if !t.spmWordwise || !utf8.Valid(text) {
		return t.spmChunk(s, text, out)
	}
	const space = "▁"
	start := 0
	for i := 1; i+len(space) <= len(text); i++ {
		if string(text[i:i+len(space)]) == space && (i < len(space) || string(text[i-len(space):i]) != space) {
			out = t.spmChunk(s, text[start:i], out)
			start = i
		}
	}
	return t.spmChunk(s, text[start:], out)
}

func (t *Tokenizer) spmChunk(s *session, text []byte, out []int32) []int32 {
	if len(text) == 0 {
		return out
	}
	syms := s.syms[:0]
	for off := int32(0); off < int32(len(text)); {
		n := min(utf8Len(text[off]), int32(len(text))-off)
		idx := int32(len(syms))
		next := idx + 1
		if off+n == int32(len(text)) {
			next = -1
		}
		syms = append(syms, symbol{prev: idx - 1, next: next, start: off, n: n})
		off += n
	}
	h := s.heap[:0]
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		st, e := syms[l].start, syms[r].start+syms[r].n
		id, ok := t.toID[string(text[st:e])]
		if !ok {
			return
		}
		h.push(bigram{pri: t.scores[id], left: l, right: r, size: e - st})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for len(h) > 0 {
		b := h.pop()
		L, R := &syms[b.left], &syms[b.right]
		if L.n == 0 || R.n == 0 || L.n+R.n != b.size {
			continue
		}
		L.n += R.n
		R.n = 0
		L.next = R.next
		if R.next >= 0 {
			syms[R.next].prev = b.left
		}
		try(L.prev, b.left)
		try(b.left, L.next)
	}
	for i := int32(0); i != -1; i = syms[i].next {
		sym := syms[i]
		piece := text[sym.start : sym.start+sym.n]
		if id, ok := t.toID[string(piece)]; ok {
			out = append(out, id)
			continue
		}
		for _, c := range piece {
			if id := t.byteToken[c]; id != NoToken {
				out = append(out, id)
			}
		}
	}
	s.syms, s.heap = syms, h
	return out
}

// bpeText pre-tokenizes one fragment into words and merges each.
func (t *Tokenizer) bpeText(s *session, text string, out []int32) []int32 {
	if !utf8.ValidString(text) {
		// llama.cpp decodes each invalid byte as U+FFFD and tokenizes that.
		var b strings.Builder
		for i := 0; i < len(text); {
			r, n := utf8.DecodeRuneInString(text[i:])
			if r == utf8.RuneError && n == 1 {
				b.WriteString("\uFFFD")
			} else {
				b.WriteString(text[i : i+n])
			}
			i += n
		}
		text = b.String()
	}
	tx := &s.text
	tx.cpts, tx.flags = appendCodepoints(tx.cpts[:0], tx.flags[:0], text)
	offs := s.offs[:0]
	off := int32(0)
	for _, r := range tx.cpts {
		offs = append(offs, off)
		off += int32(utf8.RuneLen(r))
	}
	offs = append(offs, off)
	s.offs = offs

	segs := append(s.segs[:0], int32(len(tx.cpts)))
	for _, m := range t.pre.matchers {
		segs, s.segs2 = split(tx, m, segs, s.segs2[:0]), segs
	}
	s.segs = segs
	start := 0
	for _, n := range segs {
		end := start + int(n)
		out = t.bpeWord(s, text[offs[start]:offs[end]], out)
		start = end
	}
	return out
}

// bpeWord merges the bytes of one word by rank.
func (t *Tokenizer) bpeWord(s *session, word string, out []int32) []int32 {
	b := t.bpe
	if len(word) == 0 {
		return out
	}
	if t.pre.ignoreMerges {
		mapped := s.buf[:0]
		for i := 0; i < len(word); i++ {
			mapped = append(mapped, b.byteMap[word[i]]...)
		}
		s.buf = mapped
		if id, ok := t.toID[string(mapped)]; ok {
			return append(out, id)
		}
	}
	syms := s.syms[:0]
	for i := 0; i < len(word); i++ {
		next := int32(i + 1)
		if i+1 == len(word) {
			next = -1
		}
		syms = append(syms, symbol{prev: int32(i - 1), next: next, start: int32(i), n: 1, id: b.byteSym[word[i]]})
	}
	h := s.heap[:0]
	try := func(l, r int32) {
		if l < 0 || r < 0 || syms[l].id < 0 || syms[r].id < 0 {
			return
		}
		m, ok := b.merges[mergeKey(syms[l].id, syms[r].id)]
		if !ok {
			return
		}
		h.push(bigram{pri: -float32(m.rank), left: l, right: r, size: syms[l].n + syms[r].n, id: m.result})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for len(h) > 0 {
		bg := h.pop()
		L, R := &syms[bg.left], &syms[bg.right]
		if L.n == 0 || R.n == 0 || L.n+R.n != bg.size {
			continue
		}
		L.n += R.n
		L.id = bg.id
		R.n = 0
		L.next = R.next
		if R.next >= 0 {
			syms[R.next].prev = bg.left
		}
		try(L.prev, bg.left)
		try(bg.left, L.next)
	}
	for i := int32(0); i != -1; i = syms[i].next {
		sym := syms[i]
		if sym.id >= 0 && sym.id < b.nVocab {
			out = append(out, sym.id)
			continue
		}
		// No token for this piece: llama.cpp tries each byte of its mapped
		// text as a one-byte token and drops the rest.
		for k := sym.start; k < sym.start+sym.n; k++ {
			m := b.byteMap[word[k]]
			for j := 0; j < len(m); j++ {
				if id, ok := t.toID[m[j:j+1]]; ok {
					out = append(out, id)
				}
			}
		}
	}
	s.syms, s.heap = syms, h
	return out
}

// wpm tokenizes one fragment with WordPiece as llama.cpp does: the text is
// split into words at whitespace, punctuation, ASCII symbols and CJK
// ideographs, lower-cased with accents removed, and each word is covered by
// the longest tokens from its start ("▁word" marks a word start in the GGUF
// vocabulary); a word that cannot be covered becomes [UNK].
func (t *Tokenizer) wpm(s *session, text string, out []int32) []int32 {
	const prefix = "▁"
	word := append(s.buf[:0], prefix...)
	flush := func() {
		if len(word) > len(prefix) {
			out = t.wpmWord(word, out)
		}
		word = append(word[:0], prefix...)
	}
	for _, r := range text {
		r = nfdFirst(r)
		f := cptFlags(r)
		if f&flagWhitespace != 0 {
			flush()
			continue
		}
		if r == 0 || r == utf8.RuneError || f&flagControl != 0 {
			continue
		}
		lower := unicode.ToLower(r)
		if f&flagPunct != 0 || (r < 0x7F && f&flagSymbol != 0) || isChinese(r) {
			flush()
			word = utf8.AppendRune(word, lower)
			flush()
			continue
		}
		word = utf8.AppendRune(word, lower)
	}
	flush()
	s.buf = word
	return out
}

func (t *Tokenizer) wpmWord(word []byte, out []int32) []int32 {
	n := len(word)
	start := len(out)
	for i := 0; i < n; i++ {
		matched := false
		for j := min(n, i+t.maxTokenLen+1); j > i; j-- {
			if id, ok := t.toID[string(word[i:j])]; ok {
				out = append(out, id)
				matched = true
				i = j - 1
				break
			}
		}
		if !matched {
			out = out[:start]
			break
		}
	}
	if len(out) == start && t.unk != NoToken {
		out = append(out, t.unk)
	}
	return out
}

// nfdFirst is the first code point of r's canonical decomposition: llama.cpp
// keeps only that one, which strips accents.
func nfdFirst(r rune) rune {
	if r < 0xC0 {
		return r
	}
	if r >= 0xAC00 && r <= 0xD7A3 { // Hangul syllable: its leading jamo
		return 0x1100 + (r-0xAC00)/588
	}
	var buf [4]byte
	n := utf8.EncodeRune(buf[:], r)
	d := norm.NFD.Properties(buf[:n]).Decomposition()
	if len(d) == 0 {
		return r
	}
	first, _ := utf8.DecodeRune(d)
	return first
}

func isChinese(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) || // 0x2B820 in Unicode; Hugging Face has 0x2B920
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
