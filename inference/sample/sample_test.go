package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestGreedy(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"single", []float32{1}, 0},
		{"max in middle", []float32{0, 3, 1}, 1},
		{"tie goes to lower id", []float32{0, 2, 2, 1}, 1},
		{"negative", []float32{-5, -1, -3}, 1},
		{"-inf ignored", []float32{float32(math.Inf(-1)), -7}, 1},
	}
	for _, tt := range tests {
		if got := Greedy(tt.logits); got != tt.want {
			t.Errorf("%s: Greedy = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestLogSoftmax(t *testing.T) {
	tests := []struct {
		logits []float32
		want   []float64
	}{
		{[]float32{0, 0}, []float64{math.Log(0.5), math.Log(0.5)}},
		{[]float32{1, 2, 3}, []float64{1 - 3.40760596, 2 - 3.40760596, 3 - 3.40760596}},
		{[]float32{1000, 1000}, []float64{math.Log(0.5), math.Log(0.5)}}, // no overflow
	}
	for _, tt := range tests {
		got := LogSoftmax(make([]float32, len(tt.logits)), tt.logits)
		if len(got) != len(tt.want) {
			t.Fatalf("LogSoftmax(%v) has %d values, want %d", tt.logits, len(got), len(tt.want))
		}
		for i := range got {
			if !(math.Abs(float64(got[i])-tt.want[i]) <= 1e-6) { // a NaN fails too
				t.Errorf("LogSoftmax(%v)[%d] = %g, want %g", tt.logits, i, got[i], tt.want[i])
			}
		}
		p := Softmax(make([]float32, len(tt.logits)), tt.logits)
		sum := 0.0
		for _, v := range p {
			sum += float64(v)
		}
		if !(math.Abs(sum-1) <= 1e-6) {
			t.Errorf("Softmax(%v) sums to %g", tt.logits, sum)
		}
	}
}

func TestTopK(t *testing.T) {
	scores := []float32{0.1, 0.5, 0.5, 0.3, 0.9, 0.5}
	tests := []struct {
		k    int
		want []int32
	}{
		{0, []int32{}},
		{1, []int32{4}},
		{3, []int32{4, 1, 2}},
		{4, []int32{4, 1, 2, 5}},
		{10, []int32{4, 1, 2, 5, 3, 0}},
	}
	for _, tt := range tests {
		got := TopK(nil, scores, tt.k)
		ids := []int32{}
		for _, c := range got {
			ids = append(ids, c.ID)
			if c.Score != scores[c.ID] {
				t.Errorf("k=%d: score of %d is %g, want %g", tt.k, c.ID, c.Score, scores[c.ID])
			}
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("TopK(k=%d) = %v, want %v", tt.k, ids, tt.want)
		}
	}
}

// counts draws n tokens and returns how often each id came out.
func counts(p Params, logits []float32, history []int32, n int) map[int32]int {
	s := New(p)
	got := map[int32]int{}
	buf := make([]float32, len(logits))
	for range n {
		copy(buf, logits)
		got[s.Sample(buf, history)]++
	}
	return got
}

func TestSampleFilters(t *testing.T) {
	// probabilities at T=1: ~0.57, 0.21, 0.11, 0.06, 0.03, 0.02 (ids 0..5)
	logits := []float32{3, 2, 1.4, 0.8, 0.1, -0.3}
	tests := []struct {
		name    string
		p       Params
		history []int32
		allowed []int32 // the only ids that may come out
		all     bool    // every allowed id must come out at least once
	}{
		{"greedy", Params{}, nil, []int32{0}, true},
		{"top-k 2", Params{Temperature: 1, TopK: 2, Seed: 1}, nil, []int32{0, 1}, true},
		{"top-p 0.7", Params{Temperature: 1, TopP: 0.7, Seed: 2}, nil, []int32{0, 1}, true},
		{"top-p 0.5 keeps at least one", Params{Temperature: 1, TopP: 0.5, Seed: 2}, nil, []int32{0}, true},
		{"min-p 0.15", Params{Temperature: 1, MinP: 0.15, Seed: 3}, nil, []int32{0, 1, 2}, true},
		{"high temperature reaches the tail", Params{Temperature: 5, Seed: 4}, nil, []int32{0, 1, 2, 3, 4, 5}, true},
		{"logit bias bans a token", Params{LogitBias: map[int32]float32{0: float32(math.Inf(-1))}}, nil, []int32{1}, true},
		{"logit bias promotes a token", Params{LogitBias: map[int32]float32{5: 10}}, nil, []int32{5}, true},
		{"repeat penalty", Params{RepeatPenalty: 10}, []int32{0}, []int32{1}, true},
		{"repeat window excludes old tokens", Params{RepeatPenalty: 10, RepeatLastN: 1}, []int32{0, 3}, []int32{0}, true},
		{"presence penalty", Params{PresencePenalty: 1.5}, []int32{0}, []int32{1}, true},
		{"frequency penalty", Params{FrequencyPenalty: 0.4}, []int32{0, 0, 0}, []int32{1}, true},
		{"frequency penalty, one occurrence", Params{FrequencyPenalty: 0.4}, []int32{0}, []int32{0}, true},
	}
	for _, tt := range tests {
		got := counts(tt.p, logits, tt.history, 2000)
		for id := range got {
			if !slices.Contains(tt.allowed, id) {
				t.Errorf("%s: sampled %d, allowed only %v (counts %v)", tt.name, id, tt.allowed, got)
			}
		}
		if tt.all {
			for _, id := range tt.allowed {
				if got[id] == 0 {
					t.Errorf("%s: never sampled %d (counts %v)", tt.name, id, got)
				}
			}
		}
	}
}

func TestSampleDistribution(t *testing.T) {
	// At temperature 1 the frequencies follow the softmax.
	logits := []float32{1, 0, -1}
	// e^1, e^0, e^-1 normalised, computed here rather than by our Softmax.
	z := math.E + 1 + 1/math.E
	want := []float64{math.E / z, 1 / z, 1 / math.E / z}
	const n = 20000
	got := counts(Params{Temperature: 1, Seed: 7}, logits, nil, n)
	for id, p := range want {
		f := float64(got[int32(id)]) / n
		if math.Abs(f-p) > 0.015 {
			t.Errorf("token %d: frequency %.3f, want %.3f", id, f, p)
		}
	}
}

func TestSampleSeedReproducible(t *testing.T) {
	logits := make([]float32, 100)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	run := func(seed uint64) []int32 {
		s := New(Params{Temperature: 1, Seed: seed})
		var out []int32
		buf := make([]float32, len(logits))
		for range 50 {
			copy(buf, logits)
			out = append(out, s.Sample(buf, out))
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Errorf("same seed gave different tokens:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 gave the same 50 tokens")
	}
}

func TestSampleNoAllocs(t *testing.T) {
	logits := make([]float32, 512)
	buf := make([]float32, len(logits))
	for i := range logits {
		logits[i] = float32(i % 17)
	}
	s := New(Params{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1.1, Seed: 1})
	hist := []int32{1, 2, 3, 4}
	s.Sample(buf, hist)
	allocs := testing.AllocsPerRun(20, func() {
		copy(buf, logits)
		s.Sample(buf, hist)
	})
	if allocs != 0 {
		t.Errorf("Sample allocates %.1f times per call", allocs)
	}
}

func TestValidate(t *testing.T) {
	bad := []Params{{Temperature: -1}, {TopK: -1}, {TopP: 1.5}, {MinP: -0.1}, {RepeatPenalty: -1}, {RepeatLastN: -2}}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", p)
		}
	}
	if err := (Params{Temperature: 0.7, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1}).Validate(); err != nil {
		t.Errorf("Validate of good params: %v", err)
	}
}

func TestStop(t *testing.T) {
	type step struct {
		text   string
		eog    bool
		emit   string
		reason StopReason
	}
	tests := []struct {
		name  string
		stop  Stop
		steps []step
		flush string
	}{
		{"no stops", Stop{}, []step{{"a", false, "a", StopNone}, {"b", false, "b", StopNone}}, ""},
		{"eog", Stop{}, []step{{"a", false, "a", StopNone}, {"</s>", true, "", StopEOG}}, ""},
		{"max tokens", Stop{MaxTokens: 2}, []step{{"a", false, "a", StopNone}, {"b", false, "b", StopLength}}, ""},
		{"stop string in one token", Stop{Strings: []string{"END"}}, []step{{"abENDcd", false, "ab", StopString}}, ""},
		{"stop string across tokens is held back", Stop{Strings: []string{"END"}},
			[]step{{"xE", false, "x", StopNone}, {"N", false, "", StopNone}, {"Dy", false, "", StopString}}, ""},
		{"false alarm is released", Stop{Strings: []string{"END"}},
			[]step{{"xE", false, "x", StopNone}, {"Nz", false, "ENz", StopNone}}, ""},
		{"held text released at eog", Stop{Strings: []string{"END"}},
			[]step{{"xEN", false, "x", StopNone}, {"", true, "EN", StopEOG}}, ""},
		{"held text released at length", Stop{Strings: []string{"END"}, MaxTokens: 1},
			[]step{{"xEN", false, "xEN", StopLength}}, ""},
		{"flush", Stop{Strings: []string{"END"}}, []step{{"xE", false, "x", StopNone}}, "E"},
		{"earliest of several", Stop{Strings: []string{"cd", "b"}}, []step{{"abcd", false, "a", StopString}}, ""},
	}
	for _, tt := range tests {
		s := tt.stop
		for i, st := range tt.steps {
			emit, reason := s.Token(st.text, st.eog)
			if emit != st.emit || reason != st.reason {
				t.Errorf("%s: step %d Token(%q) = %q, %q; want %q, %q", tt.name, i, st.text, emit, reason, st.emit, st.reason)
			}
		}
		if f := s.Flush(); f != tt.flush {
			t.Errorf("%s: Flush = %q, want %q", tt.name, f, tt.flush)
		}
	}
}

func TestSelectTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 5, 100, 1000} {
		for _, k := range []int{1, 2, 7, 40, n} {
			if k > n {
				continue
			}
			c := make([]Candidate, n)
			for i := range c {
				c[i] = Candidate{ID: int32(i), Score: float32(rng.IntN(20))} // many ties
			}
			want := slices.Clone(c)
			sortDesc(want)
			selectTop(c, k)
			got := slices.Clone(c[:k])
			sortDesc(got)
			if !slices.Equal(got, want[:k]) {
				t.Fatalf("n=%d k=%d: top %v, want %v", n, k, got, want[:k])
			}
		}
	}
}

// TestTopPLargeVocab needs more than the first selected head of 64.
func TestTopPLargeVocab(t *testing.T) {
	const n = 1000
	logits := make([]float32, n)
	for i := range logits {
		// decreasing with the id, shuffled a little so that ids are not in order
		logits[(i*7919)%n] = -float32(i) * 0.005
	}
	probs := Softmax(make([]float32, n), logits)
	order := make([]int, n)
	for i := range order {
		order[i] = (i * 7919) % n
	}
	cum, keep := 0.0, map[int32]bool{}
	for _, id := range order {
		keep[int32(id)] = true
		cum += float64(probs[id])
		if cum >= 0.5 {
			break
		}
	}
	if len(keep) <= 64 {
		t.Fatalf("test needs more than 64 kept tokens, has %d", len(keep))
	}
	got := counts(Params{Temperature: 1, TopP: 0.5, Seed: 9}, logits, nil, 5000)
	for id := range got {
		if !keep[id] {
			t.Errorf("sampled %d, outside the top-p set of %d tokens", id, len(keep))
		}
	}
	if len(got) < len(keep)/2 {
		t.Errorf("only %d distinct tokens of %d sampled", len(got), len(keep))
	}
}

// BenchmarkSampleFullVocab draws from a Qwen-sized vocabulary with no
// top-k, the case where every token's weight is computed.
func BenchmarkSampleFullVocab(b *testing.B) {
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)) * 8)
	}
	buf := make([]float32, len(logits))
	s := New(Params{Temperature: 0.8, Seed: 1})
	for b.Loop() {
		copy(buf, logits)
		s.Sample(buf, nil)
	}
}
