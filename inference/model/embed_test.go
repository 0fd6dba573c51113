package model

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/internal/testdata"
)

func TestEmbeddings(t *testing.T) {
	f, err := os.Open(testdata.Path(t, "reference", "embeddings", "embeddings.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	models := map[string]*Model{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	n := 0
	for sc.Scan() {
		var ref struct {
			Model, Pooling, Text string
			Embedding            []float64
		}
		if err := json.Unmarshal(sc.Bytes(), &ref); err != nil {
			t.Fatal(err)
		}
		m := models[ref.Model]
		if m == nil {
			name := ref.Model
			if name != "stories260K.gguf" {
				name = "synth/" + name
			}
			m = load(t, name, Options{Threads: 2})
			models[ref.Model] = m
		}
		pool, err := ParsePooling(ref.Pooling)
		if err != nil {
			t.Fatal(err)
		}
		tok := m.Tokenizer
		ids := tok.Encode(ref.Text, true, false)
		got, err := m.Embed(context.Background(), ids, pool)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ref.Embedding) {
			t.Fatalf("%s: %d values, want %d", ref.Model, len(got), len(ref.Embedding))
		}
		var cos float64
		for i, v := range got {
			cos += float64(v) * ref.Embedding[i]
		}
		want := 0.99
		if ref.Model == "stories260K.gguf" || strings.Contains(ref.Model, ".f32.") {
			want = 0.999
		}
		if cos < want || math.IsNaN(cos) {
			t.Errorf("%s %s %q: cosine %.5f, want ≥ %g", ref.Model, ref.Pooling, ref.Text, cos, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no reference embeddings")
	}
}

func TestPoolFunc(t *testing.T) {
	hidden := []float32{3, 0, 0, 4, 1, 1}
	norm := math.Hypot(4.0/3, 5.0/3) // of the mean (4/3, 5/3)
	tests := []struct {
		p    Pooling
		want []float32
	}{
		{PoolLast, []float32{0.7071068, 0.7071068}},
		{PoolMean, []float32{float32(4.0 / 3 / norm), float32(5.0 / 3 / norm)}},
	}
	for _, tt := range tests {
		got := Pool(make([]float32, 2), hidden, 2, tt.p)
		if maxDiff(got, tt.want) > 1e-6 {
			t.Errorf("%v: %v, want %v", tt.p, got, tt.want)
		}
	}
}
