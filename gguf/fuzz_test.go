package gguf

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen parses arbitrary bytes. A rejected input must yield a
// *FormatError; an accepted one must have every tensor's data inside the
// input, and survive being written out and parsed again unchanged.
func FuzzOpen(f *testing.F) {
	f.Add(smallFile(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse("fuzz", data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, not *FormatError", err, err)
			}
			return
		}
		for i := range g.Tensors {
			ti := &g.Tensors[i]
			if uint64(len(g.TensorData(ti))) != ti.Size {
				t.Fatalf("tensor %q: %d bytes, want %d", ti.Name, len(g.TensorData(ti)), ti.Size)
			}
		}
		var b1, b2 bytes.Buffer
		rewrite(t, g, NewWriter(&b1))
		g2, err := Parse("rewritten", b1.Bytes())
		if err != nil {
			t.Fatalf("rewritten file rejected: %v", err)
		}
		rewrite(t, g2, NewWriter(&b2))
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatal("second rewrite differs from the first")
		}
	})
}
