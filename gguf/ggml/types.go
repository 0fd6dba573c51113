// Package ggml describes ggml's tensor types: their ids as stored in GGUF
// files, their block layouts and sizes, and conversions between blocks and
// float32 values.
package ggml

import (
	"fmt"
	"strings"
)

// Type is a ggml tensor type id as stored in a GGUF tensor table.
type Type uint32

const (
	F32    Type = 0
	F16    Type = 1
	Q4_0   Type = 2
	Q4_1   Type = 3
	Q5_0   Type = 6
	Q5_1   Type = 7
	Q8_0   Type = 8
	Q8_1   Type = 9
	Q2_K   Type = 10
	Q3_K   Type = 11
	Q4_K   Type = 12
	Q5_K   Type = 13
	Q6_K   Type = 14
	Q8_K   Type = 15
	IQ4_NL Type = 20
	IQ4_XS Type = 23
	I8     Type = 24
	I16    Type = 25
	I32    Type = 26
	I64    Type = 27
	F64    Type = 28
	BF16   Type = 30
)

// QK_K is the number of values in a super-block of the K-quants and IQ4_XS.
const QK_K = 256

type layout struct {
	name      string
	blockSize int // values per block
	typeSize  int // bytes per block
}

var layouts = map[Type]layout{
	F32:    {"F32", 1, 4},
	F16:    {"F16", 1, 2},
	BF16:   {"BF16", 1, 2},
	F64:    {"F64", 1, 8},
	I8:     {"I8", 1, 1},
	I16:    {"I16", 1, 2},
	I32:    {"I32", 1, 4},
	I64:    {"I64", 1, 8},
	Q4_0:   {"Q4_0", 32, 2 + 16},
	Q4_1:   {"Q4_1", 32, 2 + 2 + 16},
	Q5_0:   {"Q5_0", 32, 2 + 4 + 16},
	Q5_1:   {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0:   {"Q8_0", 32, 2 + 32},
	Q8_1:   {"Q8_1", 32, 4 + 32},
	Q2_K:   {"Q2_K", QK_K, QK_K/16 + QK_K/4 + 2 + 2},
	Q3_K:   {"Q3_K", QK_K, QK_K/8 + QK_K/4 + 12 + 2},
	Q4_K:   {"Q4_K", QK_K, 2 + 2 + 12 + QK_K/2},
	Q5_K:   {"Q5_K", QK_K, 2 + 2 + 12 + QK_K/8 + QK_K/2},
	Q6_K:   {"Q6_K", QK_K, QK_K/2 + QK_K/4 + QK_K/16 + 2},
	Q8_K:   {"Q8_K", QK_K, 4 + QK_K + QK_K/16*2},
	IQ4_NL: {"IQ4_NL", 32, 2 + 16},
	IQ4_XS: {"IQ4_XS", QK_K, 2 + 2 + QK_K/64 + QK_K/2},
}

// Known reports whether t is a type this package knows the layout of.
func (t Type) Known() bool { _, ok := layouts[t]; return ok }

func (t Type) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of values one block holds (1 for plain types).
// It is 0 for an unknown type.
func (t Type) BlockSize() int { return layouts[t].blockSize }

// TypeSize is the number of bytes one block takes. It is 0 for an unknown type.
func (t Type) TypeSize() int { return layouts[t].typeSize }

// Quantized reports whether t stores values in blocks of more than one value.
func (t Type) Quantized() bool { return layouts[t].blockSize > 1 }

// RowBytes returns the bytes taken by n values of type t. n must be a
// multiple of the block size.
func (t Type) RowBytes(n int) (int, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%l.blockSize != 0 {
		return 0, fmt.Errorf("%d values is not a whole number of %s blocks of %d", n, l.name, l.blockSize)
	}
	return n / l.blockSize * l.typeSize, nil
}

// ParseType maps a type name such as "q4_k" or "F16" to its Type.
func ParseType(name string) (Type, error) {
	for t, l := range layouts {
		if strings.EqualFold(l.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}
