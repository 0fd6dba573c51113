package gguf

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

// rewrite writes f's metadata and tensors through a Writer.
func rewrite(t testing.TB, f *File, w *Writer) {
	t.Helper()
	w.Version = f.Version
	for _, kv := range f.Metadata {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.Tensors {
		if err := w.WriteTensorData(f.Tensors[i].Name, f.TensorData(&f.Tensors[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// Rewriting llama.cpp's files must reproduce them byte for byte: same
// encoding, same offsets, same padding.
func TestRewriteSharedIdentical(t *testing.T) {
	dir := testdata.Dir(t)
	var paths []string
	for _, pat := range []string{"models/*.gguf", "models/synth/*.gguf", "vocab/*.gguf"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		t.Fatal("no GGUF files")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(p, want)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			rewrite(t, f, NewWriter(&buf))
			got := buf.Bytes()
			if len(f.Tensors) == 0 && uint64(len(want))%f.Alignment != 0 {
				// Written by an older llama.cpp that did not pad a header
				// without tensors; ours adds zeros up to the alignment.
				if uint64(len(got)) != f.DataOffset || !bytes.Equal(got[len(want):], make([]byte, len(got)-len(want))) {
					t.Fatalf("rewrite is %d bytes, want %d padded with zeros to %d", len(got), len(want), f.DataOffset)
				}
				got = got[:len(want)]
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("rewrite differs at byte %d (len %d, want %d)", i, len(got), len(want))
			}
		})
	}
}

func allTypesMetadata() []KV {
	nested, err := NestedArrayValue([]Value{ArrayValue([]string{"a", "bc"}), ArrayValue([]int16{-1, 2, 3}), ArrayValue([]bool{})})
	if err != nil {
		panic(err)
	}
	return []KV{
		{"general.architecture", StringValue("llama")},
		{"t.u8", Uint8Value(200)},
		{"t.i8", Int8Value(-100)},
		{"t.u16", Uint16Value(60000)},
		{"t.i16", Int16Value(-30000)},
		{"t.u32", Uint32Value(4000000000)},
		{"t.i32", Int32Value(-2000000000)},
		{"t.u64", Uint64Value(math.MaxUint64)},
		{"t.i64", Int64Value(math.MinInt64)},
		{"t.f32", Float32Value(3.25)},
		{"t.f64", Float64Value(-1e300)},
		{"t.bool", BoolValue(true)},
		{"t.str", StringValue("héllo\x00world")},
		{"t.empty", StringValue("")},
		{"t.au8", ArrayValue([]uint8{1, 2, 255})},
		{"t.ai8", ArrayValue([]int8{-1, 0, 1})},
		{"t.au16", ArrayValue([]uint16{1, 65535})},
		{"t.ai16", ArrayValue([]int16{-32768})},
		{"t.au32", ArrayValue([]uint32{7, 8})},
		{"t.ai32", ArrayValue([]int32{-7, 8, 1 << 30})},
		{"t.au64", ArrayValue([]uint64{1 << 63})},
		{"t.ai64", ArrayValue([]int64{-1 << 62})},
		{"t.af32", ArrayValue([]float32{0.5, -2})},
		{"t.af64", ArrayValue([]float64{math.Pi})},
		{"t.abool", ArrayValue([]bool{true, false, true})},
		{"t.astr", ArrayValue([]string{"x", "", "yz"})},
		{"t.aempty", ArrayValue([]float32{})},
		{"t.nested", nested},
	}
}

type testTensor struct {
	name string
	typ  ggml.Type
	dims []uint64
}

var testTensors = []testTensor{
	{"a", ggml.F32, []uint64{3}},
	{"b.weight", ggml.Q4_0, []uint64{64, 2}},
	{"c", ggml.F16, []uint64{5, 1, 1, 1}},
	{"d", ggml.Q6_K, []uint64{256, 1, 2}},
}

func tensorBytesFor(i int, n uint64) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j*7 + 1)
	}
	return b
}

func TestWriterRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		version   uint32
		alignment uint64
		chunk     int // bytes per WriteTensorData call
	}{
		{3, 0, 0}, {2, 0, 1}, {3, 64, 7}, {3, 1, 0},
	} {
		t.Run("", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rt.gguf")
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w.Version = tt.version
			md := allTypesMetadata()
			if tt.alignment != 0 {
				md = append(md, KV{"general.alignment", Uint32Value(uint32(tt.alignment))})
			}
			for _, kv := range md {
				if err := w.AddKV(kv.Key, kv.Value); err != nil {
					t.Fatal(err)
				}
			}
			for _, tn := range testTensors {
				if err := w.AddTensor(tn.name, tn.typ, tn.dims); err != nil {
					t.Fatal(err)
				}
			}
			var datas [][]byte
			for i, tn := range testTensors {
				size, ok := w.TensorSize(tn.name)
				if !ok {
					t.Fatalf("no size for %s", tn.name)
				}
				data := tensorBytesFor(i, size)
				datas = append(datas, data)
				step := tt.chunk
				if step == 0 {
					step = len(data)
				}
				for off := 0; off < len(data); off += step {
					if err := w.WriteTensorData(tn.name, data[off:min(off+step, len(data))]); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := os.Stat(path); err == nil {
				t.Error("file exists before Close")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != tt.version {
				t.Errorf("version %d, want %d", f.Version, tt.version)
			}
			wantAlign := tt.alignment
			if wantAlign == 0 {
				wantAlign = DefaultAlignment
			}
			if f.Alignment != wantAlign {
				t.Errorf("alignment %d, want %d", f.Alignment, wantAlign)
			}
			if !reflect.DeepEqual(f.Metadata, md) {
				t.Errorf("metadata differs:\n got %v\nwant %v", f.Metadata, md)
			}
			if len(f.Tensors) != len(testTensors) {
				t.Fatalf("%d tensors", len(f.Tensors))
			}
			// Sizes from ggml's block layouts: Q4_0 18 bytes/32, Q6_K 210/256.
			wantSizes := []uint64{12, 2 * 2 * 18, 10, 2 * 210}
			for i, tn := range testTensors {
				ti := &f.Tensors[i]
				if ti.Name != tn.name || ti.Type != tn.typ || !equalDims(ti.Dims, tn.dims) || ti.Size != wantSizes[i] {
					t.Errorf("tensor %d = %+v, want %v size %d", i, *ti, tn, wantSizes[i])
				}
				if ti.Offset%wantAlign != 0 {
					t.Errorf("%s: offset %d not aligned", ti.Name, ti.Offset)
				}
				if !bytes.Equal(f.TensorData(ti), datas[i]) {
					t.Errorf("%s: data differs", ti.Name)
				}
			}
			if st, _ := os.Stat(path); uint64(st.Size()) != f.DataOffset+alignUp(f.Tensors[3].Offset+f.Tensors[3].Size, wantAlign) {
				t.Errorf("file size %d: last tensor not padded", st.Size())
			}
			// Typed accessors over the written values.
			if v, err := f.Uint32("t.u16"); err != nil || v != 60000 {
				t.Errorf("Uint32(t.u16) = %d, %v", v, err)
			}
			if _, err := f.Uint32("t.i8"); err == nil || !strings.Contains(err.Error(), "does not fit uint32") {
				t.Errorf("Uint32(t.i8) error = %v", err)
			}
			if v, err := f.Int32s("t.au16"); err != nil || !reflect.DeepEqual(v, []int32{1, 65535}) {
				t.Errorf("Int32s(t.au16) = %v, %v", v, err)
			}
			if _, err := f.Int32s("t.au64"); err == nil {
				t.Error("Int32s(t.au64) accepted 1<<63")
			}
			if v, err := f.Float32s("t.af64"); err != nil || v[0] != float32(math.Pi) {
				t.Errorf("Float32s(t.af64) = %v, %v", v, err)
			}
			if v, err := f.Float32("t.f64"); err != nil || !math.IsInf(float64(v), -1) {
				t.Errorf("Float32(t.f64) = %v, %v", v, err)
			}
			if v, err := f.Bool("t.bool"); err != nil || !v {
				t.Errorf("Bool = %v, %v", v, err)
			}
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	tests := []struct {
		name string
		run  func(w *Writer) error
		want string
	}{
		{"duplicate key", func(w *Writer) error {
			w.AddKV("k", Uint8Value(1))
			return w.AddKV("k", Uint8Value(2))
		}, `"k" added twice`},
		{"bad alignment", func(w *Writer) error { return w.AddKV("general.alignment", Uint32Value(24)) }, "power of two"},
		{"alignment not uint32", func(w *Writer) error { return w.AddKV("general.alignment", Uint64Value(64)) }, "not uint64 64"},
		{"aborted", func(w *Writer) error {
			w.AddTensor("a", ggml.F32, []uint64{1})
			w.Abort()
			return w.WriteTensorData("a", make([]byte, 4))
		}, "aborted"},
		{"hand-made value", func(w *Writer) error { return w.AddKV("k", Value{Type: String, x: 5}) }, "does not match"},
		{"zero value", func(w *Writer) error { return w.AddKV("k", Value{}) }, "does not match"},
		{"duplicate tensor", func(w *Writer) error {
			w.AddTensor("t", ggml.F32, []uint64{1})
			return w.AddTensor("t", ggml.F32, []uint64{1})
		}, `"t" added twice`},
		{"unknown type", func(w *Writer) error { return w.AddTensor("t", ggml.Type(99), []uint64{1}) }, "unknown type"},
		{"partial block", func(w *Writer) error { return w.AddTensor("t", ggml.Q4_K, []uint64{100}) }, "not a whole number"},
		{"five dims", func(w *Writer) error { return w.AddTensor("t", ggml.F32, []uint64{1, 1, 1, 1, 1}) }, "5 dimensions"},
		{"out of order", func(w *Writer) error {
			w.AddTensor("a", ggml.F32, []uint64{1})
			w.AddTensor("b", ggml.F32, []uint64{1})
			return w.WriteTensorData("b", make([]byte, 4))
		}, `out of order: next is "a"`},
		{"too much", func(w *Writer) error {
			w.AddTensor("a", ggml.F32, []uint64{1})
			return w.WriteTensorData("a", make([]byte, 5))
		}, "more than its 4"},
		{"incomplete before next", func(w *Writer) error {
			w.AddTensor("a", ggml.F32, []uint64{2})
			w.AddTensor("b", ggml.F32, []uint64{1})
			w.WriteTensorData("a", make([]byte, 4))
			return w.WriteTensorData("b", make([]byte, 4))
		}, `before tensor "a" was complete (4 of 8 bytes)`},
		{"incomplete at close", func(w *Writer) error {
			w.AddTensor("a", ggml.F32, []uint64{2})
			w.AddTensor("b", ggml.F32, []uint64{1})
			w.WriteTensorData("a", make([]byte, 8))
			return w.Close()
		}, `"b": data incomplete`},
		{"kv after data", func(w *Writer) error {
			w.AddTensor("a", ggml.F32, []uint64{1})
			w.WriteTensorData("a", make([]byte, 4))
			return w.AddKV("k", Uint8Value(1))
		}, "after tensor data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.gguf")
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.run(w)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
			if cerr := w.Close(); cerr == nil {
				t.Error("Close succeeded after an error")
			}
			if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
				t.Errorf("files left behind: %v", ents)
			}
		})
	}
}
