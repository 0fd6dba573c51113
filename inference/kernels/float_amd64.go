//go:build amd64 && !purego

package kernels

import (
	"unsafe"

	"github.com/foretoken/foretoken/gguf/ggml"
)

//go:noescape
func dotF16AVX2(w *byte, x *float32, n int) float32

//go:noescape
func dotBF16AVX2(w *byte, x *float32, n int) float32

//go:noescape
func dotF32AVX2(w *byte, x *float32, n int) float32

//go:noescape
func f32ToF16AVX2(dst *uint16, src *float32, n int)

//go:noescape
func f16ToF32AVX2(dst *float32, src *uint16, n int)

// The float dot products run the assembly on whole groups of 8 values and
// the last n%8 through a zero-padded copy (direct calls, so that the copy
// stays on the stack).

func dotF16Asm(w []byte, x []float32) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	m := n &^ 7
	_ = w[2*n-1]
	var s float32
	if m > 0 {
		s = dotF16AVX2(unsafe.SliceData(w), unsafe.SliceData(x), m)
	}
	if m < n {
		var wb [16]byte
		var xb [8]float32
		copy(wb[:], w[2*m:2*n])
		copy(xb[:], x[m:])
		s += dotF16AVX2(&wb[0], &xb[0], 8)
	}
	return s
}

func dotBF16Asm(w []byte, x []float32) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	m := n &^ 7
	_ = w[2*n-1]
	var s float32
	if m > 0 {
		s = dotBF16AVX2(unsafe.SliceData(w), unsafe.SliceData(x), m)
	}
	if m < n {
		var wb [16]byte
		var xb [8]float32
		copy(wb[:], w[2*m:2*n])
		copy(xb[:], x[m:])
		s += dotBF16AVX2(&wb[0], &xb[0], 8)
	}
	return s
}

func dotF32Asm(w []byte, x []float32) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	m := n &^ 7
	_ = w[4*n-1]
	var s float32
	if m > 0 {
		s = dotF32AVX2(unsafe.SliceData(w), unsafe.SliceData(x), m)
	}
	if m < n {
		var wb [32]byte
		var xb [8]float32
		copy(wb[:], w[4*m:4*n])
		copy(xb[:], x[m:])
		s += dotF32AVX2(&wb[0], &xb[0], 8)
	}
	return s
}

func f32ToF16Asm(dst []uint16, src []float32) {
	m := len(src) &^ 7
	if m > 0 {
		f32ToF16AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), m)
	}
	if m < len(src) {
		f32ToF16Go(dst[m:len(src)], src[m:])
	}
}

func f16ToF32Asm(dst []float32, src []uint16) {
	m := len(src) &^ 7
	if m > 0 {
		f16ToF32AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), m)
	}
	if m < len(src) {
		f16ToF32Go(dst[m:len(src)], src[m:])
	}
}

func setFloatAVX2(k *kernelSet) {
	k.fdot[ggml.F16] = dotF16Asm
	k.fdot[ggml.BF16] = dotBF16Asm
	k.fdot[ggml.F32] = dotF32Asm
	k.f32ToF16 = f32ToF16Asm
	k.f16ToF32 = f16ToF32Asm
}
