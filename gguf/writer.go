package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// Writer writes a GGUF file in two phases, so that tensor data can stream
// through without the whole model in memory:
//
//  1. AddKV and AddTensor declare the metadata and the tensor table (names,
//     types, dimensions); sizes and offsets follow from them.
//  2. WriteTensorData then supplies each tensor's bytes, in the order the
//     tensors were declared, in one call or in as many chunks as the caller
//     likes. The header goes out on the first call (or at Close).
//
// Close pads and flushes, and checks that every tensor got all its bytes.
// Every error is sticky: after one, later calls return it again.
type Writer struct {
	// Version is the GGUF version written (2 or 3; default 3). Set it
	// before the first WriteTensorData.
	Version uint32

	bw        *bufio.Writer
	file      *os.File // set by Create
	tmpPath   string
	path      string
	kvs       []KV
	keys      map[string]bool
	tensors   []TensorInfo
	names     map[string]bool
	alignment uint64

	headerDone bool
	cur        int    // tensor whose data is being written; -1 before the first
	curBytes   uint64 // bytes of it written so far
	pos        uint64 // bytes written to the output
	dataStart  uint64
	err        error
	closed     bool
}

// NewWriter returns a Writer that writes to w. Close flushes but does not
// close w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{
		Version:   3,
		bw:        bufio.NewWriterSize(w, 1<<20),
		keys:      map[string]bool{},
		names:     map[string]bool{},
		alignment: DefaultAlignment,
		cur:       -1,
	}
}

// Create returns a Writer to a new file at path. The data goes to a
// temporary file beside it that Close renames to path once the file is
// complete, so an interrupted or failed write never leaves a partial GGUF.
func Create(path string) (*Writer, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	w := NewWriter(tmp)
	w.file, w.tmpPath, w.path = tmp, tmp.Name(), path
	return w, nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// AddKV appends a metadata entry. Keys must be unique. A general.alignment
// entry (an unsigned integer, power of two) sets the data alignment.
func (w *Writer) AddKV(key string, v Value) error {
	if w.err != nil {
		return w.err
	}
	if w.headerDone {
		return w.fail(fmt.Errorf("gguf: AddKV(%q) after tensor data was written", key))
	}
	if key == "" || len(key) > maxKeyLen {
		return w.fail(fmt.Errorf("gguf: metadata key length %d is outside 1..%d", len(key), maxKeyLen))
	}
	if w.keys[key] {
		return w.fail(fmt.Errorf("gguf: metadata key %q added twice", key))
	}
	if err := checkValue(v, 0); err != nil {
		return w.fail(fmt.Errorf("gguf: metadata key %q: %w", key, err))
	}
	if key == "general.alignment" {
		// llama.cpp reads the key only as a uint32.
		a, _ := v.Uint64()
		if v.Type != Uint32 || a == 0 || a&(a-1) != 0 {
			return w.fail(fmt.Errorf("gguf: general.alignment must be a uint32 power of two, not %s %v", v.TypeName(), v.x))
		}
		w.alignment = a
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{Key: key, Value: v})
	return nil
}

// AddTensor appends a tensor to the table; dims are ne0 first. Its data is
// written later with WriteTensorData.
func (w *Writer) AddTensor(name string, typ ggml.Type, dims []uint64) error {
	if w.err != nil {
		return w.err
	}
	if w.headerDone {
		return w.fail(fmt.Errorf("gguf: AddTensor(%q) after tensor data was written", name))
	}
	if name == "" {
		return w.fail(errors.New("gguf: tensor with an empty name"))
	}
	if w.names[name] {
		return w.fail(fmt.Errorf("gguf: tensor %q added twice", name))
	}
	if !typ.Known() {
		return w.fail(fmt.Errorf("gguf: tensor %q: unknown type %d", name, uint32(typ)))
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return w.fail(fmt.Errorf("gguf: tensor %q: %d dimensions, want 1..%d", name, len(dims), MaxDims))
	}
	elems := uint64(1)
	for _, n := range dims {
		if n == 0 || elems > math.MaxInt64/n {
			return w.fail(fmt.Errorf("gguf: tensor %q: bad dimensions %v", name, dims))
		}
		elems *= n
	}
	size, err := tensorBytes(typ, dims)
	if err != nil {
		return w.fail(fmt.Errorf("gguf: tensor %q: %w", name, err))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, TensorInfo{Name: name, Type: typ, Dims: append([]uint64(nil), dims...), Size: size})
	return nil
}

// TensorSize returns the number of data bytes tensor name takes.
func (w *Writer) TensorSize(name string) (uint64, bool) {
	for i := range w.tensors {
		if w.tensors[i].Name == name {
			return w.tensors[i].Size, true
		}
	}
	return 0, false
}

// WriteTensorData appends p to the data of tensor name. Tensors must be
// written in the order they were added, each completely before the next.
func (w *Writer) WriteTensorData(name string, p []byte) error {
	if w.err != nil {
		return w.err
	}
	if !w.headerDone {
		if err := w.writeHeader(); err != nil {
			return w.fail(err)
		}
	}
	if w.cur < 0 || w.tensors[w.cur].Name != name {
		if w.cur >= 0 && w.curBytes < w.tensors[w.cur].Size {
			t := &w.tensors[w.cur]
			return w.fail(fmt.Errorf("gguf: data for tensor %q before tensor %q was complete (%d of %d bytes)", name, t.Name, w.curBytes, t.Size))
		}
		next := w.cur + 1
		if next >= len(w.tensors) || w.tensors[next].Name != name {
			want := "none (all written)"
			if next < len(w.tensors) {
				want = fmt.Sprintf("%q", w.tensors[next].Name)
			}
			return w.fail(fmt.Errorf("gguf: data for tensor %q out of order: next is %s", name, want))
		}
		if err := w.pad(w.dataStart + w.tensors[next].Offset); err != nil {
			return w.fail(err)
		}
		w.cur, w.curBytes = next, 0
	}
	t := &w.tensors[w.cur]
	if uint64(len(p)) > t.Size-w.curBytes {
		return w.fail(fmt.Errorf("gguf: tensor %q: %d bytes of data, more than its %d", name, w.curBytes+uint64(len(p)), t.Size))
	}
	if err := w.write(p); err != nil {
		return w.fail(err)
	}
	w.curBytes += uint64(len(p))
	return nil
}

// Close finishes the file: it writes the header if no data was written,
// pads the last tensor, flushes, and for Create renames the file into place.
// On error a file from Create is removed.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	err := w.finish()
	if w.file != nil {
		if err == nil {
			err = w.file.Sync()
		}
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(w.tmpPath, 0o644)
		}
		if err == nil {
			err = os.Rename(w.tmpPath, w.path)
		}
		if err != nil {
			os.Remove(w.tmpPath)
		}
	}
	if err != nil {
		return w.fail(err)
	}
	return nil
}

// Abort abandons the file: a file from Create is removed, and later calls
// fail. Use it when the caller cannot supply all the data.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.fail(errors.New("gguf: writer aborted"))
	if w.file != nil {
		w.file.Close()
		os.Remove(w.tmpPath)
	}
}

func (w *Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	if !w.headerDone {
		if err := w.writeHeader(); err != nil {
			return err
		}
	}
	if n := len(w.tensors); n > 0 {
		done := w.cur
		if w.cur >= 0 && w.curBytes < w.tensors[w.cur].Size {
			done--
		}
		if done != n-1 {
			t := &w.tensors[done+1]
			return fmt.Errorf("gguf: tensor %q: data incomplete at close", t.Name)
		}
		last := &w.tensors[n-1]
		if err := w.pad(alignUp(w.dataStart+last.Offset+last.Size, w.alignment)); err != nil {
			return err
		}
	}
	return w.bw.Flush()
}

func (w *Writer) write(p []byte) error {
	n, err := w.bw.Write(p)
	w.pos += uint64(n)
	return err
}

var zeros [256]byte

// pad writes zeros up to position to.
func (w *Writer) pad(to uint64) error {
	for w.pos < to {
		n := min(to-w.pos, uint64(len(zeros)))
		if err := w.write(zeros[:n]); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) writeHeader() error {
	w.headerDone = true
	if w.Version != 2 && w.Version != 3 {
		return fmt.Errorf("gguf: cannot write version %d (only 2 and 3)", w.Version)
	}
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.Offset = off
		off = alignUp(off+t.Size, w.alignment)
	}
	b := make([]byte, 0, 256)
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint32(b, w.Version)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(w.tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(w.kvs)))
	if err := w.write(b); err != nil {
		return err
	}
	for _, kv := range w.kvs {
		b = appendString(b[:0], kv.Key)
		b = binary.LittleEndian.AppendUint32(b, uint32(kv.Value.Type))
		if err := w.write(b); err != nil {
			return err
		}
		if err := w.writeValue(kv.Value); err != nil {
			return err
		}
	}
	for _, t := range w.tensors {
		b = appendString(b[:0], t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Type))
		b = binary.LittleEndian.AppendUint64(b, t.Offset)
		if err := w.write(b); err != nil {
			return err
		}
	}
	// The header is padded even without tensors, as llama.cpp's current
	// writer does (older writers left vocabulary-only files unpadded).
	if err := w.pad(alignUp(w.pos, w.alignment)); err != nil {
		return err
	}
	w.dataStart = w.pos
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// checkValue verifies that v's Go value matches its declared types, since a
// Value can be built by hand.
func checkValue(v Value, depth int) error {
	if v.Type == Array {
		if !v.Elem.Valid() {
			return fmt.Errorf("unknown array element type %d", uint32(v.Elem))
		}
		if et, ok := elemTypeOf(v.x); !ok || et != v.Elem {
			return fmt.Errorf("array value %T does not match element type %s", v.x, v.Elem)
		}
		if v.Elem == Array {
			if depth >= maxArrayDepth {
				return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
			}
			for i, e := range v.x.([]Value) {
				if e.Type != Array {
					return fmt.Errorf("nested array element %d has type %s", i, e.Type)
				}
				if err := checkValue(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	ok := false
	switch v.x.(type) {
	case uint8:
		ok = v.Type == Uint8
	case int8:
		ok = v.Type == Int8
	case uint16:
		ok = v.Type == Uint16
	case int16:
		ok = v.Type == Int16
	case uint32:
		ok = v.Type == Uint32
	case int32:
		ok = v.Type == Int32
	case uint64:
		ok = v.Type == Uint64
	case int64:
		ok = v.Type == Int64
	case float32:
		ok = v.Type == Float32
	case float64:
		ok = v.Type == Float64
	case bool:
		ok = v.Type == Bool
	case string:
		ok = v.Type == String
	}
	if !ok {
		return fmt.Errorf("value %T does not match type %s", v.x, v.Type)
	}
	return nil
}

func (w *Writer) writeValue(v Value) error {
	if v.Type != Array {
		return w.write(appendScalar(nil, v.x))
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(v.Elem))
	b = binary.LittleEndian.AppendUint64(b, uint64(v.Len()))
	if err := w.write(b); err != nil {
		return err
	}
	if nested, ok := v.x.([]Value); ok {
		for _, e := range nested {
			if err := w.writeValue(e); err != nil {
				return err
			}
		}
		return nil
	}
	// Encode in chunks: a vocabulary array can hold hundreds of thousands
	// of strings.
	n := v.Len()
	b = b[:0]
	for i := range n {
		b = appendScalar(b, v.Index(i).x)
		if len(b) >= 64<<10 {
			if err := w.write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	return w.write(b)
}

func appendScalar(b []byte, x any) []byte {
	le := binary.LittleEndian
	switch x := x.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, uint8(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	case string:
		return appendString(b, x)
	}
	panic(fmt.Sprintf("gguf: cannot encode %T", x))
}
