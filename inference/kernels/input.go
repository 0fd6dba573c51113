package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// form is the representation an Input holds its activations in.
type form uint8

const (
	formNone form = iota
	formF32       // float32 as given, for F32/F16/BF16 weights
	formQ8_0      // blocks of 32 int8 with a float32 scale and an int16 sum
	formQ8_K      // blocks of 256 int8 with a float32 scale and 16 int16 sums
)

func formOf(wt ggml.Type) form {
	switch wt {
	case ggml.F32, ggml.F16, ggml.BF16:
		return formF32
	case ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.IQ4_NL:
		return formQ8_0
	case ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.IQ4_XS:
		return formQ8_K
	}
	return formNone
}

// Supported reports whether MatMulRows handles weights of type wt.
func Supported(wt ggml.Type) bool { return formOf(wt) != formNone }

// Input holds ntok activation rows of cols float32s converted once to the
// form the dot product for weight type wt wants (Q8_0 blocks for the 32-value
// types, Q8_K blocks for the K-quants and IQ4_XS, float32 for F32/F16/BF16).
// Its buffers are reused: no allocation after warm-up.
//
// The quantized forms keep the int8 values of all rows in one slice, the
// block scales as float32 (not fp16 as ggml's block_q8_0 does: this is both
// more exact and what the SIMD kernels want) and per-block integer sums,
// which let unsigned-weight kernels fold in their offsets and minimums.
type Input struct {
	form       form
	rounding   rounding
	ntok, cols int
	f          []float32 // formF32: ntok*cols
	fp         []float32 // formF32 for the batched kernels: rows padded to 16 values
	h          []uint16  // scratch for rounding f to fp16
	q          []int8    // quantized values: ntok*cols
	qp         []int8    // q permuted for kernels that want it (see permute4)
	d          []float32 // one scale per block
	s          []int16   // formQ8_0: one sum per block; formQ8_K: one per 16 values
	sy         []float32 // s times its block's scale

	// The batched kernels' copy (see unpack.go), made only when the
	// kernel set has them: per token a record of tpRecord bytes with the
	// reordered int8s of nsuper super-chunks, then per super-chunk 16
	// scales, 16 group sums times scale and the 16 integer group sums.
	nsuper   int
	tpRecord int
	tp       []byte

	// For Q8_K activations also a copy in 32-value groups (the Q8_0
	// layout), for the K-quants with scales per 32 values.
	nsuper32   int
	tp32Record int
	tp32       []byte
}

// Fits reports whether the prepared input can be multiplied with weights of
// type wt, which is so for every type sharing the activation form of the type
// given to Prepare (e.g. Q4_K and Q6_K, or Q4_0 and Q8_0).
func (in *Input) Fits(wt ggml.Type) bool {
	return in.form != formNone && formOf(wt) == in.form && roundingOf(wt) == in.rounding
}

// rounding tells apart the weight types whose activations share a form but
// are rounded differently, as llama.cpp's vec_dot_type does: F16 and BF16
// weights multiply activations rounded to their own type, Q4_1 and Q5_1
// take Q8_1 blocks, whose scaled sums are rounded to fp16.
type rounding uint8

const (
	roundNone rounding = iota
	roundF16
	roundBF16
	roundQ8_1
)

func roundingOf(wt ggml.Type) rounding {
	switch wt {
	case ggml.F16:
		return roundF16
	case ggml.BF16:
		return roundBF16
	case ggml.Q4_1, ggml.Q5_1:
		return roundQ8_1
	}
	return roundNone
}

// Tokens returns the number of activation rows prepared.
func (in *Input) Tokens() int { return in.ntok }

// Prepare converts ntok rows of cols values (x holds them one after
// another) into the form the weight type wt multiplies with. cols must be a
// multiple of wt's block size; violating that is a programming error and
// panics.
func (in *Input) Prepare(wt ggml.Type, x []float32, ntok, cols int) {
	in.prepare(impl, wt, x, ntok, cols)
}

func (in *Input) prepare(k *kernelSet, wt ggml.Type, x []float32, ntok, cols int) {
	f := formOf(wt)
	if f == formNone {
		panic(fmt.Sprintf("kernels: no matrix product for weight type %v", wt))
	}
	if bs := wt.BlockSize(); cols%bs != 0 {
		panic(fmt.Sprintf("kernels: %d columns is not a whole number of %v blocks", cols, wt))
	}
	if len(x) < ntok*cols {
		panic(fmt.Sprintf("kernels: %d activations for %d rows of %d", len(x), ntok, cols))
	}
	in.form, in.rounding, in.ntok, in.cols = f, roundingOf(wt), ntok, cols
	n := ntok * cols
	switch f {
	case formF32:
		in.f = grow(in.f, n)
		copy(in.f, x[:n])
		switch in.rounding {
		case roundF16:
			in.h = grow(in.h, n)
			k.f32ToF16(in.h, in.f)
			k.f16ToF32(in.f, in.h)
		case roundBF16:
			for i, v := range in.f {
				in.f[i] = ggml.BF16ToFloat32(ggml.Float32ToBF16(v))
			}
		}
		if len(k.tile) > 0 && ntok > 1 && cols%16 != 0 {
			cp := (cols + 15) / 16 * 16
			in.fp = grow(in.fp, ntok*cp)
			for t := 0; t < ntok; t++ {
				r := in.fp[t*cp : (t+1)*cp]
				copy(r, in.f[t*cols:(t+1)*cols])
				clear(r[cols:])
			}
		}
	case formQ8_0:
		in.q = grow(in.q, n)
		in.d = grow(in.d, n/32)
		in.s = grow(in.s, n/32)
		in.sy = grow(in.sy, n/32)
		k.quantQ8_0(x[:n], in.q, in.d, in.s)
		// ggml keeps the scale of a Q8_0 (or Q8_1) block as fp16, and a
		// Q8_1 block's sum times the float32 scale as fp16 too. The
		// network amplifies even these small differences (a change of
		// 1e-4 in an activation moves the logits by 0.05 through later
		// roundings to int8), so they must be the same.
		for b, s := range in.s {
			d := in.d[b]
			in.d[b] = ggml.FP16ToFloat32(ggml.Float32ToFP16(d))
			if in.rounding == roundQ8_1 {
				in.sy[b] = ggml.FP16ToFloat32(ggml.Float32ToFP16(float32(s) * d))
			} else {
				in.sy[b] = float32(s) * in.d[b]
			}
		}
		if len(k.tile) > 0 && ntok > 1 {
			in.reorder32()
		}
		if len(k.permQ) > 0 {
			in.qp = grow(in.qp, n)
			permute4(in.qp, in.q, ntok, cols)
		}
	case formQ8_K:
		in.q = grow(in.q, n)
		in.d = grow(in.d, n/256)
		in.s = grow(in.s, n/16)
		in.sy = grow(in.sy, n/16)
		k.quantQ8_K(x[:n], in.q, in.d, in.s)
		for g, s := range in.s {
			in.sy[g] = float32(s) * in.d[g/16]
		}
		if len(k.tile) > 0 && ntok > 1 {
			in.reorderK()
		}
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// roundMagic added and subtracted in float32 rounds to the nearest integer,
// ties to even, for |v| < 2^22: the same rounding as VCVTPS2DQ, so the Go and
// assembly quantizers agree bit for bit.
const roundMagic = 12582912 // 1.5 * 2^23

func absMax(x []float32) float32 {
	var m float32
	for _, v := range x {
		a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
		if a > m {
			m = a
		}
	}
	return m
}

// quantBlock rounds x/d to int8 with d = max|x|/127 and returns d.
func quantBlock(x []float32, q []int8) float32 {
	d := absMax(x) / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for j, v := range x {
		t := float32(v * id) // the conversion keeps the compiler from fusing
		q[j] = int8(int32(float32(t+roundMagic) - roundMagic))
	}
	return d
}

func quantQ8_0Go(x []float32, q []int8, d []float32, s []int16) {
	for b := range d {
		xs, qs := x[b*32:b*32+32], q[b*32:b*32+32]
		d[b] = quantBlock(xs, qs)
		s[b] = sum16(qs)
	}
}

func quantQ8_KGo(x []float32, q []int8, d []float32, s []int16) {
	for b := range d {
		d[b] = quantBlock(x[b*256:b*256+256], q[b*256:b*256+256])
		for g := 0; g < 16; g++ {
			o := b*256 + g*16
			s[b*16+g] = sum16(q[o : o+16])
		}
	}
}

func sum16(q []int8) int16 {
	var s int16
	for _, v := range q {
		s += int16(v)
	}
	return s
}

// reorder32 makes the batched kernels' copy of Q8_0 activations: per
// super-chunk of 16 blocks, 4-byte word c of block i goes to word c*16+i;
// missing blocks are zero.
func (in *Input) reorder32() {
	nb := in.cols / 32
	in.nsuper, in.tpRecord, in.tp = reorderBlocks(in.tp, in.q, in.ntok, nb, func(t, b int) (float32, float32, int16) {
		return in.d[t*nb+b], in.sy[t*nb+b], in.s[t*nb+b]
	})
}

// reorderBlocks writes the records of ntok rows of nb blocks of 32 int8s
// (q) into tp, with each block's scale, scaled sum and sum from f, and
// returns the super-chunk count, the record size and tp.
func reorderBlocks(tp []byte, q []int8, ntok, nb int, f func(t, b int) (float32, float32, int16)) (int, int, []byte) {
	ns := (nb + 15) / 16
	record := ns*512 + ns*192
	tp = grow(tp, ntok*record)
	src := words(q)
	for t := 0; t < ntok; t++ {
		rec := tp[t*record : (t+1)*record]
		d := words8(rec[:ns*512])
		s := src[t*nb*8 : (t+1)*nb*8]
		for b := 0; b < ns*16; b++ {
			o := b>>4<<7 | b&15
			for c := 0; c < 8; c++ {
				var v uint32
				if b < nb {
					v = s[b*8+c]
				}
				d[o+c*16] = v
			}
		}
		fl := floats(rec[ns*512:])
		si := words8(rec[ns*512:])
		for b := 0; b < ns*16; b++ {
			var dy, sy float32
			var sum int16
			if b < nb {
				dy, sy, sum = f(t, b)
			}
			o := b>>4*48 | b&15
			fl[o], fl[o+16], si[o+32] = dy, sy, uint32(int32(sum))
		}
	}
	return ns, record, tp
}

// reorderK is reorder32 for Q8_K super-blocks: word c of group g goes to
// word c*16+g.
func (in *Input) reorderK() {
	nb, ng := in.cols/32, in.cols/16
	in.nsuper32, in.tp32Record, in.tp32 = reorderBlocks(in.tp32, in.q, in.ntok, nb, func(t, b int) (float32, float32, int16) {
		s := in.s[t*ng+2*b] + in.s[t*ng+2*b+1]
		return in.d[(t*nb+b)/8], in.sy[t*ng+2*b] + in.sy[t*ng+2*b+1], s
	})
	ns := in.cols / 256
	in.setRecords(ns, 256)
	src := words(in.q)
	for t := 0; t < in.ntok; t++ {
		rec := in.tp[t*in.tpRecord : (t+1)*in.tpRecord]
		d := words8(rec[:ns*256])
		s := src[t*ns*64 : (t+1)*ns*64]
		for g := 0; g < ns*16; g++ {
			o := g>>4<<6 | g&15
			x := s[g*4 : g*4+4]
			d[o], d[o+16], d[o+32], d[o+48] = x[0], x[1], x[2], x[3]
		}
		f := floats(rec[ns*256:])
		si := words8(rec[ns*256:])
		for g := 0; g < ns*16; g++ {
			o := g>>4*48 | g&15
			f[o], f[o+16] = in.d[t*ns+g/16], in.sy[t*ns*16+g]
			si[o+32] = uint32(int32(in.s[t*ns*16+g]))
		}
	}
}

func (in *Input) setRecords(ns, super int) {
	in.nsuper = ns
	in.tpRecord = ns*super + ns*192
	in.tp = grow(in.tp, in.ntok*in.tpRecord)
}

// words8 and floats view bytes (a multiple of 4, 4-aligned) as words and
// floats.
func words8(b []byte) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

func floats(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// words views int8s (a multiple of 4) as 4-byte words.
func words(q []int8) []uint32 {
	if len(q) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(q))), len(q)/4)
}

// permute4 copies q into qp with each row's blocks of 32 values reordered
// for dotQ4_0P: per group of 8 blocks, for each half of 4 blocks, their
// values 0..15 one block after another, then their values 16..31. Blocks
// after the last whole group keep their order.
func permute4(qp, q []int8, ntok, cols int) {
	nb := cols / 32
	for t := 0; t < ntok; t++ {
		src, dst := q[t*cols:(t+1)*cols], qp[t*cols:(t+1)*cols]
		g8 := nb &^ 7
		for b := 0; b < g8; b++ {
			h := b / 4 * 128 // the half's 128 bytes
			k := b % 4
			copy(dst[h+16*k:h+16*k+16], src[32*b:32*b+16])
			copy(dst[h+64+16*k:h+64+16*k+16], src[32*b+16:32*b+32])
		}
		copy(dst[32*g8:], src[32*g8:])
	}
}
