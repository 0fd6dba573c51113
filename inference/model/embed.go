package model

import (
	"context"
	"fmt"
	"math"
)

// Pooling says how the hidden states of a text's tokens become one
// embedding vector.
type Pooling int

const (
	PoolMean Pooling = iota // average over all positions
	PoolLast                // the last position (causal models see the whole text there)
)

func (p Pooling) String() string {
	if p == PoolLast {
		return "last"
	}
	return "mean"
}

// ParsePooling maps "mean" or "last" to a Pooling.
func ParsePooling(s string) (Pooling, error) {
	switch s {
	case "mean", "":
		return PoolMean, nil
	case "last":
		return PoolLast, nil
	}
	return 0, fmt.Errorf("unknown pooling %q (supported: mean, last)", s)
}

// Pool reduces rows of dim hidden values (one after another) to one vector
// by p, L2-normalized, written to dst (len dim) and returned.
func Pool(dst, hidden []float32, dim int, p Pooling) []float32 {
	rows := len(hidden) / dim
	dst = dst[:dim]
	acc := make([]float64, dim)
	switch p {
	case PoolLast:
		for i, v := range hidden[(rows-1)*dim : rows*dim] {
			acc[i] = float64(v)
		}
	default:
		for r := range rows {
			for i, v := range hidden[r*dim : (r+1)*dim] {
				acc[i] += float64(v)
			}
		}
		for i := range acc {
			acc[i] /= float64(rows)
		}
	}
	var ss float64
	for _, v := range acc {
		ss += v * v
	}
	norm := math.Sqrt(ss)
	if norm == 0 {
		norm = 1
	}
	for i, v := range acc {
		dst[i] = float32(v / norm)
	}
	return dst
}

// Embed runs tokens through the model in a fresh sequence and returns their
// pooled, L2-normalized final hidden state (after the output norm).
func (m *Model) Embed(ctx context.Context, tokens []int32, p Pooling) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("embed: no tokens")
	}
	seq := m.NewSequence(len(tokens))
	out, err := seq.Forward(ctx, tokens, ForwardOptions{Logits: LogitsNone, Hidden: true})
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	return Pool(make([]float32, m.Config.Dim), out.Hidden, m.Config.Dim, p), nil
}
