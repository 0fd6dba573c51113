package kernels

import (
	"math"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// Float helpers for an fp16 KV cache and other float32 work the model does
// beside the matrix products.

// DotF32F16 returns the dot product of a and the fp16 values b (len(b) >= len(a)).
func DotF32F16(a []float32, b []uint16) float32 {
	if len(b) < len(a) {
		panic("kernels: DotF32F16 length mismatch")
	}
	return impl.dotF32F16(a, b[:len(a)])
}

// AxpyF16 adds alpha times the fp16 values x to y (len(x) >= len(y)).
func AxpyF16(alpha float32, x []uint16, y []float32) {
	if len(x) < len(y) {
		panic("kernels: AxpyF16 length mismatch")
	}
	impl.axpyF16(alpha, x[:len(y)], y)
}

// F32ToF16 rounds src to fp16 (nearest even) into dst (len(dst) >= len(src)).
func F32ToF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic("kernels: F32ToF16 length mismatch")
	}
	impl.f32ToF16(dst[:len(src)], src)
}

// F16ToF32 widens the fp16 values src into dst (len(dst) >= len(src)).
func F16ToF32(dst []float32, src []uint16) {
	if len(dst) < len(src) {
		panic("kernels: F16ToF32 length mismatch")
	}
	impl.f16ToF32(dst[:len(src)], src)
}

// DotsF32F16 sets dst[p] = scale * dot(q, k[p*stride : p*stride+len(q)])
// for every p < len(dst): the attention scores of one query against a run
// of fp16 cached keys, in one call.
func DotsF32F16(dst []float32, q []float32, k []uint16, stride int, scale float32) {
	if n := len(dst); n > 0 && (stride < len(q) || len(k) < (n-1)*stride+len(q)) {
		panic("kernels: DotsF32F16 keys out of range")
	}
	impl.dotsF32F16(dst, q, k, stride, scale)
}

// AxpysF16 adds a[p] * v[p*stride : p*stride+len(y)] to y for every
// p < len(a): the attention-weighted sum of fp16 cached values, in one call.
func AxpysF16(y []float32, a []float32, v []uint16, stride int) {
	if n := len(a); n > 0 && (stride < len(y) || len(v) < (n-1)*stride+len(y)) {
		panic("kernels: AxpysF16 values out of range")
	}
	impl.axpysF16(y, a, v, stride)
}

func dotsF32F16Go(dst []float32, q []float32, k []uint16, stride int, scale float32) {
	for p := range dst {
		dst[p] = scale * dotF32F16Go(q, k[p*stride:p*stride+len(q)])
	}
}

func axpysF16Go(y []float32, a []float32, v []uint16, stride int) {
	for p, ap := range a {
		axpyF16Go(ap, v[p*stride:p*stride+len(y)], y)
	}
}

func dotF32F16Go(a []float32, b []uint16) float32 {
	var s0, s1 float32
	j := 0
	for ; j+2 <= len(a); j += 2 {
		s0 += a[j] * fp16ToF32(b[j])
		s1 += a[j+1] * fp16ToF32(b[j+1])
	}
	for ; j < len(a); j++ {
		s0 += a[j] * fp16ToF32(b[j])
	}
	return s0 + s1
}

func axpyF16Go(alpha float32, x []uint16, y []float32) {
	for j := range y {
		y[j] += alpha * fp16ToF32(x[j])
	}
}

func f32ToF16Go(dst []uint16, src []float32) {
	for j, v := range src {
		dst[j] = ggml.Float32ToFP16(v)
	}
}

func f16ToF32Go(dst []float32, src []uint16) {
	for j, v := range src {
		dst[j] = fp16ToF32(v)
	}
}

// Softmax replaces x by exp(x - max x) / sum, in place.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	s := impl.expSum(x, x, m)
	inv := 1 / s
	for i := range x {
		x[i] *= inv
	}
}

// SiLUMul sets g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i]
// (len(u) >= len(g)): the SwiGLU gate of a feed-forward layer.
func SiLUMul(g, u []float32) {
	if len(u) < len(g) {
		panic("kernels: SiLUMul length mismatch")
	}
	impl.siluMul(g, u[:len(g)])
}

// expSumGo sets dst[i] = exp(src[i] - sub) and returns their sum.
func expSumGo(dst, src []float32, sub float32) float32 {
	var s float32
	for i, v := range src {
		e := float32(math.Exp(float64(v - sub)))
		dst[i] = e
		s += e
	}
	return s
}

func siluMulGo(g, u []float32) {
	for i, v := range g {
		g[i] = float32(float64(v) / (1 + math.Exp(-float64(v))) * float64(u[i]))
	}
}
