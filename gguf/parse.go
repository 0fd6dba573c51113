package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// FormatError reports a file that is not valid GGUF: which file, where and
// what is wrong.
type FormatError struct {
	Path   string
	Offset int64 // byte offset in the file where the bad item starts
	Msg    string
}

func (e *FormatError) Error() string {
	return e.Path + ": invalid GGUF at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// Smallest encodings, used to reject counts the rest of the file cannot hold
// before anything is allocated for them.
const (
	minKVBytes     = 8 + 1 + 4 + 1         // key length, 1-byte key, type, 1-byte value
	minTensorBytes = 8 + 1 + 4 + 8 + 4 + 8 // name length, 1-byte name, n_dims, one dim, type, offset
	maxKeyLen      = 65535                 // the GGUF spec's limit on key length
	maxArrayDepth  = 8                     // nesting of arrays in arrays
)

type decoder struct {
	path string
	data []byte
	off  int
}

func (d *decoder) errAt(at int, format string, args ...any) error {
	return &FormatError{Path: d.path, Offset: int64(at), Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) remaining() int { return len(d.data) - d.off }

// need fails unless n more bytes are left.
func (d *decoder) need(n uint64, what string) error {
	if n > uint64(d.remaining()) {
		return d.errAt(d.off, "%s: need %d bytes, only %d left in the file", what, n, d.remaining())
	}
	return nil
}

func (d *decoder) u8(what string) (uint8, error) {
	if err := d.need(1, what); err != nil {
		return 0, err
	}
	x := d.data[d.off]
	d.off++
	return x, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	if err := d.need(2, what); err != nil {
		return 0, err
	}
	x := binary.LittleEndian.Uint16(d.data[d.off:])
	d.off += 2
	return x, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	x := binary.LittleEndian.Uint32(d.data[d.off:])
	d.off += 4
	return x, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	x := binary.LittleEndian.Uint64(d.data[d.off:])
	d.off += 8
	return x, nil
}

func (d *decoder) str(what string) (string, error) {
	start := d.off
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.remaining()) {
		return "", d.errAt(start, "%s: length %d exceeds the %d bytes left in the file", what, n, d.remaining())
	}
	s := string(d.data[d.off : d.off+int(n)])
	d.off += int(n)
	return s, nil
}

// count reads an element count and checks that the rest of the file can
// hold that many elements of at least minSize bytes each.
func (d *decoder) count(what string, minSize int) (int, error) {
	start := d.off
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(d.remaining()/minSize) {
		return 0, d.errAt(start, "%s %d is more than the %d bytes left in the file can hold", what, n, d.remaining())
	}
	return int(n), nil
}

func (d *decoder) scalar(t ValueType, what string) (Value, error) {
	v := Value{Type: t}
	switch t {
	case Uint8, Int8, Bool:
		at := d.off
		x, err := d.u8(what)
		if err != nil {
			return v, err
		}
		switch t {
		case Uint8:
			v.x = x
		case Int8:
			v.x = int8(x)
		default:
			if x > 1 {
				return v, d.errAt(at, "%s: bool byte is %d, want 0 or 1", what, x)
			}
			v.x = x == 1
		}
	case Uint16, Int16:
		x, err := d.u16(what)
		if err != nil {
			return v, err
		}
		if t == Uint16 {
			v.x = x
		} else {
			v.x = int16(x)
		}
	case Uint32, Int32, Float32:
		x, err := d.u32(what)
		if err != nil {
			return v, err
		}
		switch t {
		case Uint32:
			v.x = x
		case Int32:
			v.x = int32(x)
		default:
			v.x = math.Float32frombits(x)
		}
	case Uint64, Int64, Float64:
		x, err := d.u64(what)
		if err != nil {
			return v, err
		}
		switch t {
		case Uint64:
			v.x = x
		case Int64:
			v.x = int64(x)
		default:
			v.x = math.Float64frombits(x)
		}
	case String:
		s, err := d.str(what)
		if err != nil {
			return v, err
		}
		v.x = s
	default:
		return v, d.errAt(d.off, "%s: unknown value type %d", what, uint32(t))
	}
	return v, nil
}

// value reads a value of type t (already read) at depth levels of array
// nesting.
func (d *decoder) value(t ValueType, depth int, what string) (Value, error) {
	if t != Array {
		return d.scalar(t, what)
	}
	at := d.off
	et32, err := d.u32(what + " element type")
	if err != nil {
		return Value{}, err
	}
	et := ValueType(et32)
	if !et.Valid() {
		return Value{}, d.errAt(at, "%s: unknown array element type %d", what, et32)
	}
	minSize := et.size()
	switch et {
	case String:
		minSize = 8
	case Array:
		if depth >= maxArrayDepth {
			return Value{}, d.errAt(at, "%s: arrays nested more than %d deep", what, maxArrayDepth)
		}
		minSize = 4 + 8
	}
	n, err := d.count(what+" array length", minSize)
	if err != nil {
		return Value{}, err
	}
	v := Value{Type: Array, Elem: et}
	p := d.data[d.off:]
	switch et {
	case Uint8:
		v.x = slices.Clone(p[:n])
	case Int8:
		s := make([]int8, n)
		for i := range s {
			s[i] = int8(p[i])
		}
		v.x = s
	case Bool:
		s := make([]bool, n)
		for i := range s {
			if p[i] > 1 {
				return Value{}, d.errAt(d.off+i, "%s: element %d: bool byte is %d, want 0 or 1", what, i, p[i])
			}
			s[i] = p[i] == 1
		}
		v.x = s
	case Uint16:
		s := make([]uint16, n)
		for i := range s {
			s[i] = binary.LittleEndian.Uint16(p[2*i:])
		}
		v.x = s
	case Int16:
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
		}
		v.x = s
	case Uint32:
		s := make([]uint32, n)
		for i := range s {
			s[i] = binary.LittleEndian.Uint32(p[4*i:])
		}
		v.x = s
	case Int32:
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(binary.LittleEndian.Uint32(p[4*i:]))
		}
		v.x = s
	case Float32:
		s := make([]float32, n)
		for i := range s {
			s[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
		v.x = s
	case Uint64:
		s := make([]uint64, n)
		for i := range s {
			s[i] = binary.LittleEndian.Uint64(p[8*i:])
		}
		v.x = s
	case Int64:
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(binary.LittleEndian.Uint64(p[8*i:]))
		}
		v.x = s
	case Float64:
		s := make([]float64, n)
		for i := range s {
			s[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
		}
		v.x = s
	case String:
		s := make([]string, n)
		for i := range s {
			if s[i], err = d.str(what + " element " + strconv.Itoa(i)); err != nil {
				return Value{}, err
			}
		}
		v.x = s
		return v, nil
	case Array:
		s := make([]Value, n)
		for i := range s {
			if s[i], err = d.value(Array, depth+1, what+" element "+strconv.Itoa(i)); err != nil {
				return Value{}, err
			}
		}
		v.x = s
		return v, nil
	}
	d.off += n * minSize
	return v, nil
}

// Parse reads a GGUF file held in data; name is used in errors. The File
// keeps data for its tensor slices.
func Parse(name string, data []byte) (*File, error) {
	d := &decoder{path: name, data: data}
	if len(data) < 4 || string(data[:4]) != Magic {
		n := min(len(data), 4)
		return nil, d.errAt(0, "magic is %q, want %q (not a GGUF file)", data[:n], Magic)
	}
	d.off = 4
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		if v := bits.ReverseBytes32(version); v == 2 || v == 3 {
			return nil, d.errAt(4, "big-endian GGUF files are not supported")
		}
		return nil, d.errAt(4, "version %d is not supported (only 2 and 3)", version)
	}
	nTensors, err := d.count("tensor count", minTensorBytes)
	if err != nil {
		return nil, err
	}
	nKV, err := d.count("metadata count", minKVBytes)
	if err != nil {
		return nil, err
	}
	f := &File{
		Path:     name,
		Version:  version,
		Metadata: make([]KV, 0, nKV),
		Tensors:  make([]TensorInfo, 0, nTensors),
		data:     data,
		keys:     make(map[string]int, nKV),
		names:    make(map[string]int, nTensors),
	}
	alignAt := 0
	for i := range nKV {
		at := d.off
		key, err := d.str("metadata key " + strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		if key == "" || len(key) > maxKeyLen {
			return nil, d.errAt(at, "metadata key %d: length %d is outside 1..%d", i, len(key), maxKeyLen)
		}
		if _, dup := f.keys[key]; dup {
			return nil, d.errAt(at, "metadata key %q appears twice", key)
		}
		tat := d.off
		t, err := d.u32("type of key " + strconv.Quote(key))
		if err != nil {
			return nil, err
		}
		if !ValueType(t).Valid() {
			return nil, d.errAt(tat, "key %q: unknown value type %d", key, t)
		}
		v, err := d.value(ValueType(t), 0, "key "+strconv.Quote(key))
		if err != nil {
			return nil, err
		}
		if key == "general.alignment" {
			alignAt = at
		}
		f.keys[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}

	f.Alignment = DefaultAlignment
	if v, ok := f.Lookup("general.alignment"); ok {
		a, ok := v.Uint64()
		if !ok || v.Type == Bool || a == 0 || a > math.MaxUint32 || a&(a-1) != 0 {
			return nil, d.errAt(alignAt, "general.alignment is %s %v, want a power of two that fits uint32", v.TypeName(), v.x)
		}
		f.Alignment = a
	}

	offsets := make([]int, nTensors) // where each tensor's entry starts, for errors
	for i := range nTensors {
		at := d.off
		offsets[i] = at
		t, err := d.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.names[t.Name]; dup {
			return nil, d.errAt(at, "tensor %q appears twice", t.Name)
		}
		f.names[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	headerEnd := uint64(d.off)
	f.DataOffset = alignUp(headerEnd, f.Alignment)
	if nTensors == 0 {
		return f, nil
	}
	if f.DataOffset > uint64(len(data)) {
		return nil, d.errAt(d.off, "tensor data section at %d starts past the end of the file (%d bytes)", f.DataOffset, len(data))
	}
	dataLen := uint64(len(data)) - f.DataOffset
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return nil, d.errAt(offsets[i], "tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return nil, d.errAt(offsets[i], "tensor %q: data [%d, %d+%d) runs past the end of the data section (%d bytes)", t.Name, t.Offset, t.Offset, t.Size, dataLen)
		}
	}
	order := make([]int, nTensors)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		oa, ob := f.Tensors[a].Offset, f.Tensors[b].Offset
		if oa < ob {
			return -1
		}
		if oa > ob {
			return 1
		}
		return a - b
	})
	for k := 1; k < len(order); k++ {
		prev, cur := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if prev.Offset+prev.Size > cur.Offset {
			return nil, d.errAt(offsets[order[k]], "tensor %q (data at %d) overlaps tensor %q (data [%d, %d))",
				cur.Name, cur.Offset, prev.Name, prev.Offset, prev.Offset+prev.Size)
		}
	}
	return f, nil
}

func alignUp(x, a uint64) uint64 {
	if r := x % a; r != 0 {
		return x + a - r
	}
	return x
}

// tensorInfo reads and checks entry i of the tensor table, all but its
// place in the data section, which needs the whole table.
func (d *decoder) tensorInfo(i int) (TensorInfo, error) {
	at := d.off
	name, err := d.str("tensor " + strconv.Itoa(i) + " name")
	if err != nil {
		return TensorInfo{}, err
	}
	if name == "" {
		return TensorInfo{}, d.errAt(at, "tensor %d has an empty name", i)
	}
	what := "tensor " + strconv.Quote(name)
	nDims, err := d.u32(what + " dimension count")
	if err != nil {
		return TensorInfo{}, err
	}
	if nDims == 0 || nDims > MaxDims {
		return TensorInfo{}, d.errAt(at, "%s: %d dimensions, want 1..%d", what, nDims, MaxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]uint64, nDims)}
	elems := uint64(1)
	for j := range t.Dims {
		n, err := d.u64(what + " dimension")
		if err != nil {
			return TensorInfo{}, err
		}
		if n == 0 {
			return TensorInfo{}, d.errAt(at, "%s: dimension %d is 0", what, j)
		}
		hi, lo := bits.Mul64(elems, n)
		if hi != 0 || lo > math.MaxInt64 {
			return TensorInfo{}, d.errAt(at, "%s: dimensions %v overflow the element count", what, t.Dims[:j+1])
		}
		t.Dims[j] = n
		elems = lo
	}
	typ, err := d.u32(what + " type")
	if err != nil {
		return TensorInfo{}, err
	}
	t.Type = ggml.Type(typ)
	if !t.Type.Known() {
		return TensorInfo{}, d.errAt(at, "%s: unknown tensor type %d", what, typ)
	}
	if t.Offset, err = d.u64(what + " offset"); err != nil {
		return TensorInfo{}, err
	}
	if t.Size, err = tensorBytes(t.Type, t.Dims); err != nil {
		return TensorInfo{}, d.errAt(at, "%s: %v", what, err)
	}
	return t, nil
}

// tensorBytes is the data size of a tensor, checked against overflow; dims
// must be non-zero.
func tensorBytes(typ ggml.Type, dims []uint64) (uint64, error) {
	if len(dims) == 0 {
		return 0, fmt.Errorf("no dimensions")
	}
	if dims[0] > math.MaxInt {
		return 0, fmt.Errorf("row of %d values is too long", dims[0])
	}
	row, err := typ.RowBytes(int(dims[0]))
	if err != nil {
		return 0, fmt.Errorf("dims %v: %w", dims, err)
	}
	size := uint64(row)
	for _, n := range dims[1:] {
		hi, lo := bits.Mul64(size, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v: byte size overflows", dims)
		}
		size = lo
	}
	return size, nil
}
