package server

import "math"

// JSON mode (OpenAI's response_format {"type":"json_object"}, Ollama's
// format "json"): the sampler may only pick tokens that keep the answer a
// prefix of a JSON object, and generation ends when the object closes.
// The check runs a token's bytes through an incremental JSON syntax
// checker (jsonState), a small value, so trying a token allocates nothing.
// The sampler's pick is checked first; only when it breaks the JSON is the
// whole vocabulary checked and the draw repeated (see runOnSlot).

const (
	jsonMaxDepth = 64
	// Whitespace between tokens is one space, or a newline and at most
	// jsonMaxIndent spaces or tabs (llama.cpp's JSON grammar says the
	// same): JSON allows any amount, and small models then pad forever.
	jsonMaxIndent = 20
)

type jsonMode uint8

const (
	jValue        jsonMode = iota // a value (after ':', ',' in an array, at the root)
	jValueOrClose                 // a value or ']' (after '[')
	jKeyOrClose                   // a key or '}' (after '{')
	jKey                          // a key (after ',' in an object)
	jColon                        // ':' after a key
	jCommaOrClose                 // ',' or the container's close, after a value
	jString                       // inside a string
	jEscape                       // after '\' in a string
	jHex                          // in the 4 hex digits of \u
	jLiteral                      // in true, false or null
	jNumSign                      // after '-': a digit
	jNumZero                      // after a leading 0
	jNumInt                       // in the integer digits
	jNumDot                       // after '.': a digit
	jNumFrac                      // in the fraction digits
	jNumE                         // after 'e': sign or digit
	jNumESign                     // after the exponent's sign: a digit
	jNumExp                       // in the exponent digits
	jDone                         // the root value is complete
)

// jsonState is where a JSON text is after the bytes fed to step. The root
// must be an object.
type jsonState struct {
	stack [jsonMaxDepth]byte // '{' or '[' of each open container
	depth int
	mode  jsonMode
	key   bool   // the string being read is an object key
	lit   string // rest of the literal being read
	hex   int    // hex digits left in \u
	blank int    // whitespace bytes in a row
	nl    bool   // the run of whitespace began with a newline
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// step feeds one byte and reports whether the text is still a prefix of a
// JSON object.
func (s *jsonState) step(b byte) bool {
	if isBlank(b) {
		switch s.mode {
		case jValue, jValueOrClose, jKeyOrClose, jKey, jColon, jCommaOrClose:
			return s.blankStep(b)
		case jNumZero, jNumInt, jNumFrac, jNumExp:
			s.endValue()
			return s.blankStep(b)
		case jDone:
			return false // the answer ends with the object
		}
	} else if s.mode != jString {
		s.blank = 0
	}
	switch s.mode {
	case jValue, jValueOrClose:
		if s.mode == jValueOrClose && b == ']' {
			return s.close(']')
		}
		if s.depth == 0 && b != '{' {
			return false
		}
		return s.startValue(b)
	case jKeyOrClose, jKey:
		switch {
		case b == '"':
			s.mode, s.key = jString, true
			return true
		case b == '}' && s.mode == jKeyOrClose:
			return s.close('}')
		}
		return false
	case jColon:
		if b == ':' {
			s.mode = jValue
			return true
		}
		return false
	case jCommaOrClose:
		switch b {
		case ',':
			if s.stack[s.depth-1] == '{' {
				s.mode = jKey
			} else {
				s.mode = jValue
			}
			return true
		case '}', ']':
			return s.close(b)
		}
		return false
	case jString:
		switch {
		case b == '"':
			if s.key {
				s.key = false
				s.mode = jColon
			} else {
				s.endValue()
			}
		case b == '\\':
			s.mode = jEscape
		case b < 0x20:
			return false // control characters must be escaped
		}
		return true
	case jEscape:
		switch b {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			s.mode = jString
		case 'u':
			s.mode, s.hex = jHex, 4
		default:
			return false
		}
		return true
	case jHex:
		if !isHex(b) {
			return false
		}
		if s.hex--; s.hex == 0 {
			s.mode = jString
		}
		return true
	case jLiteral:
		if b != s.lit[0] {
			return false
		}
		if s.lit = s.lit[1:]; s.lit == "" {
			s.endValue()
		}
		return true
	case jNumSign:
		return s.numDigit(b, jNumInt, b == '0')
	case jNumZero, jNumInt:
		switch {
		case b >= '0' && b <= '9' && s.mode == jNumInt:
			return true
		case b == '.':
			s.mode = jNumDot
			return true
		case b == 'e' || b == 'E':
			s.mode = jNumE
			return true
		}
		return s.endNumber(b)
	case jNumDot:
		return s.numDigit(b, jNumFrac, false)
	case jNumFrac:
		switch {
		case b >= '0' && b <= '9':
			return true
		case b == 'e' || b == 'E':
			s.mode = jNumE
			return true
		}
		return s.endNumber(b)
	case jNumE:
		if b == '+' || b == '-' {
			s.mode = jNumESign
			return true
		}
		return s.numDigit(b, jNumExp, false)
	case jNumESign:
		return s.numDigit(b, jNumExp, false)
	case jNumExp:
		if b >= '0' && b <= '9' {
			return true
		}
		return s.endNumber(b)
	}
	return false // jDone
}

// blankStep takes whitespace between tokens: none before the object, then
// a space, or a newline and an indent.
func (s *jsonState) blankStep(b byte) bool {
	switch {
	case s.depth == 0:
		return false
	case s.blank == 0 && (b == ' ' || b == '\n'):
		s.blank, s.nl = 1, b == '\n'
		return true
	case s.blank > 0 && s.nl && (b == ' ' || b == '\t') && s.blank <= jsonMaxIndent:
		s.blank++
		return true
	}
	return false
}

// startValue begins the value whose first byte is b.
func (s *jsonState) startValue(b byte) bool {
	switch {
	case b == '{' || b == '[':
		if s.depth == jsonMaxDepth {
			return false
		}
		s.stack[s.depth] = b
		s.depth++
		if b == '{' {
			s.mode = jKeyOrClose
		} else {
			s.mode = jValueOrClose
		}
	case b == '"':
		s.mode, s.key = jString, false
	case b == 't':
		s.mode, s.lit = jLiteral, "rue"
	case b == 'f':
		s.mode, s.lit = jLiteral, "alse"
	case b == 'n':
		s.mode, s.lit = jLiteral, "ull"
	case b == '-':
		s.mode = jNumSign
	case b == '0':
		s.mode = jNumZero
	case b >= '1' && b <= '9':
		s.mode = jNumInt
	default:
		return false
	}
	return true
}

// numDigit accepts a required digit and moves to next (jNumZero when a
// leading zero is read).
func (s *jsonState) numDigit(b byte, next jsonMode, zero bool) bool {
	if b < '0' || b > '9' {
		return false
	}
	s.mode = next
	if zero {
		s.mode = jNumZero
	}
	return true
}

// endNumber ends a number at b, which belongs to what follows.
func (s *jsonState) endNumber(b byte) bool {
	s.endValue()
	return s.step(b)
}

func (s *jsonState) endValue() {
	if s.depth == 0 {
		s.mode = jDone
		return
	}
	s.mode = jCommaOrClose
}

func (s *jsonState) close(b byte) bool {
	open := byte('{')
	if b == ']' {
		open = '['
	}
	if s.depth == 0 || s.stack[s.depth-1] != open {
		return false
	}
	s.depth--
	s.endValue()
	return true
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// accepts reports whether text may follow the current state.
func (s *jsonState) accepts(text []byte) bool {
	t := *s
	for _, b := range text {
		if !t.step(b) {
			return false
		}
	}
	return true
}

// feed advances the state by text, which accepts approved.
func (s *jsonState) feed(text []byte) {
	for _, b := range text {
		s.step(b)
	}
}

func (s *jsonState) complete() bool { return s.mode == jDone }

// jsonConstraint keeps a generation's tokens within JSON.
type jsonConstraint struct {
	st  jsonState
	raw []float32 // the step's logits before sampling changed them
}

// allows reports whether token id may come next.
func (c *jsonConstraint) allows(eng Engine, id int32) bool {
	switch {
	case eng.IsEOG(id):
		return c.st.complete()
	case eng.IsSpecial(id):
		return false
	}
	b := eng.TokenBytes(id)
	return len(b) > 0 && c.st.accepts(b)
}

// mask rules out (sets to -Inf) every token that would break the JSON:
// special tokens, tokens without text, and end-of-generation before the
// object is complete. It reports whether any token is left.
func (c *jsonConstraint) mask(eng Engine, logits []float32) bool {
	left := 0
	inf := float32(math.Inf(-1))
	for i := range logits {
		if c.allows(eng, int32(i)) {
			left++
		} else {
			logits[i] = inf
		}
	}
	return left > 0
}
