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
func axpyF16AVX2(alpha float32, x *uint16, y *float32, n int)

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

func dotF32F16Asm(a []float32, b []uint16) float32 {
	m := len(a) &^ 7
	var s float32
	if m > 0 {
		s = dotF16AVX2((*byte)(unsafe.Pointer(unsafe.SliceData(b))), unsafe.SliceData(a), m)
	}
	if m < len(a) {
		s += dotF32F16Go(a[m:], b[m:len(a)])
	}
	return s
}

func axpyF16Asm(alpha float32, x []uint16, y []float32) {
	m := len(y) &^ 7
	if m > 0 {
		axpyF16AVX2(alpha, unsafe.SliceData(x), unsafe.SliceData(y), m)
	}
	if m < len(y) {
		axpyF16Go(alpha, x[m:len(y)], y[m:])
	}
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
	k.dotF32F16 = dotF32F16Asm
	k.axpyF16 = axpyF16Asm
	k.f32ToF16 = f32ToF16Asm
	k.f16ToF32 = f16ToF32Asm
	k.dotsF32F16 = dotsF32F16Asm
	k.axpysF16 = axpysF16Asm
	k.expSum = expSumAsm
	k.siluMul = siluMulAsm
}

//go:noescape
func expSumAVX2(dst, src *float32, n int, sub float32) float32

//go:noescape
func siluMulAVX2(gate, up *float32, n int)

func expSumAsm(dst, src []float32, sub float32) float32 {
	m := len(src) &^ 7
	var s float32
	if m > 0 {
		_ = dst[m-1]
		s = expSumAVX2(unsafe.SliceData(dst), unsafe.SliceData(src), m, sub)
	}
	if m < len(src) {
		s += expSumGo(dst[m:len(src)], src[m:], sub)
	}
	return s
}

func siluMulAsm(g, u []float32) {
	m := len(g) &^ 7
	if m > 0 {
		_ = u[m-1]
		siluMulAVX2(unsafe.SliceData(g), unsafe.SliceData(u), m)
	}
	if m < len(g) {
		siluMulGo(g[m:], u[m:len(g)])
	}
}

//go:noescape
func dotsF32F16AVX2(dst *float32, q *float32, k *uint16, n, m, stride int, scale float32)

//go:noescape
func axpysF16AVX2(y *float32, a *float32, v *uint16, n, m, stride int)

func dotsF32F16Asm(dst []float32, q []float32, k []uint16, stride int, scale float32) {
	m := len(q) &^ 7
	if m == 0 || len(dst) == 0 {
		dotsF32F16Go(dst, q, k, stride, scale)
		return
	}
	dotsF32F16AVX2(unsafe.SliceData(dst), unsafe.SliceData(q), unsafe.SliceData(k), len(dst), m, stride, scale)
	if m < len(q) {
		for p := range dst {
			dst[p] += scale * dotF32F16Go(q[m:], k[p*stride+m:p*stride+len(q)])
		}
	}
}

func axpysF16Asm(y []float32, a []float32, v []uint16, stride int) {
	m := len(y) &^ 7
	if m > 0 && len(a) > 0 {
		axpysF16AVX2(unsafe.SliceData(y), unsafe.SliceData(a), unsafe.SliceData(v), len(a), m, stride)
	}
	if m < len(y) {
		for p, ap := range a {
			axpyF16Go(ap, v[p*stride+m:p*stride+len(y)], y[m:])
		}
	}
}
