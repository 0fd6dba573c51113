package gguf

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

// The expected facts come from ../shared/README.md; tensor counts follow
// from the architectures (llama: 9 tensors a layer + token_embd,
// output_norm, output; qwen2 adds 3 biases a layer).
func TestOpenModels(t *testing.T) {
	tests := []struct {
		file                              string
		arch                              string
		layers, embd, heads, kvHeads, ffn uint32
		vocab, tensors                    int
		chatTemplate                      bool
		ropeBase                          float32
	}{
		{"stories260K.gguf", "llama", 5, 64, 8, 4, 172, 512, 48, false, 0},
		{"synth/llama256.f32.gguf", "llama", 4, 256, 8, 4, 768, 512, 39, false, 0},
		{"synth/llama256.q4_k_m.gguf", "llama", 4, 256, 8, 4, 768, 512, 39, false, 0},
		{"synth/llama256.iq4_xs.gguf", "llama", 4, 256, 8, 4, 768, 512, 39, false, 0},
		{"synth/qwen2-256.f16.gguf", "qwen2", 2, 256, 4, 2, 512, 512, 27, true, 1e6},
		{"synth/qwen2-256.q8_0.gguf", "qwen2", 2, 256, 4, 2, 512, 512, 27, true, 1e6},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := Open(testdata.Path(t, "models", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Architecture() != tt.arch {
				t.Errorf("architecture %q, want %q", f.Architecture(), tt.arch)
			}
			for key, want := range map[string]uint32{
				"block_count": tt.layers, "embedding_length": tt.embd, "feed_forward_length": tt.ffn,
				"attention.head_count": tt.heads, "attention.head_count_kv": tt.kvHeads,
			} {
				got, err := f.Uint32(tt.arch + "." + key)
				if err != nil || got != want {
					t.Errorf("%s = %d, %v; want %d", key, got, err, want)
				}
			}
			if tt.ropeBase != 0 {
				if got, err := f.Float32(tt.arch + ".rope.freq_base"); err != nil || got != tt.ropeBase {
					t.Errorf("rope.freq_base = %v, %v; want %v", got, err, tt.ropeBase)
				}
			}
			toks, err := f.Strings("tokenizer.ggml.tokens")
			if err != nil || len(toks) != tt.vocab {
				t.Errorf("tokens: %d, %v; want %d", len(toks), err, tt.vocab)
			}
			if scores, err := f.Float32s("tokenizer.ggml.scores"); err == nil && len(scores) != tt.vocab {
				t.Errorf("scores: %d, want %d", len(scores), tt.vocab)
			}
			if types, err := f.Int32s("tokenizer.ggml.token_type"); err != nil || len(types) != tt.vocab {
				t.Errorf("token_type: %d, %v; want %d", len(types), err, tt.vocab)
			}
			if _, err := f.String("tokenizer.chat_template"); (err == nil) != tt.chatTemplate {
				t.Errorf("chat template present = %v, want %v", err == nil, tt.chatTemplate)
			}
			if len(f.Tensors) != tt.tensors {
				t.Errorf("%d tensors, want %d", len(f.Tensors), tt.tensors)
			}
			if f.Alignment != DefaultAlignment || f.DataOffset%f.Alignment != 0 {
				t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
			}
			emb, ok := f.Tensor("token_embd.weight")
			if !ok {
				t.Fatal("no token_embd.weight")
			}
			if len(emb.Dims) != 2 || emb.Dims[0] != uint64(tt.embd) || emb.Dims[1] != uint64(tt.vocab) {
				t.Errorf("token_embd.weight dims %v, want [%d %d]", emb.Dims, tt.embd, tt.vocab)
			}
			var total uint64
			for i := range f.Tensors {
				ti := &f.Tensors[i]
				if got := f.TensorData(ti); uint64(len(got)) != ti.Size {
					t.Errorf("%s: %d bytes of data, want %d", ti.Name, len(got), ti.Size)
				}
				total += ti.Size
			}
			if total > uint64(f.Size())-f.DataOffset {
				t.Errorf("tensors total %d bytes, more than the data section", total)
			}
		})
	}
}

// The tensor table must agree with the types and shapes that llama.cpp
// reported for the reference dequantizations, and F32 tensor data must be
// the reference values byte for byte.
func TestTensorsMatchReference(t *testing.T) {
	dir := testdata.Path(t, "reference", "dequant")
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct {
		Model, Tensor, Type, File string
		Ne                        []uint64
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	if len(index) == 0 {
		t.Fatal("empty index.json")
	}
	for _, e := range index {
		t.Run(e.Model+"/"+e.Tensor, func(t *testing.T) {
			f, err := Open(testdata.Path(t, "models", "synth", e.Model))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ti, ok := f.Tensor(e.Tensor)
			if !ok {
				t.Fatalf("no tensor %q", e.Tensor)
			}
			if ti.Type.String() != e.Type {
				t.Errorf("type %s, want %s", ti.Type, e.Type)
			}
			if !equalDims(ti.Dims, e.Ne) {
				t.Errorf("dims %v, want %v", ti.Dims, e.Ne)
			}
			if ti.Type != ggml.F32 {
				return
			}
			want, err := os.ReadFile(filepath.Join(dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.TensorData(ti), want) {
				t.Errorf("data differs from %s", e.File)
			}
		})
	}
}

func equalDims(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpenAllShared(t *testing.T) {
	dir := testdata.Dir(t)
	var paths []string
	for _, pat := range []string{"models/*.gguf", "models/synth/*.gguf", "vocab/*.gguf"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < 30 {
		t.Fatalf("found only %d GGUF files in %s", len(paths), dir)
	}
	// Vocabulary sizes from ../shared/README.md.
	vocab := map[string]int{"ggml-vocab-llama-bpe.gguf": 128256, "ggml-vocab-qwen2.gguf": 151936, "ggml-vocab-qwen3.gguf": 151936}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != 3 && f.Version != 2 {
				t.Errorf("version %d", f.Version)
			}
			if _, err := f.String("tokenizer.ggml.model"); err != nil {
				t.Error(err)
			}
			if n, ok := vocab[filepath.Base(p)]; ok {
				toks, err := f.Strings("tokenizer.ggml.tokens")
				if err != nil || len(toks) != n {
					t.Errorf("%d tokens, %v; want %d", len(toks), err, n)
				}
				if strings.HasPrefix(filepath.Base(p), "ggml-vocab-qwen") && f.Architecture() != "qwen2" {
					t.Errorf("architecture %q, want qwen2", f.Architecture())
				}
			}
		})
	}
}

func TestAccessorErrors(t *testing.T) {
	f, err := Open(testdata.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name string
		call func() error
		want string // substring of the error
	}{
		{"missing", func() error { _, err := f.String("no.such.key"); return err }, `"no.such.key": missing`},
		{"string as uint32", func() error { _, err := f.Uint32("general.architecture"); return err }, `"general.architecture" has type string, want integer`},
		{"uint32 as string", func() error { _, err := f.String("llama.block_count"); return err }, `"llama.block_count" has type uint32, want string`},
		{"uint32 as float", func() error { _, err := f.Float32("llama.block_count"); return err }, `has type uint32, want float32`},
		{"uint32 as bool", func() error { _, err := f.Bool("llama.block_count"); return err }, `has type uint32, want bool`},
		{"float array as strings", func() error { _, err := f.Strings("tokenizer.ggml.scores"); return err }, `has type array[float32], want array[string]`},
		{"strings as floats", func() error { _, err := f.Float32s("tokenizer.ggml.tokens"); return err }, `has type array[string], want array[float32]`},
		{"floats as ints", func() error { _, err := f.Int32s("tokenizer.ggml.scores"); return err }, `has type array[float32], want array of integers`},
		{"scalar as array", func() error { _, err := f.Int32s("llama.block_count"); return err }, `has type uint32, want array of integers`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), f.Path) {
				t.Errorf("error %v does not name the file", err)
			}
		})
	}
	if _, err := f.String("no.such.key"); !errors.Is(err, ErrMissing) {
		t.Errorf("missing key error %v is not ErrMissing", err)
	}
	// 0xFFFFFFFF is stored as uint32 and fits; as a token id it means "none".
	if v, err := f.Uint32("tokenizer.ggml.padding_token_id"); err != nil || v != 0xFFFFFFFF {
		t.Errorf("padding_token_id = %d, %v", v, err)
	}
}
