package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/internal/testdata"
)

func runInspect(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := newInspectCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.Bytes(), err
}

// Expected values follow from ../shared/README.md: stories260K has 5
// layers, dim 64, 8/4 heads, FFN 172, a 512-token vocabulary, all F32, and
// its own output.weight, so 2*512*64 + 64 + 5*(2*64 + 2*64*64 + 2*64*32 +
// 3*64*172) = 292800 parameters of 4 bytes.
func TestInspectStoriesText(t *testing.T) {
	out, err := runInspect(t, testdata.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range []string{
		"architecture: llama", "parameters: 292.80K (292800)", "context length: 2048",
		"embedding: 64", "layers: 5", "heads: 8 (kv 4)", "feed forward: 172",
		`tokenizer: llama, pre -, 512 tokens, bos 1 "<s>", eos 2 "</s>"`, "chat template: no",
		"token_embd.weight F32 [64, 512] 131072", "blk.4.ffn_down.weight F32 [172, 64] 44032",
		"total: 48 tensors, 1171200 bytes", "F32 48 tensors 1171200 bytes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

type inspectJSON struct {
	Summary struct {
		Architecture string `json:"architecture"`
		FileTypeName string `json:"file_type_name"`
		Parameters   uint64 `json:"parameters"`
		ChatTemplate bool   `json:"chat_template"`
		Tokenizer    struct {
			VocabSize int `json:"vocab_size"`
		} `json:"tokenizer"`
	} `json:"summary"`
	DataOffset uint64         `json:"data_offset"`
	Metadata   map[string]any `json:"metadata"`
	Tensors    []struct {
		Name   string   `json:"name"`
		Type   string   `json:"type"`
		Shape  []uint64 `json:"shape"`
		Offset uint64   `json:"offset"`
		Bytes  uint64   `json:"bytes"`
	} `json:"tensors"`
}

func inspectAsJSON(t *testing.T, path string) inspectJSON {
	t.Helper()
	out, err := runInspect(t, path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got inspectJSON
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return got
}

func TestInspectStoriesJSON(t *testing.T) {
	got := inspectAsJSON(t, testdata.Path(t, "models", "stories260K.gguf"))
	if got.Summary.Architecture != "llama" || got.Summary.Parameters != 292800 || got.Summary.Tokenizer.VocabSize != 512 {
		t.Errorf("summary %+v", got.Summary)
	}
	if !reflect.DeepEqual(got.Metadata["tokenizer.ggml.tokens"], map[string]any{"type": "string", "len": json.Number("512")}) {
		t.Errorf("tokens abbreviated as %v", got.Metadata["tokenizer.ggml.tokens"])
	}
	if got.Metadata["llama.block_count"] != json.Number("5") || got.Metadata["general.architecture"] != "llama" ||
		got.Metadata["llama.attention.layer_norm_rms_epsilon"] != json.Number("0.00001") &&
			got.Metadata["llama.attention.layer_norm_rms_epsilon"] != json.Number("1e-05") {
		t.Errorf("metadata %v", got.Metadata)
	}
	if len(got.Tensors) != 48 {
		t.Fatalf("%d tensors, want 48", len(got.Tensors))
	}
	var end uint64
	for _, tn := range got.Tensors {
		if tn.Type != "F32" || tn.Offset%32 != 0 || tn.Offset < end {
			t.Errorf("tensor %+v", tn)
		}
		end = tn.Offset + tn.Bytes
		if tn.Name == "token_embd.weight" && (!reflect.DeepEqual(tn.Shape, []uint64{64, 512}) || tn.Bytes != 512*64*4) {
			t.Errorf("tensor %+v", tn)
		}
	}
}

// The file types are the quantization names in the synthetic models' file
// names, which llama.cpp's quantize chose.
func TestInspectFileTypes(t *testing.T) {
	paths, _ := filepath.Glob(testdata.Path(t, "models", "synth", "*.gguf"))
	if len(paths) == 0 {
		t.Fatal("no synthetic models")
	}
	for _, p := range paths {
		base := filepath.Base(p)
		quant := strings.TrimSuffix(base[strings.Index(base, ".")+1:], ".gguf")
		want := "MOSTLY_" + strings.ToUpper(quant)
		if quant == "f32" {
			want = "ALL_F32"
		}
		got := inspectAsJSON(t, p)
		if got.Summary.FileTypeName != want {
			t.Errorf("%s: file type %q, want %q", base, got.Summary.FileTypeName, want)
		}
		if wantTmpl := strings.HasPrefix(base, "qwen2"); got.Summary.ChatTemplate != wantTmpl {
			t.Errorf("%s: chat template %v, want %v", base, got.Summary.ChatTemplate, wantTmpl)
		}
	}
}

// Short arrays are listed in full (bytes as numbers, not base64), long ones
// abbreviated, non-finite floats spelled out.
func TestInspectJSONValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.gguf")
	w, err := gguf.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	nested, _ := gguf.NestedArrayValue([]gguf.Value{gguf.ArrayValue([]string{"a"}), gguf.ArrayValue(make([]int8, 17))})
	for _, kv := range []gguf.KV{
		{Key: "u8s", Value: gguf.ArrayValue([]uint8{1, 2, 255})},
		{Key: "sixteen", Value: gguf.ArrayValue(make([]float32, 16))},
		{Key: "seventeen", Value: gguf.ArrayValue(make([]bool, 17))},
		{Key: "nan", Value: gguf.Float32Value(float32(math.NaN()))},
		{Key: "big", Value: gguf.Uint64Value(math.MaxUint64)},
		{Key: "nested", Value: nested},
		{Key: "html", Value: gguf.StringValue("<a&b>")},
	} {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := runInspect(t, path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"u8s":[1,2,255]`, `"sixteen":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]`,
		`"seventeen":{"len":17,"type":"bool"}`, `"nan":"NaN"`, `"big":18446744073709551615`,
		`"nested":[["a"],{"len":17,"type":"int8"}]`, `"html":"<a&b>"`,
	} {
		if !bytes.Contains(compact.Bytes(), []byte(want)) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	// Text output of the same file, which has no tensors or tokenizer.
	if _, err := runInspect(t, path); err != nil {
		t.Fatal(err)
	}
}

// --dequant must reproduce llama.cpp's dequantization of every reference
// tensor (exact for F32; 1e-6 relative for the others, per the README).
func TestInspectDequant(t *testing.T) {
	dir := testdata.Path(t, "reference", "dequant")
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct{ Model, Tensor, Type, File string }
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	for _, e := range index {
		t.Run(e.File, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			got, err := runInspect(t, testdata.Path(t, "models", "synth", e.Model), "--tensor", e.Tensor, "--dequant")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d bytes, want %d", len(got), len(want))
			}
			if e.Type == "F32" && !bytes.Equal(got, want) {
				t.Fatal("F32 data differs")
			}
			for i := 0; i < len(got); i += 4 {
				g := math.Float32frombits(binary.LittleEndian.Uint32(got[i:]))
				w := math.Float32frombits(binary.LittleEndian.Uint32(want[i:]))
				if !(math.Abs(float64(g-w)) <= 1e-6*math.Abs(float64(w))) { // a NaN fails too
					t.Fatalf("value %d = %g, want %g", i/4, g, w)
				}
			}
		})
	}
}

// The statistics printed for a tensor must be those of llama.cpp's values.
func TestInspectTensorStats(t *testing.T) {
	want, err := os.ReadFile(testdata.Path(t, "reference", "dequant", "f32.output.weight.f32"))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := 0; i < len(want); i += 4 {
		x := float64(math.Float32frombits(binary.LittleEndian.Uint32(want[i:])))
		lo, hi = min(lo, x), max(hi, x)
	}
	out, err := runInspect(t, testdata.Path(t, "models", "synth", "llama256.f32.gguf"), "--tensor", "output.weight")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, s := range []string{"type: F32", "shape: [256, 512] (131072 values)", fmt.Sprintf("min / max: %g / %g", lo, hi)} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestInspectErrors(t *testing.T) {
	model := testdata.Path(t, "models", "stories260K.gguf")
	junk := filepath.Join(t.TempDir(), "junk.gguf")
	os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{model, "--tensor", "nope", "--dequant"}, `no tensor "nope"`},
		{[]string{model, "--dequant"}, "--dequant needs --tensor"},
		{[]string{model, "--json", "--tensor", "output.weight"}, "cannot be used together"},
		{[]string{junk}, junk + ": invalid GGUF at byte 8: tensor count"},
		{[]string{filepath.Join(t.TempDir(), "missing.gguf")}, "no such file"},
		{[]string{}, "accepts 1 arg"},
	}
	for _, tt := range tests {
		_, err := runInspect(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("inspect %v: error %v, want %q", tt.args, err, tt.want)
		}
	}
}
