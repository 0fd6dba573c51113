// Package sample turns a model's logits into the next token: logit bias,
// repetition/presence/frequency penalties, top-k, top-p, min-p, temperature
// and a seeded random draw, in the order llama.cpp applies them. It also
// holds the log-softmax and top-K helpers used to score and explain text,
// and the stop conditions of a generation (end-of-generation tokens, stop
// strings, a token budget).
package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Params are the sampling settings of one generation. The zero value means
// greedy decoding with no penalties.
type Params struct {
	// Temperature divides the logits before the draw. 0 (or less) picks the
	// most likely token (greedy) after bias and penalties.
	Temperature float32
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// adds up to at least TopP; 0 or 1 keeps all.
	TopP float32
	// MinP drops tokens whose probability is below MinP times that of the
	// most likely token; 0 keeps all.
	MinP float32

	// RepeatPenalty divides positive logits (and multiplies negative ones) of
	// tokens seen in the last RepeatLastN tokens; 1 or 0 disables it.
	RepeatPenalty float32
	// PresencePenalty is subtracted once from the logit of every token seen
	// in the window; FrequencyPenalty is subtracted once per occurrence.
	PresencePenalty  float32
	FrequencyPenalty float32
	// RepeatLastN is the window of last tokens the penalties look at;
	// 0 means 64 (llama.cpp's default), -1 the whole history.
	RepeatLastN int

	// LogitBias is added to the logits of the given token ids.
	LogitBias map[int32]float32

	// Seed makes the random draws reproducible.
	Seed uint64
}

// Validate reports settings that make no sense.
func (p Params) Validate() error {
	switch {
	case p.Temperature < 0:
		return fmt.Errorf("temperature %g is negative", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("top-k %d is negative", p.TopK)
	case p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("top-p %g is outside [0, 1]", p.TopP)
	case p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("min-p %g is outside [0, 1]", p.MinP)
	case p.RepeatPenalty < 0:
		return fmt.Errorf("repeat penalty %g is negative", p.RepeatPenalty)
	case p.RepeatLastN < -1:
		return fmt.Errorf("repeat window %d is invalid (-1 means the whole history)", p.RepeatLastN)
	}
	return nil
}

// Candidate is a token with a score: a logit, a probability or a log
// probability depending on where it comes from.
type Candidate struct {
	ID    int32
	Score float32
}

// Sampler draws tokens with fixed Params. Its buffers are reused between
// calls, so Sample does not allocate after the first call. It is not safe
// for concurrent use.
type Sampler struct {
	p      Params
	rng    *rand.Rand
	cands  []Candidate
	w      []float64 // the draw's weights, so that each exp is computed once
	counts map[int32]int
}

// New returns a sampler for p; its random source is PCG seeded with p.Seed.
func New(p Params) *Sampler {
	return &Sampler{
		p:      p,
		rng:    rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)),
		counts: make(map[int32]int),
	}
}

// Params returns the sampler's settings.
func (s *Sampler) Params() Params { return s.p }

// Sample picks the next token from logits, given the tokens so far
// (prompt and generated) for the penalties. logits is modified in place by
// the bias and the penalties.
func (s *Sampler) Sample(logits []float32, history []int32) int32 {
	s.applyBias(logits)
	s.applyPenalties(logits, history)
	if s.p.Temperature <= 0 {
		return Greedy(logits)
	}

	c := s.cands[:0]
	for i, l := range logits {
		if !math.IsInf(float64(l), -1) {
			c = append(c, Candidate{ID: int32(i), Score: l})
		}
	}
	s.cands = c
	if len(c) == 0 {
		return Greedy(logits)
	}
	// Sorting a whole vocabulary of 100k+ tokens for every token would cost
	// more than the draw: the filters select what they keep instead, and
	// only the survivors are sorted. Top-p and min-p look at the
	// distribution at temperature 1, as in llama.cpp's default chain, where
	// the temperature comes last.
	sorted := false
	if k := s.p.TopK; k > 0 && k < len(c) {
		selectTop(c, k)
		c = c[:k]
		sortDesc(c)
		sorted = true
	}
	if s.p.TopP > 0 && s.p.TopP < 1 {
		c = topP(c, float64(s.p.TopP), sorted)
		sorted = true
	}
	if s.p.MinP > 0 {
		// probability ratio to the best = exp(l - lmax)
		limit := bestScore(c) + float32(math.Log(float64(s.p.MinP)))
		if sorted {
			n := 1
			for n < len(c) && c[n].Score >= limit {
				n++
			}
			c = c[:n]
		} else {
			c = slices.DeleteFunc(c, func(x Candidate) bool { return x.Score < limit })
		}
	}

	t := float64(s.p.Temperature)
	max := float64(bestScore(c))
	w := s.w[:0]
	sum := 0.0
	for i := range c {
		e := math.Exp((float64(c[i].Score) - max) / t)
		w = append(w, e)
		sum += e
	}
	s.w = w
	r := s.rng.Float64() * sum
	for i := range c {
		r -= w[i]
		if r < 0 {
			return c[i].ID
		}
	}
	return c[len(c)-1].ID
}

func (s *Sampler) applyBias(logits []float32) {
	for id, b := range s.p.LogitBias {
		if id >= 0 && int(id) < len(logits) {
			logits[id] += b
		}
	}
}

func (s *Sampler) applyPenalties(logits []float32, history []int32) {
	rp := s.p.RepeatPenalty
	if (rp == 0 || rp == 1) && s.p.PresencePenalty == 0 && s.p.FrequencyPenalty == 0 {
		return
	}
	window := history
	switch n := s.p.RepeatLastN; {
	case n == 0:
		n = 64
		fallthrough
	case n > 0:
		if len(window) > n {
			window = window[len(window)-n:]
		}
	}
	clear(s.counts)
	for _, id := range window {
		if id >= 0 && int(id) < len(logits) {
			s.counts[id]++
		}
	}
	for id, n := range s.counts {
		l := logits[id]
		if rp != 0 && rp != 1 {
			if l > 0 {
				l /= rp
			} else {
				l *= rp
			}
		}
		l -= float32(n)*s.p.FrequencyPenalty + s.p.PresencePenalty
		logits[id] = l
	}
}

// Greedy returns the index of the largest logit; ties go to the lower id.
func Greedy(logits []float32) int32 {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// LogSoftmax writes log(softmax(logits)) into dst (which may be logits),
// computed in float64 for accuracy, and returns dst.
func LogSoftmax(dst, logits []float32) []float32 {
	if len(logits) == 0 {
		return dst[:0]
	}
	max := logits[0]
	for _, l := range logits {
		if l > max {
			max = l
		}
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(float64(l - max))
	}
	lse := float64(max) + math.Log(sum)
	dst = dst[:len(logits)]
	for i, l := range logits {
		dst[i] = float32(float64(l) - lse)
	}
	return dst
}

// Softmax writes softmax(logits) into dst (which may be logits) and returns it.
func Softmax(dst, logits []float32) []float32 {
	LogSoftmax(dst, logits)
	for i, l := range dst {
		dst[i] = float32(math.Exp(float64(l)))
	}
	return dst
}

// TopK appends to dst[:0] the k highest scores in descending order (ties to
// the lower id) and returns it. It allocates only if dst is too small.
func TopK(dst []Candidate, scores []float32, k int) []Candidate {
	if k > len(scores) {
		k = len(scores)
	}
	dst = dst[:0]
	if k <= 0 {
		return dst
	}
	// Insertion into a sorted list of k: vocabularies are large and k small.
	for i, sc := range scores {
		if len(dst) == k && !(sc > dst[k-1].Score) {
			continue
		}
		if len(dst) < k {
			dst = append(dst, Candidate{})
		}
		j := len(dst) - 1
		for j > 0 && sc > dst[j-1].Score {
			dst[j] = dst[j-1]
			j--
		}
		dst[j] = Candidate{ID: int32(i), Score: sc}
	}
	return dst
}

func sortDesc(c []Candidate) {
	slices.SortFunc(c, func(a, b Candidate) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return int(a.ID - b.ID)
	})
}

// before orders candidates by descending score, ties to the lower id.
func before(a, b Candidate) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.ID < b.ID)
}

// selectTop moves the k best candidates (in any order) to c[:k], by
// quickselect: linear time on average.
func selectTop(c []Candidate, k int) {
	lo, hi := 0, len(c)-1
	for lo < hi {
		// Median of three as the pivot keeps sorted input linear.
		mid := lo + (hi-lo)/2
		if before(c[mid], c[lo]) {
			c[mid], c[lo] = c[lo], c[mid]
		}
		if before(c[hi], c[lo]) {
			c[hi], c[lo] = c[lo], c[hi]
		}
		if before(c[hi], c[mid]) {
			c[hi], c[mid] = c[mid], c[hi]
		}
		pivot := c[mid]
		i, j := lo, hi
		for i <= j {
			for before(c[i], pivot) {
				i++
			}
			for before(pivot, c[j]) {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

func bestScore(c []Candidate) float32 {
	best := c[0].Score
	for _, x := range c {
		best = max(best, x.Score)
	}
	return best
}

// topP returns the smallest set of most likely candidates whose
// probabilities (over all of c) add up to at least p, sorted. Unless c is
// already sorted, it selects and sorts a growing head of c, which is
// usually short.
func topP(c []Candidate, p float64, sorted bool) []Candidate {
	best := float64(bestScore(c))
	sum := 0.0
	for _, x := range c {
		sum += math.Exp(float64(x.Score) - best)
	}
	k := len(c)
	if !sorted {
		k = min(64, len(c))
	}
	for {
		if !sorted {
			if k < len(c) {
				selectTop(c, k)
			}
			sortDesc(c[:k])
		}
		cum := 0.0
		for i, x := range c[:k] {
			cum += math.Exp(float64(x.Score)-best) / sum
			if cum >= p {
				return c[:i+1]
			}
		}
		if k == len(c) {
			return c
		}
		k = min(4*k, len(c))
	}
}
