package ggml_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

type dequantCase struct {
	Model  string `json:"model"`
	Tensor string `json:"tensor"`
	Type   string `json:"type"`
	Ne     []int  `json:"ne"`
	File   string `json:"file"`
}

func openModel(t *testing.T, name string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testdata.Path(t, "models", "synth", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readF32File(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// TestDequantizeReference dequantizes one tensor of every type that
// llama.cpp wrote and compares with llama.cpp's own dequantization.
func TestDequantizeReference(t *testing.T) {
	dir := testdata.Path(t, "reference", "dequant")
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []dequantCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[ggml.Type]bool{}
	for _, c := range cases {
		t.Run(c.Type+"/"+c.Model+"/"+c.Tensor, func(t *testing.T) {
			f := openModel(t, c.Model)
			ti, ok := f.Tensor(c.Tensor)
			if !ok {
				t.Fatalf("tensor %q missing", c.Tensor)
			}
			if ti.Type.String() != c.Type {
				t.Fatalf("tensor type %s, index says %s", ti.Type, c.Type)
			}
			seen[ti.Type] = true
			want := readF32File(t, filepath.Join(dir, c.File))
			n := 1
			for _, d := range c.Ne {
				n *= d
			}
			if len(want) != n || uint64(n) != ti.Elements() {
				t.Fatalf("reference has %d values, ne %v, tensor %d", len(want), c.Ne, ti.Elements())
			}
			got := make([]float32, n)
			if err := ggml.Dequantize(ti.Type, f.TensorData(ti), got); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := range got {
				// Written so that a NaN fails: NaN compares false with everything.
				if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-6*math.Abs(float64(want[i]))) {
					if bad < 5 {
						t.Errorf("value %d: got %g, want %g", i, got[i], want[i])
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d values differ", bad, n)
			}
		})
	}
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.BF16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1,
		ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.IQ4_NL, ggml.IQ4_XS} {
		if !seen[typ] {
			t.Errorf("no reference case for %s", typ)
		}
	}
}

// TestQuantizeMatchesLlamaCpp quantizes the F32 synthetic model's tensors
// into the type llama.cpp chose for each tensor of each quantized variant and
// compares the blocks byte for byte with llama.cpp's.
func TestQuantizeMatchesLlamaCpp(t *testing.T) {
	src := openModel(t, "llama256.f32.gguf")
	variants := []string{"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "iq4_nl", "iq4_xs"}
	checked := map[ggml.Type]int{}
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			f := openModel(t, "llama256."+v+".gguf")
			for i := range f.Tensors {
				ti := &f.Tensors[i]
				if ti.Type == ggml.F32 {
					continue
				}
				si, ok := src.Tensor(ti.Name)
				if !ok || si.Type != ggml.F32 {
					t.Fatalf("tensor %q: not F32 in the source model", ti.Name)
				}
				x := make([]float32, si.Elements())
				if err := ggml.Dequantize(ggml.F32, src.TensorData(si), x); err != nil {
					t.Fatal(err)
				}
				want := f.TensorData(ti)
				got := make([]byte, len(want))
				if err := ggml.Quantize(ti.Type, x, got); err != nil {
					t.Fatalf("tensor %q: %v", ti.Name, err)
				}
				bs := ti.Type.TypeSize()
				diff := 0
				for o := 0; o < len(want); o += bs {
					if string(got[o:o+bs]) != string(want[o:o+bs]) {
						diff++
					}
				}
				// The arithmetic mirrors ggml's; a compiler's fused multiply-add
				// could flip a rare tie, so allow a few blocks in a thousand.
				if diff*1000 > len(want)/bs*2 {
					t.Errorf("tensor %q (%s): %d of %d blocks differ from llama.cpp's", ti.Name, ti.Type, diff, len(want)/bs)
				}
				checked[ti.Type]++
			}
		})
	}
	for _, typ := range []ggml.Type{ggml.F16, ggml.BF16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1,
		ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.IQ4_NL, ggml.IQ4_XS} {
		if checked[typ] == 0 {
			t.Errorf("no tensor of type %s was compared", typ)
		}
	}
}

// TestRequantizeDequantized checks that quantizing llama.cpp's dequantized
// Q8_0 and Q4_0 tensors gives back the same blocks: the values already lie
// on the grid, so the quantizer must find it again.
func TestRequantizeDequantized(t *testing.T) {
	for _, c := range []struct{ model, tensor string }{
		{"llama256.q8_0.gguf", "output.weight"},
		{"llama256.q8_0.gguf", "blk.0.ffn_down.weight"},
		{"llama256.q4_0.gguf", "token_embd.weight"},
		{"llama256.q4_0.gguf", "blk.1.attn_q.weight"},
	} {
		t.Run(c.model+"/"+c.tensor, func(t *testing.T) {
			f := openModel(t, c.model)
			ti, ok := f.Tensor(c.tensor)
			if !ok {
				t.Fatalf("tensor %q missing", c.tensor)
			}
			want := f.TensorData(ti)
			x := make([]float32, ti.Elements())
			if err := ggml.Dequantize(ti.Type, want, x); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want))
			if err := ggml.Quantize(ti.Type, x, got); err != nil {
				t.Fatal(err)
			}
			bs := ti.Type.TypeSize()
			diff := 0
			for o := 0; o < len(want); o += bs {
				if string(got[o:o+bs]) != string(want[o:o+bs]) {
					diff++
				}
			}
			if diff*100 > len(want)/bs {
				t.Errorf("%d of %d blocks differ after re-quantization", diff, len(want)/bs)
			}
		})
	}
}
