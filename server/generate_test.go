package server

import (
	"testing"
)

func TestKeptTokens(t *testing.T) {
	toks := []tokenInfo{{Text: []byte("ab"), Offset: 0}, {Text: []byte("cd"), Offset: 2}, {Text: []byte("ef"), Offset: 4}}
	tests := []struct {
		end, want int
	}{{6, 3}, {5, 3}, {4, 2}, {3, 2}, {2, 1}, {0, 0}}
	for _, tc := range tests {
		if got := len(keptTokens(toks, tc.end)); got != tc.want {
			t.Errorf("keptTokens(end %d) kept %d, want %d", tc.end, got, tc.want)
		}
	}
}

func TestScorer(t *testing.T) {
	sc := scorer{topN: 2}
	sc.load([]float32{0, 1, 3, 2})
	lp, top := sc.pick(1)
	if len(top) != 2 || top[0].ID != 2 || top[1].ID != 3 {
		t.Errorf("top %v, want ids 2, 3", top)
	}
	// log softmax of [0 1 3 2] at 1: 1 - log(e^0+e^1+e^3+e^2)
	if want := float32(1 - 3.4401897); !(lp >= want-1e-5 && lp <= want+1e-5) {
		t.Errorf("logprob %g, want %g", lp, want)
	}
	sc.load([]float32{5, 0, 0, 0})
	if _, top2 := sc.pick(0); top[0].ID != 2 || top2[0].ID != 0 {
		t.Error("pick's alternatives alias the scorer's buffer")
	}
}
