package tokenizer

import "fmt"

// The byte-level BPE vocabularies split text into words before merging, with
// regular expressions that use look-ahead and Unicode classes (Go's regexp
// has neither). llama.cpp applies a list of expressions in turn: each one
// splits every piece left by the previous one into its matches and the text
// between them. The expressions are hand-written here as matchers that give
// the length of the match starting at a position (0 for none), following
// ECMAScript's backtracking semantics and llama.cpp's own fast paths for the
// GPT-2 and Llama 3 expressions.

// cptText is the text being split: code points with their flags.
type cptText struct {
	cpts  []rune
	flags []uint16
}

// matcher returns the length of the match at i within the segment ending at
// end, or 0.
type matcher func(t *cptText, i, end int) int

// split refines the segment lengths segs by m, appending to out.
func split(t *cptText, m matcher, segs, out []int32) []int32 {
	start := 0
	for _, n := range segs {
		end := start + int(n)
		prev := start
		for i := start; i < end; {
			if l := m(t, i, end); l > 0 {
				if i > prev {
					out = append(out, int32(i-prev))
				}
				out = append(out, int32(l))
				i += l
				prev = i
			} else {
				i++
			}
		}
		if prev < end {
			out = append(out, int32(end-prev))
		}
		start = end
	}
	return out
}

func (t *cptText) flag(i, end int) uint16 {
	if i < end {
		return t.flags[i]
	}
	return 0
}

func (t *cptText) cpt(i, end int) rune {
	if i < end {
		return t.cpts[i]
	}
	return -1
}

// contraction matches 's 't 're 've 'm 'll 'd at i; fold accepts upper case
// letters too (the (?i:...) and '[sS] forms).
func contraction(t *cptText, i, end int, fold bool) int {
	if i+1 >= end || t.cpts[i] != '\'' {
		return 0
	}
	lower := func(r rune) rune {
		if fold && r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	c1 := lower(t.cpts[i+1])
	if c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd' {
		return 2
	}
	if i+2 < end {
		c2 := lower(t.cpts[i+2])
		if (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l') {
			return 3
		}
	}
	return 0
}

// whitespaceTail handles \s+(?!\S)|\s+ at i: a run of whitespace followed by
// a non-space keeps its last space for the next word.
func whitespaceTail(t *cptText, i, end int) int {
	n := 0
	for t.flag(i+n, end)&flagWhitespace != 0 {
		n++
	}
	if n > 1 && i+n < end {
		return n - 1
	}
	return n
}

// matchGPT2 is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// with llama.cpp's trailing \s+ for what the expression leaves.
func matchGPT2(t *cptText, i, end int) int {
	if n := contraction(t, i, end, false); n > 0 {
		return n
	}
	c := t.cpts[i]
	f2 := t.flags[i]
	j := i
	if c == ' ' {
		f2 = t.flag(i+1, end)
		j = i + 1
	}
	switch {
	case f2&flagLetter != 0:
		for t.flag(j, end)&flagLetter != 0 {
			j++
		}
		return j - i
	case f2&flagNumber != 0:
		for t.flag(j, end)&flagNumber != 0 {
			j++
		}
		return j - i
	case f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f2 != 0:
		for f := t.flag(j, end); f&(flagWhitespace|flagLetter|flagNumber) == 0 && f != 0; f = t.flag(j, end) {
			j++
		}
		return j - i
	}
	if n := whitespaceTail(t, i, end); n > 0 {
		return n
	}
	return 1
}

// matchLlama3 returns the matcher of
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// where D is maxDigits (3 for Llama 3, 1 for Qwen2).
func matchLlama3(maxDigits int) matcher {
	return func(t *cptText, i, end int) int {
		if n := contraction(t, i, end, true); n > 0 {
			return n
		}
		c := t.cpts[i]
		f := t.flags[i]
		if c != '\r' && c != '\n' && f&flagNumber == 0 {
			if f&flagLetter != 0 || t.flag(i+1, end)&flagLetter != 0 {
				j := i + 1
				for t.flag(j, end)&flagLetter != 0 {
					j++
				}
				return j - i
			}
		}
		if f&flagNumber != 0 {
			j := i
			for j-i < maxDigits && t.flag(j, end)&flagNumber != 0 {
				j++
			}
			return j - i
		}
		return symbolsOrSpace(t, i, end, false)
	}
}

// matchTekken is Mistral's Tekken expression as llama.cpp adapts it:
// [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// "Upper" letters are those not in a-z and "lower" ones those not in A-Z, so
// a non-ASCII letter is both.
func matchTekken(t *cptText, i, end int) int { return matchCased(t, i, end, 1, false) }

// matchGPT4o is the GPT-4o expression (Phi-4-mini) as llama.cpp adapts it:
// Tekken's letter alternatives, each followed by an optional contraction
// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?, and \p{N}{1,3}.
func matchGPT4o(t *cptText, i, end int) int { return matchCased(t, i, end, 3, true) }

func matchCased(t *cptText, i, end, maxDigits int, suffix bool) int {
	upper := func(k int) bool { return t.flag(k, end)&flagLetter != 0 && !(t.cpts[k] >= 'a' && t.cpts[k] <= 'z') }
	lower := func(k int) bool { return t.flag(k, end)&flagLetter != 0 && !(t.cpts[k] >= 'A' && t.cpts[k] <= 'Z') }
	letters := func(j int) int { // the letter alternatives from j, 0 if none
		k := j
		for upper(k) {
			k++
		}
		if lower(k) { // U*W+ (and U+W*) take the whole run
			for lower(k) {
				k++
			}
			return k - j
		}
		// U*W+ backtracks to the last letter of the upper run that is
		// also lower (a non-ASCII one); failing that U+ takes the run.
		for b := k - 1; b >= j; b-- {
			if lower(b) {
				return b + 1 - j
			}
		}
		return k - j
	}
	withSuffix := func(n int) int {
		if suffix {
			n += contraction(t, i+n, end, true)
		}
		return n
	}
	c, f := t.cpts[i], t.flags[i]
	if c != '\r' && c != '\n' && f&(flagLetter|flagNumber) == 0 && i+1 < end {
		if n := letters(i + 1); n > 0 {
			return withSuffix(n + 1)
		}
	}
	if n := letters(i); n > 0 {
		return withSuffix(n)
	}
	if f&flagNumber != 0 {
		j := i
		for j-i < maxDigits && t.flag(j, end)&flagNumber != 0 {
			j++
		}
		return j - i
	}
	return symbolsOrSpace(t, i, end, true)
}

// symbolsOrSpace matches the alternatives that end the Llama 3 family of
// expressions at i: ` ?[^\s\p{L}\p{N}]+[\r\n]*` (Tekken's also takes '/'
// in the trailing run, when slash is set), then `\s*[\r\n]+|\s+(?!\S)|\s+`,
// and a lone character when nothing matches.
func symbolsOrSpace(t *cptText, i, end int, slash bool) int {
	f2, j := t.flags[i], i
	if t.cpts[i] == ' ' {
		f2, j = t.flag(i+1, end), i+1
	}
	if f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f2 != 0 {
		for g := t.flag(j, end); g&(flagWhitespace|flagLetter|flagNumber) == 0 && g != 0; g = t.flag(j, end) {
			j++
		}
		for c := t.cpt(j, end); c == '\r' || c == '\n' || slash && c == '/'; c = t.cpt(j, end) {
			j++
		}
		return j - i
	}
	n, lastNL := 0, 0
	for t.flag(i+n, end)&flagWhitespace != 0 {
		if c := t.cpts[i+n]; c == '\r' || c == '\n' {
			lastNL = n + 1
		}
		n++
	}
	if lastNL > 0 {
		return lastNL
	}
	if n > 1 && i+n < end {
		return n - 1
	}
	if n > 0 {
		return n
	}
	return 1
}

// classRun matches X+ for the class pred.
func classRun(pred func(r rune, f uint16) bool) matcher {
	return func(t *cptText, i, end int) int {
		j := i
		for j < end && pred(t.cpts[j], t.flags[j]) {
			j++
		}
		return j - i
	}
}

// classOne matches a single X.
func classOne(pred func(r rune, f uint16) bool) matcher {
	return func(t *cptText, i, end int) int {
		if pred(t.cpts[i], t.flags[i]) {
			return 1
		}
		return 0
	}
}

// optSpaceRun matches \s?X+ (or ' '?X+ when onlySpace is set).
func optSpaceRun(onlySpace bool, pred func(r rune, f uint16) bool) matcher {
	run := classRun(pred)
	return func(t *cptText, i, end int) int {
		lead := t.flags[i]&flagWhitespace != 0
		if onlySpace {
			lead = t.cpts[i] == ' '
		}
		if lead && i+1 < end {
			if n := run(t, i+1, end); n > 0 {
				return n + 1
			}
		}
		return run(t, i, end)
	}
}

// trailingSpace matches \s+$.
func trailingSpace(t *cptText, i, end int) int {
	j := i
	for j < end && t.flags[j]&flagWhitespace != 0 {
		j++
	}
	if j == end {
		return j - i
	}
	return 0
}

// threeDigits matches [0-9][0-9][0-9].
func threeDigits(t *cptText, i, end int) int {
	if i+3 <= end && isDigit(t.cpts[i]) && isDigit(t.cpts[i+1]) && isDigit(t.cpts[i+2]) {
		return 3
	}
	return 0
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func isLetter(_ rune, f uint16) bool { return f&flagLetter != 0 }
func isNumber(_ rune, f uint16) bool { return f&flagNumber != 0 }
func isPunct(_ rune, f uint16) bool  { return f&flagPunct != 0 }
func isCRLF(r rune, _ uint16) bool   { return r == '\r' || r == '\n' }

func inRanges(r rune, ranges []rune) bool {
	for k := 0; k+1 < len(ranges); k += 2 {
		if r >= ranges[k] && r <= ranges[k+1] {
			return true
		}
	}
	return false
}

// Expressions without \p{..} classes run in llama.cpp on wide strings in
// which non-ASCII whitespace was replaced by U+000B, so such code points never
// match a literal range; notSpace guards the range classes below.
func notSpace(r rune, f uint16) bool { return r < 0x80 || f&flagWhitespace == 0 }

// [\p{P}\$\+<=>\^~\|]+ (default) and the same with ` (falcon).
func punctRun(extra string) matcher {
	return classRun(func(r rune, f uint16) bool {
		if f&flagPunct != 0 {
			return true
		}
		for _, e := range extra {
			if r == e {
				return true
			}
		}
		return false
	})
}

// The letter ranges of DeepSeek LLM's second expression.
// (written as code points: several of its characters have canonical
// equivalents that an editor may silently substitute).
var deepseekLetters = []rune{
	0x0041, 0x005A, 0x0061, 0x007A, 0x00B5, 0x00B5, 0x00C0, 0x00D6, 0x00D8, 0x00F6, 0x00F8, 0x01BA,
	0x01BC, 0x01BF, 0x01C4, 0x0293, 0x0295, 0x02AF, 0x0370, 0x0373, 0x0376, 0x0377, 0x037B, 0x037D,
	0x037F, 0x037F, 0x0386, 0x0386, 0x0388, 0x038A, 0x038C, 0x038C, 0x038E, 0x03A1, 0x03A3, 0x03F5,
	0x03F7, 0x0481, 0x048A, 0x052F, 0x0531, 0x0556, 0x10A0, 0x10C5, 0x13A0, 0x13F5, 0x13F8, 0x13FD,
	0x1C90, 0x1CBA, 0x1CBD, 0x1CBF, 0x1D00, 0x1D2B, 0x1D6B, 0x1D77, 0x1D79, 0x1D9A, 0x1E00, 0x1F15,
	0x1F18, 0x1F1D, 0x1F20, 0x1F45, 0x1F48, 0x1F4D, 0x1F50, 0x1F57, 0x1F59, 0x1F59, 0x1F5B, 0x1F5B,
	0x1F5D, 0x1F5D, 0x1F5F, 0x1F7D, 0x1F80, 0x1FB4, 0x1FB6, 0x1FBC, 0x1FBE, 0x1FBE, 0x1FC2, 0x1FC4,
	0x1FC6, 0x1FCC, 0x1FD0, 0x1FD3, 0x1FD6, 0x1FDB, 0x1FE0, 0x1FEC, 0x1FF2, 0x1FF4, 0x1FF6, 0x1FFC,
	0x2102, 0x2102, 0x2107, 0x2107, 0x210A, 0x2113, 0x2115, 0x2115, 0x2119, 0x211D, 0x2124, 0x2124,
	0x2126, 0x2126, 0x2128, 0x2128, 0x212A, 0x212D, 0x212F, 0x2134, 0x2139, 0x2139, 0x213C, 0x213F,
	0x2145, 0x2149, 0x214E, 0x214E, 0x2183, 0x2184, 0x2C00, 0x2C7B, 0x2C7E, 0x2CE4, 0x2CEB, 0x2CEE,
	0x2CF2, 0x2CF3, 0xA640, 0xA66D, 0xA680, 0xA69B, 0xA722, 0xA76F, 0xA771, 0xA787, 0xA78B, 0xA78E,
	0xAB70, 0xABBF, 0xFB00, 0xFB06, 0xFB13, 0xFB17, 0xFF21, 0xFF3A, 0xFF41, 0xFF5A, 0x10400, 0x1044F,
	0x104B0, 0x104D3, 0x104D8, 0x104FB, 0x10C80, 0x10CB2, 0x10CC0, 0x10CF2, 0x118A0, 0x118DF, 0x1E900, 0x1E943,
}

// DeepSeek LLM's punctuation: [!-/:-~！-／：-～‘-‟　-。].
var deepseekPunct = []rune{0x21, 0x2F, 0x3A, 0x7E, 0xFF01, 0xFF0F, 0xFF1A, 0xFF5E, 0x2018, 0x201F, 0x3000, 0x3002}

// [一-龥ࠀ-一가-퟿] of both DeepSeek vocabularies.
var deepseekCJK = []rune{0x4E00, 0x9FA5, 0x0800, 0x4E00, 0xAC00, 0xD7FF}

func rangeClass(ranges []rune) func(r rune, f uint16) bool {
	return func(r rune, f uint16) bool { return notSpace(r, f) && inRanges(r, ranges) }
}

// BLOOM's [^(\s|.,!?…。，、।۔،)]: anything but whitespace and these.
func bloomWord(r rune, f uint16) bool {
	if f&flagWhitespace != 0 {
		return false
	}
	switch r {
	case '(', '|', '.', ',', '!', '?', '…', '。', '，', '、', '।', '۔', '،', ')':
		return false
	}
	return true
}

// preTokenizer describes how a byte-level BPE vocabulary splits its input,
// after tokenizer.ggml.pre.
type preTokenizer struct {
	name         string
	matchers     []matcher
	ignoreMerges bool // a word that is a token is taken whole (Llama 3)
	addBOS       bool // llama.cpp's default for add_bos_token
	cleanSpaces  bool // detokenizer removes spaces before punctuation
	noBOS        bool // the vocabulary has no BOS token
}

func newPreTokenizer(pre string) (*preTokenizer, error) {
	gpt2 := []matcher{matchGPT2}
	p := &preTokenizer{name: pre, cleanSpaces: true}
	switch pre {
	case "", "default":
		p.matchers = []matcher{punctRun("$+<=>^~|"), matchGPT2, classRun(isNumber), threeDigits}
	case "llama3", "llama-v3", "llama-bpe", "falcon3":
		p.matchers = []matcher{matchLlama3(3)}
		p.ignoreMerges, p.addBOS = true, true
	case "dbrx", "smaug-bpe":
		p.matchers = []matcher{matchLlama3(3)}
	case "chatglm-bpe":
		p.matchers = []matcher{matchLlama3(3)}
		p.noBOS = true
	case "qwen2", "deepseek-r1-qwen", "megrez":
		p.matchers = []matcher{matchLlama3(1)}
		p.cleanSpaces = false
	case "stablelm2":
		p.matchers = []matcher{matchLlama3(1)}
	case "deepseek-llm":
		p.matchers = []matcher{
			classOne(isCRLF),
			optSpaceRun(false, rangeClass(deepseekLetters)),
			optSpaceRun(false, rangeClass(deepseekPunct)),
			trailingSpace,
			classRun(rangeClass(deepseekCJK)),
			classRun(isNumber),
		}
		p.cleanSpaces = false
	case "deepseek-coder":
		p.matchers = []matcher{
			classOne(isCRLF),
			optSpaceRun(false, isLetter),
			optSpaceRun(false, isPunct),
			classRun(rangeClass(deepseekCJK)),
			classOne(isNumber),
		}
		p.cleanSpaces = false
	case "falcon":
		p.matchers = []matcher{punctRun("$+<=>^~|`"), matchGPT2, threeDigits}
	case "starcoder", "refact", "codeshell", "exaone", "minerva-7b":
		p.matchers = []matcher{classOne(isNumber), matchGPT2}
	case "command-r", "smollm":
		p.matchers = []matcher{classOne(isNumber), matchGPT2}
		p.cleanSpaces = false
	case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
		"jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais":
		p.matchers = gpt2
	case "tekken":
		p.matchers = []matcher{matchTekken}
		p.ignoreMerges, p.addBOS, p.cleanSpaces = true, true, false
	case "gpt-4o":
		p.matchers = []matcher{matchGPT4o}
		p.cleanSpaces = false
	case "poro-chat", "bloom", "gpt3-finnish":
		p.matchers = []matcher{optSpaceRun(true, bloomWord)}
		p.cleanSpaces = pre != "poro-chat"
	case "viking":
		p.matchers = []matcher{optSpaceRun(true, bloomWord), classOne(isNumber)}
		p.cleanSpaces = false
	default:
		return nil, fmt.Errorf("unsupported pre-tokenizer %q", pre)
	}
	return p, nil
}
