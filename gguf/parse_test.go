package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

// rb builds raw GGUF bytes by hand, to make files the Writer refuses to.
type rb struct{ b []byte }

func (r *rb) u8(x uint8) *rb   { r.b = append(r.b, x); return r }
func (r *rb) u32(x uint32) *rb { r.b = binary.LittleEndian.AppendUint32(r.b, x); return r }
func (r *rb) u64(x uint64) *rb { r.b = binary.LittleEndian.AppendUint64(r.b, x); return r }
func (r *rb) str(s string) *rb { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }

func (r *rb) header(nTensors, nKV uint64) *rb {
	r.b = append(r.b, "GGUF"...)
	return r.u32(3).u64(nTensors).u64(nKV)
}

func (r *rb) tensor(name string, dims []uint64, typ uint32, off uint64) *rb {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(off)
}

// padData pads to the 32-byte alignment and appends n data bytes.
func (r *rb) padData(n int) []byte {
	for len(r.b)%32 != 0 {
		r.b = append(r.b, 0)
	}
	return append(r.b, make([]byte, n)...)
}

// smallFile is a valid file made by the Writer with every value type and a
// few tensor types.
func smallFile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, kv := range allTypesMetadata() {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range testTensors {
		if err := w.AddTensor(tn.name, tn.typ, tn.dims); err != nil {
			t.Fatal(err)
		}
	}
	for i, tn := range testTensors {
		n, _ := w.TensorSize(tn.name)
		if err := w.WriteTensorData(tn.name, tensorBytesFor(i, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkRejected fails unless err is a FormatError naming the file and
// containing want.
func checkRejected(t *testing.T, err error, name, want string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, name+": invalid GGUF at byte ") || !strings.Contains(msg, want) {
		t.Fatalf("error %q, want it to name %s and contain %q", msg, name, want)
	}
	if fe.Offset < 0 {
		t.Fatalf("negative offset in %q", msg)
	}
}

func TestParseTruncatedSmall(t *testing.T) {
	data := smallFile(t)
	f, err := Parse("small", data)
	if err != nil {
		t.Fatal(err)
	}
	lastEnd := f.DataOffset + f.Tensors[len(f.Tensors)-1].Offset + f.Tensors[len(f.Tensors)-1].Size
	for n := range len(data) {
		_, err := Parse("small", data[:n:n])
		if uint64(n) >= lastEnd {
			// Only the padding after the last tensor is missing.
			if err != nil {
				t.Errorf("truncated to %d (all data present): %v", n, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(data))
		}
		checkRejected(t, err, "small", "")
	}
}

// Every cut inside the header of a real model, and a spread of cuts inside
// its tensor data, must be rejected with an error that names what is cut.
func TestParseTruncatedStories(t *testing.T) {
	path := testdata.Path(t, "models", "stories260K.gguf")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		if uint64(n) > f.DataOffset {
			n += 997 // sample the data section
		}
		if n >= len(data) {
			break
		}
		_, err := Parse(path, data[:n:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(data))
		}
		want := ""
		if uint64(n) > f.DataOffset {
			want = "runs past the end of the data section"
		}
		checkRejected(t, err, path, want)
	}
}

func TestParseHostile(t *testing.T) {
	big := uint64(1) << 62
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, `magic is "", want "GGUF"`},
		{"wrong magic", []byte("GGML\x03\x00\x00\x00"), "not a GGUF file"},
		{"version 1", new(rb).u8('G').u8('G').u8('U').u8('F').u32(1).u64(0).u64(0).b, "version 1 is not supported"},
		{"version 4", new(rb).u8('G').u8('G').u8('U').u8('F').u32(4).u64(0).u64(0).b, "version 4 is not supported"},
		{"big endian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"absurd tensor count", new(rb).header(big, 0).b, "tensor count 4611686018427387904 is more than"},
		{"absurd kv count", new(rb).header(0, math.MaxUint64).b, "metadata count 18446744073709551615 is more than"},
		{"huge key length", new(rb).header(0, 1).u64(big).u32(4).u32(0).b, "length 4611686018427387904 exceeds"},
		{"empty key", new(rb).header(0, 1).str("").u32(4).u32(0).b, "outside 1..65535"},
		{"unknown value type", new(rb).header(0, 1).str("k").u32(13).u32(0).b, `key "k": unknown value type 13`},
		{"huge string", new(rb).header(0, 1).str("k").u32(uint32(String)).u64(big).b, `key "k": length 4611686018427387904 exceeds`},
		{"huge array", new(rb).header(0, 1).str("k").u32(uint32(Array)).u32(uint32(Uint64)).u64(big).b, `key "k" array length 4611686018427387904 is more than`},
		{"huge string array", new(rb).header(0, 1).str("k").u32(uint32(Array)).u32(uint32(String)).u64(100).str("a").b, `array length 100 is more than`},
		{"unknown element type", new(rb).header(0, 1).str("k").u32(uint32(Array)).u32(77).u64(0).b, "unknown array element type 77"},
		{"bad bool", new(rb).header(0, 1).str("k").u32(uint32(Bool)).u8(2).b, "bool byte is 2"},
		{"bad bool in array", new(rb).header(0, 1).str("k").u32(uint32(Array)).u32(uint32(Bool)).u64(2).u8(1).u8(7).b, "element 1: bool byte is 7"},
		{"duplicate key", new(rb).header(0, 2).str("k").u32(uint32(Uint8)).u8(1).str("k").u32(uint32(Uint8)).u8(1).b, `"k" appears twice`},
		{"deep nesting", func() []byte {
			r := new(rb).header(0, 1).str("k").u32(uint32(Array))
			for range 12 {
				r.u32(uint32(Array)).u64(1)
			}
			return r.u32(uint32(Uint8)).u64(0).b
		}(), "nested more than 8 deep"},
		{"alignment not power of two", new(rb).header(0, 1).str("general.alignment").u32(uint32(Uint32)).u32(24).b, "general.alignment is uint32 24"},
		{"alignment error offset", new(rb).header(0, 2).str("a").u32(uint32(Uint8)).u8(1).str("general.alignment").u32(uint32(Uint32)).u32(3).b, "at byte 38: general.alignment"},
		{"alignment zero", new(rb).header(0, 1).str("general.alignment").u32(uint32(Uint32)).u32(0).b, "power of two"},
		{"alignment string", new(rb).header(0, 1).str("general.alignment").u32(uint32(String)).str("32").b, "general.alignment is string"},
		{"empty tensor name", new(rb).header(1, 0).tensor("", []uint64{1}, 0, 0).padData(4), "empty name"},
		{"zero dims", new(rb).header(1, 0).tensor("t", nil, 0, 0).padData(4), `tensor "t": 0 dimensions`},
		{"five dims", new(rb).header(1, 0).tensor("t", []uint64{1, 1, 1, 1, 1}, 0, 0).padData(4), `tensor "t": 5 dimensions`},
		{"zero dim", new(rb).header(1, 0).tensor("t", []uint64{4, 0}, 0, 0).padData(16), `tensor "t": dimension 1 is 0`},
		{"overflowing dims", new(rb).header(1, 0).tensor("t", []uint64{1 << 40, 1 << 40}, 0, 0).padData(4), "overflow the element count"},
		{"overflowing bytes", new(rb).header(1, 0).tensor("t", []uint64{1 << 31, 1 << 31}, uint32(ggml.F32), 0).padData(4), "byte size overflows"},
		{"unknown tensor type", new(rb).header(1, 0).tensor("t", []uint64{4}, 99, 0).padData(16), `tensor "t": unknown tensor type 99`},
		{"partial block", new(rb).header(1, 0).tensor("t", []uint64{33}, uint32(ggml.Q8_0), 0).padData(64), "not a whole number of Q8_0 blocks"},
		{"offset past end", new(rb).header(1, 0).tensor("t", []uint64{4}, 0, 1<<40).padData(16), "runs past the end of the data section"},
		{"offset near max", new(rb).header(1, 0).tensor("t", []uint64{4}, 0, math.MaxUint64-31).padData(16), "runs past the end"},
		{"data cut short", new(rb).header(1, 0).tensor("t", []uint64{8}, 0, 0).padData(31), `tensor "t": data [0, 0+32) runs past`},
		{"unaligned offset", new(rb).header(1, 0).tensor("t", []uint64{1}, 0, 4).padData(64), "not a multiple of the alignment 32"},
		{"overlap", new(rb).header(2, 0).tensor("a", []uint64{16}, 0, 0).tensor("b", []uint64{4}, 0, 32).padData(64), `tensor "b" (data at 32) overlaps tensor "a"`},
		{"same offset", new(rb).header(2, 0).tensor("a", []uint64{4}, 0, 0).tensor("b", []uint64{4}, 0, 0).padData(64), "overlaps"},
		{"duplicate tensor", new(rb).header(2, 0).tensor("a", []uint64{4}, 0, 0).tensor("a", []uint64{4}, 0, 32).padData(64), `tensor "a" appears twice`},
		{"no data section", new(rb).header(1, 0).tensor("t", []uint64{1}, 0, 0).b, "starts past the end of the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("bad.gguf", tt.data)
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			checkRejected(t, err, "bad.gguf", tt.want)
		})
	}
}

// The hand-built files above must differ from valid ones only in what each
// case breaks: the same builder makes files that are accepted.
func TestParseHandBuiltValid(t *testing.T) {
	data := new(rb).header(2, 2).
		str("general.alignment").u32(uint32(Uint32)).u32(64).
		str("k").u32(uint32(Array)).u32(uint32(Array)).u64(1).u32(uint32(Uint8)).u64(2).u8(1).u8(2).
		tensor("b", []uint64{4}, 0, 128).tensor("a", []uint64{32, 2}, uint32(ggml.Q8_0), 0).b
	for len(data)%64 != 0 {
		data = append(data, 0)
	}
	data = append(data, make([]byte, 144)...)
	f, err := Parse("ok.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || len(f.Tensors) != 2 {
		t.Fatalf("alignment %d, data offset %d, %d tensors", f.Alignment, f.DataOffset, len(f.Tensors))
	}
	if a, _ := f.Tensor("a"); a.Size != 68 || len(f.TensorData(a)) != 68 {
		t.Errorf("tensor a: %+v", a)
	}
	v, _ := f.Lookup("k")
	if v.Len() != 1 || v.Index(0).Len() != 2 || v.Index(0).Index(1).Any() != uint8(2) {
		t.Errorf("nested array %v", v)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir + "/missing.gguf"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	empty := dir + "/empty.gguf"
	os.WriteFile(empty, nil, 0o644)
	_, err := Open(empty)
	checkRejected(t, err, empty, "not a GGUF file")
}

// Where mapping fails, Open reads the file and serves the same data.
func TestOpenWithoutMmap(t *testing.T) {
	path := testdata.Path(t, "models", "stories260K.gguf")
	noMap := func(*os.File, int) ([]byte, func() error, error) { return nil, nil, errors.New("no mmap here") }
	f, err := open(path, noMap)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(m.Tensors) || len(f.Metadata) != len(m.Metadata) {
		t.Fatalf("read: %d tensors %d keys; mapped: %d tensors %d keys", len(f.Tensors), len(f.Metadata), len(m.Tensors), len(m.Metadata))
	}
	for i := range f.Tensors {
		if !bytes.Equal(f.TensorData(&f.Tensors[i]), m.TensorData(&m.Tensors[i])) {
			t.Errorf("%s: data differs", f.Tensors[i].Name)
		}
	}
	for _, g := range []*File{f, m} {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
		if g.TensorData(&g.Tensors[0]) != nil {
			t.Error("TensorData after Close is not nil")
		}
		if err := g.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
}
