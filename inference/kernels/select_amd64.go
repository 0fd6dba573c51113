//go:build amd64 && !purego

package kernels

import (
	"maps"
	"unsafe"

	"github.com/foretoken/foretoken/gguf/ggml"

	"golang.org/x/sys/cpu"
)

//go:noescape
func quantQ8_0AVX2(x *float32, q *int8, d *float32, s *int16, nb int)

//go:noescape
func quantQ8_KAVX2(x *float32, q *int8, d *float32, s *int16, nb int)

func quantQ8_0Asm(x []float32, q []int8, d []float32, s []int16) {
	if len(d) == 0 {
		return
	}
	_, _, _ = x[len(d)*32-1], q[len(d)*32-1], s[len(d)-1]
	quantQ8_0AVX2(unsafe.SliceData(x), unsafe.SliceData(q), unsafe.SliceData(d), unsafe.SliceData(s), len(d))
}

func quantQ8_KAsm(x []float32, q []int8, d []float32, s []int16) {
	if len(d) == 0 {
		return
	}
	_, _, _ = x[len(d)*256-1], q[len(d)*256-1], s[len(d)*16-1]
	quantQ8_KAVX2(unsafe.SliceData(x), unsafe.SliceData(q), unsafe.SliceData(d), unsafe.SliceData(s), len(d))
}

//go:noescape
func dotQ4_0VNNI(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ8_0VNNI(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ4_0AVX2(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ8_0AVX2(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ4_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32

//go:noescape
func dotQ6_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32

//go:noescape
func dotQ5_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32

//go:noescape
func dotQ3_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32

//go:noescape
func dotQ2_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32

//go:noescape
func dotIQ4_XSAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32

// superDot adapts an assembly kernel over nb super-blocks of bs bytes that
// reads the activations' int16 group sums to qdotFunc.
func superDot(f func(w *byte, q *int8, d *float32, s *int16, nb int) float32, bs int) qdotFunc {
	return func(w []byte, q []int8, d []float32, s []int16, sy []float32) float32 {
		nb := len(d)
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*bs-1], q[nb*256-1]
		_ = s[nb*16-1]
		return f(unsafe.SliceData(w), unsafe.SliceData(q), unsafe.SliceData(d), unsafe.SliceData(s), nb)
	}
}

//go:noescape
func dotQ4_1VNNI(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ4_1AVX2(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ5_0VNNI(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ5_0AVX2(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ5_1VNNI(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ5_1AVX2(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotIQ4_NLVNNI(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotIQ4_NLAVX2(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ4_0Z(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ4_0P(w *byte, q *int8, d *float32, sy *float32, nb int) float32

//go:noescape
func dotQ8_0Z(w *byte, q *int8, d *float32, sy *float32, nb int) float32

// blockDot8 adapts a kernel over multiples of 8 blocks (bs bytes each)
// and one for any number to qdotFunc: the first takes the bulk, the second
// the rest.
func blockDot8(f8, f func(w *byte, q *int8, d *float32, sy *float32, nb int) float32, bs int) qdotFunc {
	return func(w []byte, q []int8, d []float32, s []int16, sy []float32) float32 {
		nb := len(d)
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*bs-1], q[nb*32-1]
		_ = sy[nb-1]
		m := nb &^ 7
		var r float32
		if m > 0 {
			r = f8(unsafe.SliceData(w), unsafe.SliceData(q), unsafe.SliceData(d), unsafe.SliceData(sy), m)
		}
		if m < nb {
			r += f(&w[m*bs], &q[m*32], &d[m], &sy[m], nb-m)
		}
		return r
	}
}

// blockDot adapts an assembly kernel over nb blocks of bs bytes to qdotFunc,
// checking the slice bounds the kernel relies on.
func blockDot(f func(w *byte, q *int8, d *float32, sy *float32, nb int) float32, bs int) qdotFunc {
	return func(w []byte, q []int8, d []float32, s []int16, sy []float32) float32 {
		nb := len(d)
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*bs-1], q[len(q)-1]
		if len(sy) < nb || len(q) < nb*32 {
			panic("kernels: short activation row")
		}
		return f(unsafe.SliceData(w), unsafe.SliceData(q), unsafe.SliceData(d), unsafe.SliceData(sy), nb)
	}
}

func hasAVX2() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C && cpu.X86.HasOSXSAVE
}

func hasVNNI() bool {
	return hasAVX2() && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI
}

// kernelSets lists the kernel sets this machine runs, slowest first.
func kernelSets() []*kernelSet {
	sets := []*kernelSet{goKernels()}
	if !hasAVX2() {
		return sets
	}
	k := goKernels()
	k.name = "avx2"
	k.quantQ8_0 = quantQ8_0Asm
	k.quantQ8_K = quantQ8_KAsm
	k.qdot[ggml.Q4_0] = blockDot(dotQ4_0AVX2, 18)
	k.qdot[ggml.Q8_0] = blockDot(dotQ8_0AVX2, 34)
	k.qdot[ggml.Q4_1] = blockDot(dotQ4_1AVX2, 20)
	k.qdot[ggml.Q5_0] = blockDot(dotQ5_0AVX2, 22)
	k.qdot[ggml.Q5_1] = blockDot(dotQ5_1AVX2, 24)
	k.qdot[ggml.IQ4_NL] = blockDot(dotIQ4_NLAVX2, 18)
	k.qdot[ggml.Q4_K] = superDot(dotQ4_KAVX2, 144)
	k.qdot[ggml.Q6_K] = superDot(dotQ6_KAVX2, 210)
	k.qdot[ggml.Q5_K] = superDot(dotQ5_KAVX2, 176)
	k.qdot[ggml.Q3_K] = superDot(dotQ3_KAVX2, 110)
	k.qdot[ggml.Q2_K] = superDot(dotQ2_KAVX2, 84)
	k.qdot[ggml.IQ4_XS] = superDot(dotIQ4_XSAVX2, 136)
	setFloatAVX2(k)
	sets = append(sets, k)
	if !hasVNNI() {
		return sets
	}
	v := *k
	v.name = "avx512vnni"
	v.qdot = maps.Clone(k.qdot)
	v.fdot = maps.Clone(k.fdot)
	v.tile = maps.Clone(k.tile)
	v.tileMin = maps.Clone(k.tileMin)
	v.tileMinCols = maps.Clone(k.tileMinCols)
	v.permQ = maps.Clone(k.permQ)
	v.qdot[ggml.Q4_0] = blockDot8(dotQ4_0Z, dotQ4_0VNNI, 18)
	v.qdot[ggml.Q8_0] = blockDot8(dotQ8_0Z, dotQ8_0VNNI, 34)
	v.qdot[ggml.Q4_1] = blockDot(dotQ4_1VNNI, 20)
	v.qdot[ggml.Q5_0] = blockDot(dotQ5_0VNNI, 22)
	v.qdot[ggml.Q5_1] = blockDot(dotQ5_1VNNI, 24)
	v.qdot[ggml.IQ4_NL] = blockDot(dotIQ4_NLVNNI, 18)
	setTilesVNNI(&v)
	if cpu.X86.HasAVX512VBMI {
		v.permQ = map[ggml.Type]bool{ggml.Q4_0: true}
		v.qdot[ggml.Q4_0] = blockDot8(dotQ4_0P, dotQ4_0VNNI, 18)
	}
	return append(sets, &v)
}
