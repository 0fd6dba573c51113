package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// Code point flags, as llama.cpp's unicode tables define them: one general
// category class per code point, plus the White_Space property. A code point
// that is in range always has at least one flag (flagUndefined for Cn), so a
// zero value means "past the end of the segment".
const (
	flagNumber uint16 = 1 << iota
	flagLetter
	flagSeparator
	flagMark
	flagPunct
	flagSymbol
	flagControl
	flagUndefined
	flagWhitespace
)

// bmpFlags caches the flags of the Basic Multilingual Plane; the tables of the
// unicode package are range lists and too slow to search for every code point.
var bmpFlags = sync.OnceValue(func() *[0x10000]uint16 {
	var t [0x10000]uint16
	for r := range rune(0x10000) {
		t[r] = computeFlags(r)
	}
	return &t
})

func computeFlags(r rune) uint16 {
	if r < 0 || r > unicode.MaxRune {
		return 0
	}
	var f uint16
	switch {
	case unicode.IsLetter(r):
		f = flagLetter
	case unicode.IsNumber(r):
		f = flagNumber
	case unicode.IsPunct(r):
		f = flagPunct
	case unicode.IsMark(r):
		f = flagMark
	case unicode.IsSymbol(r):
		f = flagSymbol
	case unicode.Is(unicode.Z, r):
		f = flagSeparator
	case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r):
		f = flagControl
	default:
		f = flagUndefined
	}
	// llama.cpp's whitespace set is exactly Unicode's White_Space property.
	if unicode.Is(unicode.White_Space, r) {
		f |= flagWhitespace
	}
	return f
}

// cptFlags returns the flags of one code point.
func cptFlags(r rune) uint16 {
	if r >= 0 && r < 0x10000 {
		return bmpFlags()[r]
	}
	return computeFlags(r)
}

func isSpaceRune(r rune) bool { return cptFlags(r)&flagWhitespace != 0 }

// appendCodepoints decodes text into code points and their flags the way
// llama.cpp's unicode_cpts_from_utf8 does: every byte that does not start a
// valid sequence becomes one U+FFFD.
func appendCodepoints(cpts []rune, flags []uint16, text string) ([]rune, []uint16) {
	t := bmpFlags()
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			cpts = append(cpts, rune(c))
			flags = append(flags, t[c])
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		cpts = append(cpts, r)
		flags = append(flags, cptFlags(r))
		i += n
	}
	return cpts, flags
}
