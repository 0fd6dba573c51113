package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type merge struct{ rank, result int32 }

// bpeTables hold a byte-level BPE vocabulary's merges keyed by symbol ids.
// A symbol id is the token id for strings in the vocabulary, and an id past
// the vocabulary for the strings that merges name but the vocabulary lacks,
// so merging compares integers, not strings.
type bpeTables struct {
	nVocab  int32
	merges  map[uint64]merge
	byteSym [256]int32  // symbol of each input byte's mapped character, -1 if none
	byteMap [256]string // GPT-2's printable stand-in for each byte
	unmap   map[rune]byte
}

func mergeKey(l, r int32) uint64 { return uint64(uint32(l))<<32 | uint64(uint32(r)) }

// gpt2ByteMap returns GPT-2's bytes_to_unicode table: printable Latin-1 bytes
// stand for themselves, the others for U+0100 onwards in byte order.
func gpt2ByteMap() [256]rune {
	var m [256]rune
	n := rune(0)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = 256 + n
			n++
		}
	}
	return m
}

func newBPETables(toID map[string]int32, nVocab int, merges []string) (*bpeTables, error) {
	if len(merges) == 0 {
		return nil, fmt.Errorf("BPE vocabulary without merges")
	}
	b := &bpeTables{
		nVocab: int32(nVocab),
		merges: make(map[uint64]merge, len(merges)),
		unmap:  make(map[rune]byte, 256),
	}
	extra := map[string]int32{}
	sym := func(s string) int32 {
		if id, ok := toID[s]; ok {
			return id
		}
		if id, ok := extra[s]; ok {
			return id
		}
		id := int32(nVocab + len(extra))
		extra[s] = id
		return id
	}
	var buf []byte
	for i, m := range merges {
		// As llama.cpp: split at the first space after the first byte.
		k := -1
		if len(m) > 1 {
			if j := strings.IndexByte(m[1:], ' '); j >= 0 {
				k = j + 1
			}
		}
		if k < 0 {
			continue
		}
		left, right := m[:k], m[k+1:]
		key := mergeKey(sym(left), sym(right))
		if _, dup := b.merges[key]; dup {
			continue // the first rank wins
		}
		buf = append(append(buf[:0], left...), right...)
		// Look up before converting: most results are tokens, and indexing a
		// map with string(buf) does not allocate.
		res, ok := toID[string(buf)]
		if !ok {
			res = sym(string(buf))
		}
		b.merges[key] = merge{rank: int32(i), result: res}
	}
	bm := gpt2ByteMap()
	for c, r := range bm {
		s := string(r)
		b.byteMap[c] = s
		b.unmap[r] = byte(c)
		b.byteSym[c] = -1
		if id, ok := toID[s]; ok {
			b.byteSym[c] = id
		} else if id, ok := extra[s]; ok {
			b.byteSym[c] = id
		}
	}
	return b, nil
}

// decodeBPE maps a token's text back to the bytes it stands for. A character
// outside the byte map (not produced by GPT-2's mapping) is kept as UTF-8.
func (b *bpeTables) decode(dst []byte, text string) []byte {
	for _, r := range text {
		if c, ok := b.unmap[r]; ok {
			dst = append(dst, c)
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
