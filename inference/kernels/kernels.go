// Package kernels holds the numeric kernels under the model: activation
// quantization, quantized and floating-point dot products and the matrix
// product built on them. Every kernel has a pure-Go version, which is the
// reference; on amd64 faster assembly versions are chosen once at start-up
// from the CPU's features. FORETOKEN_NOASM=1 forces the Go versions.
package kernels

import (
	"fmt"
	"os"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// qdotFunc is the dot product of one quantized weight row with one
// quantized activation row (values q, block scales d, block sums s and the
// same sums times the block scale, sy).
type qdotFunc func(w []byte, q []int8, d []float32, s []int16, sy []float32) float32

// fdotFunc is the dot product of one float weight row with float32 values.
type fdotFunc func(w []byte, x []float32) float32

// tileFunc computes rows [r0,r1) of a matrix product for all tokens of in,
// reading each weight row once for several tokens.
// Row r of the weights is w[r*wStride:][:rowBytes].
type tileFunc func(dst []float32, dstStride int, w []byte, rowBytes, wStride int, in *Input, r0, r1 int)

// kernelSet is one complete choice of implementations.
type kernelSet struct {
	name      string
	quantQ8_0 func(x []float32, q []int8, d []float32, s []int16)
	quantQ8_K func(x []float32, q []int8, d []float32, s []int16)
	qdot      map[ggml.Type]qdotFunc
	fdot      map[ggml.Type]fdotFunc
	tile      map[ggml.Type]tileFunc   // optional multi-token kernels
	unpack    map[ggml.Type]unpackFunc // the tiles' unpackers
	// tileMin is the fewest tokens worth a tile (default 2) for rows of a
	// length that is not a multiple of tileMinCols.
	tileMin     map[ggml.Type]int
	tileMinCols map[ggml.Type]int
	// permQ marks the types whose single-token kernel reads the permuted
	// activations Input.qp instead of Input.q.
	permQ map[ggml.Type]bool

	f32ToF16 func(dst []uint16, src []float32)
	f16ToF32 func(dst []float32, src []uint16)
}

func goKernels() *kernelSet {
	return &kernelSet{
		name:      "go",
		quantQ8_0: quantQ8_0Go,
		quantQ8_K: quantQ8_KGo,
		qdot: map[ggml.Type]qdotFunc{
			ggml.Q8_0:   dotQ8_0Go,
			ggml.Q4_0:   dotQ4_0Go,
			ggml.Q4_1:   dotQ4_1Go,
			ggml.Q5_0:   dotQ5_0Go,
			ggml.Q5_1:   dotQ5_1Go,
			ggml.IQ4_NL: dotIQ4_NLGo,
			ggml.Q2_K:   dotQ2_KGo,
			ggml.Q3_K:   dotQ3_KGo,
			ggml.Q4_K:   dotQ4_KGo,
			ggml.Q5_K:   dotQ5_KGo,
			ggml.Q6_K:   dotQ6_KGo,
			ggml.IQ4_XS: dotIQ4_XSGo,
		},
		fdot: map[ggml.Type]fdotFunc{
			ggml.F32:  dotF32Go,
			ggml.F16:  dotF16Go,
			ggml.BF16: dotBF16Go,
		},
		tile:        map[ggml.Type]tileFunc{},
		unpack:      map[ggml.Type]unpackFunc{},
		tileMin:     map[ggml.Type]int{},
		tileMinCols: map[ggml.Type]int{},
		permQ:       map[ggml.Type]bool{},
		f32ToF16:    f32ToF16Go,
		f16ToF32:    f16ToF32Go,
	}
}

// impl is the kernel set chosen at start-up; it never changes afterwards.
var impl = chooseKernels(os.Getenv("FORETOKEN_NOASM") == "1")

// chooseKernels returns the fastest kernel set the CPU runs, or the Go set.
func chooseKernels(noasm bool) *kernelSet {
	sets := kernelSets()
	if noasm {
		return sets[0]
	}
	return sets[len(sets)-1]
}

// Impl names the implementation in use, e.g. "go" or "avx512vnni", for
// logs and benchmarks.
func Impl() string { return impl.name }

// MatMulRows computes, for t in [0,ntok) and r in [r0,r1),
//
//	dst[t*dstStride + r] = dot(row r of w, activation row t)
//
// where w holds the weight matrix rows (each cols values of type wt) and in
// was prepared for a type of the same activation form (see Input.Fits).
// Callers split [0,rows) between worker threads; it allocates nothing.
func MatMulRows(dst []float32, dstStride int, wt ggml.Type, w []byte, cols int, in *Input, r0, r1 int) {
	rowBytes := cols / max(wt.BlockSize(), 1) * wt.TypeSize()
	impl.mulRows(dst, dstStride, wt, w, cols, rowBytes, rowBytes, in, r0, r1)
}

// MatMulRowsStride is MatMulRows for weight rows wStride bytes apart
// (wStride at least the row's size): row r is w[r*wStride:], e.g. the
// rows of a transposed cache with room for more columns than it holds.
func MatMulRowsStride(dst []float32, dstStride int, wt ggml.Type, w []byte, cols, wStride int, in *Input, r0, r1 int) {
	impl.matMulRows(dst, dstStride, wt, w, cols, wStride, in, r0, r1)
}

func (k *kernelSet) matMulRows(dst []float32, dstStride int, wt ggml.Type, w []byte, cols, wStride int, in *Input, r0, r1 int) {
	k.mulRows(dst, dstStride, wt, w, cols, cols/max(wt.BlockSize(), 1)*wt.TypeSize(), wStride, in, r0, r1)
}

// mulRows is matMulRows given the size of a weight row, rowBytes. The
// model calls MatMulRows for every chunk of rows (and token, for a few
// tokens), and the type's block layout is a map look-up: once per call.
func (k *kernelSet) mulRows(dst []float32, dstStride int, wt ggml.Type, w []byte, cols, rowBytes, wStride int, in *Input, r0, r1 int) {
	if !in.Fits(wt) || in.cols != cols {
		panic(fmt.Sprintf("kernels: input prepared for %d columns in form %d, used with %v weights of %d columns", in.cols, in.form, wt, cols))
	}
	if r0 >= r1 {
		return
	}
	if wStride < rowBytes || len(w) < (r1-1)*wStride+rowBytes || (in.ntok > 0 && len(dst) < (in.ntok-1)*dstStride+r1) {
		panic(fmt.Sprintf("kernels: rows [%d,%d) of %v out of range (weights %d bytes, stride %d, dst %d)", r0, r1, wt, len(w), wStride, len(dst)))
	}
	// A tile takes 4 rows: for fewer, few tokens are cheaper one by one.
	if in.ntok > 1 && (r1-r0 >= 4 || in.ntok >= 16) && (in.ntok >= k.tileMin[wt] || cols%max(k.tileMinCols[wt], 1) == 0) {
		if tile := k.tile[wt]; tile != nil {
			tile(dst, dstStride, w, rowBytes, wStride, in, r0, r1)
			return
		}
	}
	if in.form == formF32 {
		dot := k.fdot[wt]
		for r := r0; r < r1; r++ {
			row := w[r*wStride : r*wStride+rowBytes]
			for t := 0; t < in.ntok; t++ {
				dst[t*dstStride+r] = dot(row, in.f[t*cols:(t+1)*cols])
			}
		}
		return
	}
	dot, q := k.qdot[wt], k.acts(in, wt)
	nb, ns := cols/32, cols/32 // blocks and sums per row
	if in.form == formQ8_K {
		nb, ns = cols/256, cols/16
	}
	for r := r0; r < r1; r++ {
		row := w[r*wStride : r*wStride+rowBytes]
		for t := 0; t < in.ntok; t++ {
			dst[t*dstStride+r] = dot(row, q[t*cols:(t+1)*cols], in.d[t*nb:(t+1)*nb],
				in.s[t*ns:(t+1)*ns], in.sy[t*ns:(t+1)*ns])
		}
	}
}

// acts is the int8 activations the single-token kernel of wt reads.
func (k *kernelSet) acts(in *Input, wt ggml.Type) []int8 {
	if k.permQ[wt] {
		return in.qp
	}
	return in.q
}
