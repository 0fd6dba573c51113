package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

// TestQuantizeMatchesLlamaQuantize converts the shared synthetic models the
// way llama.cpp's llama-quantize made the shared quantized variants, and
// expects the very same file, byte for byte: metadata, tensor order, the
// per-tensor type mix and every block.
func TestQuantizeMatchesLlamaQuantize(t *testing.T) {
	tests := []struct{ src, ftype, want string }{
		{"llama256.f32.gguf", "bf16", "llama256.bf16.gguf"},
		{"llama256.f32.gguf", "q8_0", "llama256.q8_0.gguf"},
		{"llama256.f32.gguf", "q4_0", "llama256.q4_0.gguf"},
		{"llama256.f32.gguf", "q4_1", "llama256.q4_1.gguf"},
		{"llama256.f32.gguf", "q5_0", "llama256.q5_0.gguf"},
		{"llama256.f32.gguf", "q5_1", "llama256.q5_1.gguf"},
		{"llama256.f32.gguf", "q2_k", "llama256.q2_k.gguf"},
		{"llama256.f32.gguf", "q3_k_m", "llama256.q3_k_m.gguf"},
		{"llama256.f32.gguf", "q4_k_m", "llama256.q4_k_m.gguf"},
		{"llama256.f32.gguf", "q5_k_m", "llama256.q5_k_m.gguf"},
		{"llama256.f32.gguf", "q6_k", "llama256.q6_k.gguf"},
		{"llama256.f32.gguf", "iq4_nl", "llama256.iq4_nl.gguf"},
		{"llama256.f32.gguf", "iq4_xs", "llama256.iq4_xs.gguf"},
		{"qwen2-256.f16.gguf", "q8_0", "qwen2-256.q8_0.gguf"},
		{"qwen2-256.f16.gguf", "q4_k_m", "qwen2-256.q4_k_m.gguf"},
	}
	dir := testdata.Path(t, "models", "synth")
	tmp := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			ft, err := parseFileType(tt.ftype)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(tmp, tt.want)
			if err := quantizeFile(context.Background(), filepath.Join(dir, tt.src), out, ft, 2, nil); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, tt.want))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				describeDiff(t, out, filepath.Join(dir, tt.want))
			}
		})
	}
}

// The shared F16 variant came from llama.cpp's converter rather than
// llama-quantize (other key and tensor order), so only its tensors can match.
func TestQuantizeF16MatchesConverter(t *testing.T) {
	dir := testdata.Path(t, "models", "synth")
	ft, _ := parseFileType("f16")
	out := filepath.Join(t.TempDir(), "f16.gguf")
	if err := quantizeFile(context.Background(), filepath.Join(dir, "llama256.f32.gguf"), out, ft, 2, nil); err != nil {
		t.Fatal(err)
	}
	got, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := gguf.Open(filepath.Join(dir, "llama256.f16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i := range want.Tensors {
		w := &want.Tensors[i]
		g, ok := got.Tensor(w.Name)
		if !ok {
			t.Fatalf("tensor %s missing", w.Name)
		}
		if g.Type != w.Type || !bytes.Equal(got.TensorData(g), want.TensorData(w)) {
			t.Errorf("tensor %s: %s, want %s, or data differs", w.Name, g.Type, w.Type)
		}
	}
}

// describeDiff reports how two GGUF files differ, tensor by tensor.
func describeDiff(t *testing.T, gotPath, wantPath string) {
	t.Helper()
	got, err := gguf.Open(gotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := gguf.Open(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if len(got.Metadata) != len(want.Metadata) {
		t.Errorf("%d metadata keys, want %d", len(got.Metadata), len(want.Metadata))
	}
	for i := range min(len(got.Metadata), len(want.Metadata)) {
		g, w := got.Metadata[i], want.Metadata[i]
		if g.Key != w.Key || g.Value.String() != w.Value.String() {
			t.Errorf("metadata %d: %s=%v, want %s=%v", i, g.Key, g.Value, w.Key, w.Value)
		}
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i := range got.Tensors {
		g, w := &got.Tensors[i], &want.Tensors[i]
		if g.Name != w.Name || g.Type != w.Type {
			t.Errorf("tensor %d: %s %s, want %s %s", i, g.Name, g.Type, w.Name, w.Type)
			continue
		}
		if !bytes.Equal(got.TensorData(g), want.TensorData(w)) {
			t.Errorf("tensor %s (%s): data differs", g.Name, g.Type)
		}
	}
	t.Errorf("file differs from llama.cpp's")
}

// TestQuantizeStories quantizes the real stories260K model (FFN 172, which no
// block type divides) and checks the types chosen and the weights' accuracy.
func TestQuantizeStories(t *testing.T) {
	src := testdata.Path(t, "models", "stories260K.gguf")
	for _, tt := range []struct {
		ftype   string
		types   map[string]ggml.Type
		maxRMSE float64 // relative RMS error of each converted matrix
	}{
		{"q4_k_m", map[string]ggml.Type{
			"output.weight":            ggml.Q8_0, // Q6_K, but 64 columns: falls back to Q8_0
			"token_embd.weight":        ggml.Q5_0, // 64 columns: Q4_K falls back to Q5_0
			"blk.0.attn_q.weight":      ggml.Q5_0,
			"blk.1.attn_v.weight":      ggml.Q5_0,
			"blk.2.attn_v.weight":      ggml.Q8_0, // use_more_bits layer: Q6_K -> Q8_0
			"blk.0.ffn_down.weight":    ggml.F16,  // 172 columns: nothing but F16 fits
			"blk.0.ffn_gate.weight":    ggml.Q5_0,
			"blk.0.attn_norm.weight":   ggml.F32,
			"output_norm.weight":       ggml.F32,
			"blk.4.attn_output.weight": ggml.Q5_0,
		}, 0.06},
		{"q8_0", map[string]ggml.Type{
			"output.weight":         ggml.Q8_0,
			"token_embd.weight":     ggml.Q8_0,
			"blk.0.ffn_down.weight": ggml.F16,
			"blk.0.ffn_up.weight":   ggml.Q8_0,
		}, 0.01},
		{"f16", map[string]ggml.Type{
			"token_embd.weight":      ggml.F16,
			"blk.0.ffn_down.weight":  ggml.F16,
			"blk.0.attn_norm.weight": ggml.F32,
		}, 0.001},
	} {
		t.Run(tt.ftype, func(t *testing.T) {
			ft, _ := parseFileType(tt.ftype)
			out := filepath.Join(t.TempDir(), "out.gguf")
			var log bytes.Buffer
			if err := quantizeFile(context.Background(), src, out, ft, 2, newConvProgress(&log)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(log.Bytes(), []byte("[48/48]")) {
				t.Errorf("progress output lacks the last tensor:\n%s", log.String())
			}
			orig, err := gguf.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if v, err := f.Uint32("general.file_type"); err != nil || v != ft.id {
				t.Errorf("general.file_type = %d, %v; want %d", v, err, ft.id)
			}
			if v, err := f.Uint32("general.quantization_version"); err != nil || v != 2 {
				t.Errorf("general.quantization_version = %d, %v; want 2", v, err)
			}
			if got, want := len(f.Metadata), len(orig.Metadata); got < want {
				t.Errorf("%d metadata keys, source had %d", got, want)
			}
			for name, typ := range tt.types {
				ti, ok := f.Tensor(name)
				if !ok {
					t.Errorf("tensor %s missing", name)
				} else if ti.Type != typ {
					t.Errorf("tensor %s is %s, want %s", name, ti.Type, typ)
				}
			}
			for i := range orig.Tensors {
				ot := &orig.Tensors[i]
				nt, ok := f.Tensor(ot.Name)
				if !ok {
					t.Fatalf("tensor %s missing", ot.Name)
				}
				if fmt.Sprint(nt.Dims) != fmt.Sprint(ot.Dims) {
					t.Errorf("tensor %s dims %v, want %v", ot.Name, nt.Dims, ot.Dims)
				}
				a := make([]float32, ot.Elements())
				b := make([]float32, nt.Elements())
				if err := ggml.Dequantize(ot.Type, orig.TensorData(ot), a); err != nil {
					t.Fatal(err)
				}
				if err := ggml.Dequantize(nt.Type, f.TensorData(nt), b); err != nil {
					t.Fatal(err)
				}
				var se, sx float64
				for j := range a {
					d := float64(a[j] - b[j])
					se += d * d
					sx += float64(a[j]) * float64(a[j])
				}
				if rel := math.Sqrt(se / sx); rel > tt.maxRMSE {
					t.Errorf("tensor %s (%s): relative RMS error %.4f > %.4f", ot.Name, nt.Type, rel, tt.maxRMSE)
				}
			}
		})
	}
}

// TestMixPlan checks llama.cpp's Q4_K_M/Q5_K_M/Q3_K_M rules on a 22-layer
// llama (TinyLlama's shape): attn_v and ffn_down get Q6_K in layers
// 0,1,4,7,10,13,16,19,20,21 (use_more_bits), the output Q6_K.
func TestMixPlan(t *testing.T) {
	var names []string
	names = append(names, "output.weight", "token_embd.weight", "output_norm.weight")
	for i := 0; i < 22; i++ {
		for _, s := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"} {
			names = append(names, fmt.Sprintf("blk.%d.%s.weight", i, s))
		}
	}
	more := map[int]bool{0: true, 1: true, 4: true, 7: true, 10: true, 13: true, 16: true, 19: true, 20: true, 21: true}
	for _, tt := range []struct {
		ftype          string
		base, bumped   ggml.Type
		output, attnO  ggml.Type
		firstV, firstD ggml.Type
	}{
		{"q4_k_m", ggml.Q4_K, ggml.Q6_K, ggml.Q6_K, ggml.Q4_K, ggml.Q6_K, ggml.Q6_K},
		{"q5_k_m", ggml.Q5_K, ggml.Q6_K, ggml.Q6_K, ggml.Q5_K, ggml.Q6_K, ggml.Q6_K},
		{"q3_k_m", ggml.Q3_K, ggml.Q3_K, ggml.Q6_K, ggml.Q4_K, ggml.Q5_K, ggml.Q5_K},
	} {
		ft, _ := parseFileType(tt.ftype)
		p := newMixPlanner(ft, "llama", 22, 32, 4, names)
		for _, k := range llamaOrder(names) {
			name := names[k]
			dims := []uint64{2048, 256}
			got := p.typeFor(name, dims)
			want := tt.base
			layer := blockIndex(name)
			switch {
			case name == "output.weight":
				want = tt.output
			case tt.ftype == "q3_k_m" && contains(name, "attn_v"):
				want = ggml.Q4_K
				if layer < 2 {
					want = tt.firstV
				}
			case tt.ftype == "q3_k_m" && contains(name, "ffn_down"):
				want = ggml.Q4_K
				if layer < 22/16 {
					want = tt.firstD
				}
			case contains(name, "attn_v") || contains(name, "ffn_down"):
				if more[layer] {
					want = tt.bumped
				}
			case contains(name, "attn_output"):
				want = tt.attnO
			}
			if got != want {
				t.Errorf("%s %s: %s, want %s", tt.ftype, name, got, want)
			}
		}
	}
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }
