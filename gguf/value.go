package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ValueType is the type tag of a GGUF metadata value, with the ids the
// format stores.
type ValueType uint32

const (
	Uint8   ValueType = 0
	Int8    ValueType = 1
	Uint16  ValueType = 2
	Int16   ValueType = 3
	Uint32  ValueType = 4
	Int32   ValueType = 5
	Float32 ValueType = 6
	Bool    ValueType = 7
	String  ValueType = 8
	Array   ValueType = 9
	Uint64  ValueType = 10
	Int64   ValueType = 11
	Float64 ValueType = 12
)

var valueTypeNames = [...]string{
	Uint8: "uint8", Int8: "int8", Uint16: "uint16", Int16: "int16",
	Uint32: "uint32", Int32: "int32", Float32: "float32", Bool: "bool",
	String: "string", Array: "array", Uint64: "uint64", Int64: "int64",
	Float64: "float64",
}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "valuetype(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Valid reports whether t is one of the thirteen GGUF value types.
func (t ValueType) Valid() bool { return t <= Float64 }

// size is the encoded size of a scalar of type t; 0 for String and Array,
// whose size depends on their contents.
func (t ValueType) size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64:
		return 8
	}
	return 0
}

// Value is one metadata value. Scalars hold the Go type matching Type
// (uint8 ... float64, bool, string). Arrays hold a typed slice matching
// Elem ([]uint8 ... []float64, []bool, []string), or []Value when the
// elements are themselves arrays.
type Value struct {
	Type ValueType
	Elem ValueType // element type when Type == Array
	x    any
}

// Scalar constructors, for building metadata to write.

func Uint8Value(x uint8) Value     { return Value{Type: Uint8, x: x} }
func Int8Value(x int8) Value       { return Value{Type: Int8, x: x} }
func Uint16Value(x uint16) Value   { return Value{Type: Uint16, x: x} }
func Int16Value(x int16) Value     { return Value{Type: Int16, x: x} }
func Uint32Value(x uint32) Value   { return Value{Type: Uint32, x: x} }
func Int32Value(x int32) Value     { return Value{Type: Int32, x: x} }
func Uint64Value(x uint64) Value   { return Value{Type: Uint64, x: x} }
func Int64Value(x int64) Value     { return Value{Type: Int64, x: x} }
func Float32Value(x float32) Value { return Value{Type: Float32, x: x} }
func Float64Value(x float64) Value { return Value{Type: Float64, x: x} }
func BoolValue(x bool) Value       { return Value{Type: Bool, x: x} }
func StringValue(x string) Value   { return Value{Type: String, x: x} }

// ArrayElem is the set of Go element types a GGUF array can hold directly.
type ArrayElem interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | uint64 | int64 |
		float32 | float64 | bool | string
}

// ArrayValue makes an array value of xs. The slice is kept, not copied.
func ArrayValue[T ArrayElem](xs []T) Value {
	if xs == nil {
		xs = []T{}
	}
	et, _ := elemTypeOf(xs)
	return Value{Type: Array, Elem: et, x: xs}
}

// elemTypeOf maps a typed slice to its GGUF element type.
func elemTypeOf(xs any) (ValueType, bool) {
	switch xs.(type) {
	case []uint8:
		return Uint8, true
	case []int8:
		return Int8, true
	case []uint16:
		return Uint16, true
	case []int16:
		return Int16, true
	case []uint32:
		return Uint32, true
	case []int32:
		return Int32, true
	case []uint64:
		return Uint64, true
	case []int64:
		return Int64, true
	case []float32:
		return Float32, true
	case []float64:
		return Float64, true
	case []bool:
		return Bool, true
	case []string:
		return String, true
	case []Value:
		return Array, true
	}
	return 0, false
}

// NestedArrayValue makes an array whose elements are arrays. Every element
// must itself be an array value.
func NestedArrayValue(xs []Value) (Value, error) {
	for i, v := range xs {
		if v.Type != Array {
			return Value{}, fmt.Errorf("nested array element %d has type %s, want array", i, v.Type)
		}
	}
	if xs == nil {
		xs = []Value{}
	}
	return Value{Type: Array, Elem: Array, x: xs}, nil
}

// Any returns the Go value: a scalar of the matching Go type, a typed slice
// for arrays of scalars, or []Value for arrays of arrays.
func (v Value) Any() any { return v.x }

// Len is the number of elements of an array, 0 for a scalar.
func (v Value) Len() int {
	if v.Type != Array {
		return 0
	}
	return sliceLen(v.x)
}

func sliceLen(x any) int {
	switch s := x.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []Value:
		return len(s)
	}
	return 0
}

// Int64 returns an integer scalar as int64; ok is false for other types and
// for uint64 values above math.MaxInt64.
func (v Value) Int64() (int64, bool) {
	switch x := v.x.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// Uint64 returns a non-negative integer scalar as uint64.
func (v Value) Uint64() (uint64, bool) {
	if x, ok := v.x.(uint64); ok {
		return x, true
	}
	i, ok := v.Int64()
	if !ok || i < 0 {
		return 0, false
	}
	return uint64(i), true
}

// Float64 returns a float32 or float64 scalar as float64.
func (v Value) Float64() (float64, bool) {
	switch x := v.x.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Str returns a string scalar.
func (v Value) Str() (string, bool) {
	s, ok := v.x.(string)
	return s, ok
}

// BoolVal returns a bool scalar.
func (v Value) BoolVal() (bool, bool) {
	b, ok := v.x.(bool)
	return b, ok
}

// Index returns element i of an array as a Value.
func (v Value) Index(i int) Value {
	switch s := v.x.(type) {
	case []uint8:
		return Uint8Value(s[i])
	case []int8:
		return Int8Value(s[i])
	case []uint16:
		return Uint16Value(s[i])
	case []int16:
		return Int16Value(s[i])
	case []uint32:
		return Uint32Value(s[i])
	case []int32:
		return Int32Value(s[i])
	case []uint64:
		return Uint64Value(s[i])
	case []int64:
		return Int64Value(s[i])
	case []float32:
		return Float32Value(s[i])
	case []float64:
		return Float64Value(s[i])
	case []bool:
		return BoolValue(s[i])
	case []string:
		return StringValue(s[i])
	case []Value:
		return s[i]
	}
	panic(fmt.Sprintf("gguf: Index on a %s value", v.Type))
}

// TypeName describes the type, with the element type for arrays
// ("array[string]").
func (v Value) TypeName() string {
	if v.Type == Array {
		return "array[" + v.Elem.String() + "]"
	}
	return v.Type.String()
}

// String formats the value for people; long arrays are abbreviated.
func (v Value) String() string {
	if v.Type != Array {
		if s, ok := v.x.(string); ok {
			return strconv.Quote(s)
		}
		return fmt.Sprint(v.x)
	}
	const show = 8
	n := v.Len()
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n && i < show; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.Index(i).String())
	}
	if n > show {
		fmt.Fprintf(&b, ", ... (%d %s)", n, v.Elem)
	}
	b.WriteByte(']')
	return b.String()
}
