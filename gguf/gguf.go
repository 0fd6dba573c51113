// Package gguf reads and writes GGUF files, the model format of llama.cpp:
// a header of typed metadata key/values and a tensor table, followed by the
// aligned tensor data. Open maps the file read-only and validates every
// count, length, size and offset before trusting it, so that a damaged or
// hostile file yields an error, never a panic or a huge allocation.
package gguf

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment used when the file has no
// general.alignment key.
const DefaultAlignment = 32

// MaxDims is the largest number of dimensions a tensor may have (ggml's
// GGML_MAX_DIMS).
const MaxDims = 4

// ErrMissing is wrapped by the accessors' errors when a key is absent.
var ErrMissing = errors.New("missing")

// File is an opened GGUF file. Tensor data slices returned by TensorData
// point into the file's memory and are valid until Close. A File is not
// modified after Open, so any number of goroutines may read it at once.
type File struct {
	Path       string
	Version    uint32
	Metadata   []KV         // in file order
	Tensors    []TensorInfo // in file order
	Alignment  uint64
	DataOffset uint64 // start of the tensor data section

	data    []byte
	release func() error // unmaps or drops data
	keys    map[string]int
	names   map[string]int
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor of the table.
type TensorInfo struct {
	Name   string
	Type   ggml.Type
	Dims   []uint64 // ne0 first (fastest varying)
	Offset uint64   // relative to DataOffset
	Size   uint64   // bytes
}

// Elements is the number of values of the tensor.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Close releases the file's memory. Slices from TensorData must not be used
// afterwards.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release = nil
	f.data = nil
	return err
}

// Size is the length of the whole file in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// Lookup returns the value of key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.keys[key]
	if !ok {
		return Value{}, false
	}
	return f.Metadata[i].Value, true
}

func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("%s: metadata key %q: %w", f.Path, key, ErrMissing)
	}
	return v, nil
}

func (f *File) typeError(key string, v Value, want string) error {
	return fmt.Errorf("%s: metadata key %q has type %s, want %s", f.Path, key, v.TypeName(), want)
}

// String returns the string value of key.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.Str()
	if !ok {
		return "", f.typeError(key, v, "string")
	}
	return s, nil
}

// Uint32 returns the value of key, which may be of any integer type whose
// value fits a uint32.
func (f *File) Uint32(key string) (uint32, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	if v.Type == Array || v.Type == String || v.Type == Bool || v.Type == Float32 || v.Type == Float64 {
		return 0, f.typeError(key, v, "integer")
	}
	u, ok := v.Uint64()
	if !ok || u > math.MaxUint32 {
		return 0, fmt.Errorf("%s: metadata key %q: value %v does not fit uint32", f.Path, key, v.x)
	}
	return uint32(u), nil
}

// Uint64 returns the value of key, which may be of any integer type holding
// a non-negative value.
func (f *File) Uint64(key string) (uint64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	if v.Type == Array || v.Type == String || v.Type == Bool || v.Type == Float32 || v.Type == Float64 {
		return 0, f.typeError(key, v, "integer")
	}
	u, ok := v.Uint64()
	if !ok {
		return 0, fmt.Errorf("%s: metadata key %q: value %v is negative", f.Path, key, v.x)
	}
	return u, nil
}

// Float32 returns the value of key, which may be a float32 or float64.
func (f *File) Float32(key string) (float32, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	x, ok := v.Float64()
	if !ok {
		return 0, f.typeError(key, v, "float32")
	}
	return float32(x), nil
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.BoolVal()
	if !ok {
		return false, f.typeError(key, v, "bool")
	}
	return b, nil
}

// Strings returns a copy of the string array of key.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.x.([]string)
	if !ok {
		return nil, f.typeError(key, v, "array[string]")
	}
	return slices.Clone(s), nil
}

// Float32s returns the float array of key (float32 or float64 elements) as
// a new []float32.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	switch s := v.x.(type) {
	case []float32:
		return slices.Clone(s), nil
	case []float64:
		out := make([]float32, len(s))
		for i, x := range s {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, f.typeError(key, v, "array[float32]")
}

// Int32s returns the integer array of key (any integer element type) as a
// new []int32; every element must fit an int32.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	if v.Type != Array || v.Elem == Array || v.Elem.size() == 0 || v.Elem == Bool ||
		v.Elem == Float32 || v.Elem == Float64 {
		return nil, f.typeError(key, v, "array of integers")
	}
	if s, ok := v.x.([]int32); ok {
		return slices.Clone(s), nil
	}
	n := v.Len()
	out := make([]int32, n)
	for i := range n {
		x, ok := v.Index(i).Int64()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, fmt.Errorf("%s: metadata key %q: element %d (%v) does not fit int32", f.Path, key, i, v.Index(i).x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Architecture is the value of general.architecture, or "" when absent.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.names[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the bytes of t: a read-only, zero-copy slice of the
// file's memory, valid until Close (nil after it). t must come from f.
// Writing into the slice faults: the mapping is read-only.
func (f *File) TensorData(t *TensorInfo) []byte {
	if f.data == nil {
		return nil
	}
	start := f.DataOffset + t.Offset
	end := start + t.Size
	return f.data[start:end:end]
}
