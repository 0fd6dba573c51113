package sample

import "strings"

// StopReason says why a generation ended.
type StopReason string

const (
	StopNone    StopReason = ""
	StopEOG     StopReason = "eog"     // the model produced an end-of-generation token
	StopLength  StopReason = "length"  // the token budget was used up
	StopString  StopReason = "stop"    // a stop string appeared in the text
	StopContext StopReason = "context" // the context window is full
)

// Stop tracks the stop conditions of one streamed generation. Text that may
// be the beginning of a stop string is held back until it is known not to
// be, so a stop string is never streamed to the client.
type Stop struct {
	Strings   []string // stop strings; the text before the first match is kept
	MaxTokens int      // token budget; 0 means no limit

	held string
	n    int
}

// Token records one generated token: its text (possibly "" while a UTF-8
// sequence is incomplete) and whether it is an end-of-generation token,
// whose text is never emitted. It returns the text that can be emitted now
// and, when the generation must stop, the reason.
func (s *Stop) Token(text string, eog bool) (emit string, reason StopReason) {
	s.n++
	if eog {
		emit, s.held = s.held, ""
		return emit, StopEOG
	}
	buf := s.held + text
	if i, ok := s.firstMatch(buf); ok {
		s.held = ""
		return buf[:i], StopString
	}
	keep := s.partialSuffix(buf)
	emit, s.held = buf[:len(buf)-keep], buf[len(buf)-keep:]
	if s.MaxTokens > 0 && s.n >= s.MaxTokens {
		emit, s.held = emit+s.held, ""
		return emit, StopLength
	}
	return emit, StopNone
}

// Flush returns the held-back text when the generation ends for a reason
// Token did not see (context full, cancellation).
func (s *Stop) Flush() string {
	h := s.held
	s.held = ""
	return h
}

// Count is the number of tokens recorded so far.
func (s *Stop) Count() int { return s.n }

func (s *Stop) firstMatch(buf string) (int, bool) {
	best, found := len(buf), false
	for _, st := range s.Strings {
		if st == "" {
			continue
		}
		if i := strings.Index(buf, st); i >= 0 && i < best {
			best, found = i, true
		}
	}
	return best, found
}

// partialSuffix is the length of the longest end of buf that begins some
// stop string.
func (s *Stop) partialSuffix(buf string) int {
	keep := 0
	for _, st := range s.Strings {
		for n := min(len(st)-1, len(buf)); n > keep; n-- {
			if strings.HasPrefix(st, buf[len(buf)-n:]) {
				keep = n
				break
			}
		}
	}
	return keep
}
