//go:build amd64 && !purego

package kernels

import (
	"maps"
	"sync"
	"unsafe"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// tileArgs is read by the tile kernels at fixed offsets; keep the layout.
type tileArgs struct {
	u          *byte    // unpacked rows, see unpack.go
	s          *float32 // [super][4 rows][16] group scales
	k          *float32 // [super][4 rows][16] group coefficients
	nsuper     int      // super-chunks per row
	y          *byte    // the first pair's first token record (Input.tp)
	stride     int      // bytes from a pair's first token record to its second
	npair      int      // token pairs
	out        *float32 // 8 per pair: 4 rows of its first token, then its second
	pairStride int      // bytes from one pair's records to the next
	scaleOff   int      // offset of the scales in a token record
	shift      int      // the Off kernels' K = -2^shift * S
}

//go:noescape
func tile32VNNI(a *tileArgs)

//go:noescape
func tileKVNNI(a *tileArgs)

//go:noescape
func tile32OffVNNI(a *tileArgs)

//go:noescape
func tileKOffVNNI(a *tileArgs)

// layout32 marks the K-quants unpacked in 32-value groups (their scales
// are per 32 values), which halves the batched kernel's per-group work.
var layout32 = map[ggml.Type]bool{ggml.Q4_K: true}

// offsetShift gives, for the types whose unpacked K is -2^shift * S, the
// shift; the others (with minimums) keep the K terms.
var offsetShift = map[ggml.Type]int{
	ggml.Q4_0: 3, ggml.Q8_0: 7, ggml.Q5_0: 4, ggml.IQ4_NL: 7,
	ggml.Q3_K: 2, ggml.Q6_K: 5, ggml.IQ4_XS: 7,
}

// tileScratch holds one worker's unpacked rows and outputs; a pool shares
// them between calls so that the product allocates nothing once warm.
type tileScratch struct {
	u   []byte
	s   []float32
	k   []float32
	out []float32
}

var tilePool = sync.Pool{New: func() any { return new(tileScratch) }}

// tileRows is the tileFunc of the VNNI set for quantized weights.
// With layout32 the unpacker writes K-quant rows in 32-value groups, to be
// multiplied with Input's 32-value copy of the Q8_K activations.
func tileRows(unpack unpackFunc, shift int, useShift, layout32 bool) tileFunc {
	return func(dst []float32, dstStride int, w []byte, rowBytes, wStride int, in *Input, r0, r1 int) {
		cols, ntok, ns, rec, tp := in.cols, in.ntok, in.nsuper, in.tpRecord, in.tp
		super := 512 // values per super-chunk
		if layout32 {
			ns, rec, tp = in.nsuper32, in.tp32Record, in.tp32
		} else if in.form == formQ8_K {
			super = 256
		}
		// Direct calls (not through a func value) keep the args on the stack.
		kernel := func(a *tileArgs) {
			switch {
			case super == 256 && useShift:
				tileKOffVNNI(a)
			case super == 256:
				tileKVNNI(a)
			case useShift:
				tile32OffVNNI(a)
			default:
				tile32VNNI(a)
			}
		}
		// Blocking: the unpacked rows of up to G groups of 4 (about 256 KB)
		// meet the records of up to T tokens (about 256 KB) in the L2
		// cache, rather than every group streaming all tokens from L3.
		gu, gf := ns*super*4, ns*64 // bytes of u, floats of S (and K) per group
		G := max(1, min((r1-r0+3)/4, (256<<10)/(gu+8*gf)))
		T := max(2, min(ntok, (256<<10)/rec)) &^ 1
		sc := tilePool.Get().(*tileScratch)
		defer tilePool.Put(sc)
		sc.u = grow(sc.u, G*gu)
		sc.s = grow(sc.s, G*gf)
		sc.k = grow(sc.k, G*gf)
		sc.out = grow(sc.out, (ntok+1)*4)
		padded := cols != ns*super
		for rg := r0; rg < r1; rg += 4 * G {
			ng := min(G, (r1-rg+3)/4)
			for g := 0; g < ng; g++ {
				u, su, ku := sc.u[g*gu:(g+1)*gu], sc.s[g*gf:(g+1)*gf], sc.k[g*gf:(g+1)*gf]
				for i := 0; i < 4; i++ {
					r := rg + 4*g + i
					if padded || r >= r1 {
						clearSlot(u, su, ku, i, ns, super)
					}
					if r < r1 {
						unpack(w[r*wStride:r*wStride+rowBytes], cols, u[i*64:], su[i*16:], ku[i*16:])
					}
				}
			}
			for t0 := 0; t0 < ntok; t0 += T {
				nt := min(T, ntok-t0)
				for g := 0; g < ng; g++ {
					a := tileArgs{
						u: &sc.u[g*gu], s: &sc.s[g*gf], k: &sc.k[g*gf],
						nsuper: ns, y: &tp[t0*rec], stride: rec, npair: nt / 2,
						out: &sc.out[t0*4], pairStride: 2 * rec, scaleOff: ns * super,
						shift: shift,
					}
					if a.npair > 0 {
						kernel(&a)
					}
					if nt%2 == 1 {
						// An odd last token pairs with itself.
						a.y, a.stride, a.npair = &tp[(t0+nt-1)*rec], 0, 1
						a.out = &sc.out[(t0+nt-1)*4]
						kernel(&a)
					}
					r := rg + 4*g
					scatterRange(dst, dstStride, sc.out, r, min(4, r1-r), t0, nt)
				}
			}
		}
	}
}

// clearSlot zeroes row slot i of a group, so that padding multiplies to
// nothing.
func clearSlot(u []byte, s, k []float32, i, ns, super int) {
	for c := 0; c < ns*super/64; c++ {
		clear(u[c*256+i*64 : c*256+i*64+64])
	}
	for c := 0; c < ns; c++ {
		clear(s[c*64+i*16 : c*64+i*16+16])
		clear(k[c*64+i*16 : c*64+i*16+16])
	}
}

//go:noescape
func unpackQ4_0VNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ8_0VNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ4_K32VNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ5_KVNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ2_KVNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ3_KVNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ4_1VNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ5_0VNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ5_1VNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackIQ4_NLVNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackIQ4_XSVNNI(w *byte, ns int, u *byte, s, k *float32)

//go:noescape
func unpackQ6_KVNNI(w *byte, ns int, u *byte, s, k *float32)

// asmUnpack adapts an assembly unpacker of whole super-chunks (super
// values, from bs bytes of weights) to unpackFunc; rows of other lengths go
// to the Go version.
// super is the values per block the kernel handles (its ns counts them),
// layout the values per super-chunk of the layout it writes.
func asmUnpack(f func(w *byte, ns int, u *byte, s, k *float32), g unpackFunc, super, bs, layout int) unpackFunc {
	return func(w []byte, n int, u []byte, s, k []float32) {
		ns := n / super
		if n%super != 0 || ns == 0 || n%layout != 0 {
			g(w, n, u, s, k)
			return
		}
		// The slot's last writes: u at (n/layout-1)*layout*4 + 7*256 + 64,
		// S and K at (n/layout-1)*64 + 16 (bounds for the widest layout).
		nl := n / layout
		_, _, _ = w[ns*bs-1], u[(nl-1)*layout*4+(layout/64-1)*256+63], s[(nl-1)*64+15]
		_ = k[(nl-1)*64+15]
		f(unsafe.SliceData(w), ns, unsafe.SliceData(u), unsafe.SliceData(s), unsafe.SliceData(k))
	}
}

func setTilesVNNI(k *kernelSet) {
	k.unpack = maps.Clone(unpackers)
	k.unpack[ggml.Q4_0] = asmUnpack(unpackQ4_0VNNI, unpackQ4_0, 512, 16*18, 512)
	k.unpack[ggml.Q8_0] = asmUnpack(unpackQ8_0VNNI, unpackQ8_0, 512, 16*34, 512)
	k.unpack[ggml.Q4_1] = asmUnpack(unpackQ4_1VNNI, unpackQ4_1, 512, 16*20, 512)
	k.unpack[ggml.Q5_0] = asmUnpack(unpackQ5_0VNNI, unpackQ5_0, 512, 16*22, 512)
	k.unpack[ggml.Q5_1] = asmUnpack(unpackQ5_1VNNI, unpackQ5_1, 512, 16*24, 512)
	k.unpack[ggml.IQ4_NL] = asmUnpack(unpackIQ4_NLVNNI, unpackIQ4_NL, 512, 16*18, 512)
	k.unpack[ggml.Q2_K] = asmUnpack(unpackQ2_KVNNI, unpackQ2_K, 256, 84, 256)
	k.unpack[ggml.Q3_K] = asmUnpack(unpackQ3_KVNNI, unpackQ3_K, 256, 110, 256)
	k.unpack[ggml.Q4_K] = asmUnpack(unpackQ4_K32VNNI, unpackQ4_K32, 256, 144, 512)
	k.unpack[ggml.Q5_K] = asmUnpack(unpackQ5_KVNNI, unpackQ5_K, 256, 176, 256)
	k.unpack[ggml.Q6_K] = asmUnpack(unpackQ6_KVNNI, unpackQ6_K, 256, 210, 256)
	k.unpack[ggml.IQ4_XS] = asmUnpack(unpackIQ4_XSVNNI, unpackIQ4_XS, 256, 136, 256)
	for wt, un := range k.unpack {
		if formOf(wt) == formQ8_0 {
			// Rows that do not fill 512-value super-chunks take the Go
			// unpacker, which pays only from a few dozen tokens on;
			// below that the per-token dot products are faster.
			k.tileMin[wt] = 48
			k.tileMinCols[wt] = 512
		}
		sh, ok := offsetShift[wt]
		k.tile[wt] = tileRows(un, sh, ok, layout32[wt])
	}
	k.tile[ggml.F16] = ftileRows(unpackF16AVX512, 2, ggml.F16)
	k.tile[ggml.BF16] = ftileRows(unpackBF16AVX512, 2, ggml.BF16)
	k.tile[ggml.F32] = ftileRows(unpackF32AVX512, 4, ggml.F32)
}

//go:noescape
func ftileAVX512(w *float32, nchunk int, x *float32, xstride int, nquad int, out *float32)

//go:noescape
func unpackF16AVX512(w *byte, nchunk int, dst *float32)

//go:noescape
func unpackBF16AVX512(w *byte, nchunk int, dst *float32)

//go:noescape
func unpackF32AVX512(w *byte, nchunk int, dst *float32)

// ftileRows is the batched product for float weights whose rows are a
// multiple of 16 values; others take the per-token path.
func ftileRows(unpack func(w *byte, nchunk int, dst *float32), size int, wt ggml.Type) tileFunc {
	return func(dst []float32, dstStride int, w []byte, rowBytes, wStride int, in *Input, r0, r1 int) {
		cols, ntok := in.cols, in.ntok
		// Rows are zero-padded to whole 16-value chunks; so are the
		// activations (Input.fp) when cols is not a multiple of 16.
		nfull := cols / 16
		nchunk := (cols + 15) / 16
		xs, colsP := in.f, cols
		if nchunk != nfull {
			xs, colsP = in.fp, nchunk*16
		}
		// Blocking as in tileRows: up to G groups of 4 unpacked rows meet
		// up to T tokens (a multiple of 4) in the L2 cache.
		gf := nchunk * 64 // floats per group
		G := max(1, min((r1-r0+3)/4, (256<<10)/(4*gf)))
		T := max(4, min(ntok, (256<<10)/(4*colsP))) &^ 3
		sc := tilePool.Get().(*tileScratch)
		defer tilePool.Put(sc)
		sc.s = grow(sc.s, G*gf)
		sc.out = grow(sc.out, (ntok+3)/4*16)
		// The last quad of tokens, if partial, is read from a copy padded
		// by repeating its last token.
		full, rest := ntok/4, ntok%4
		if rest > 0 {
			sc.k = grow(sc.k, 4*colsP)
			for j := 0; j < 4; j++ {
				t := min(full*4+j, ntok-1)
				copy(sc.k[j*colsP:(j+1)*colsP], xs[t*colsP:(t+1)*colsP])
			}
		}
		for rg := r0; rg < r1; rg += 4 * G {
			ng := min(G, (r1-rg+3)/4)
			for g := 0; g < ng; g++ {
				sg := sc.s[g*gf : (g+1)*gf]
				for i := 0; i < 4; i++ {
					r := rg + 4*g + i
					if r >= r1 {
						for c := 0; c < nchunk; c++ {
							clear(sg[(c*4+i)*16 : (c*4+i+1)*16])
						}
						continue
					}
					row := w[r*wStride : r*wStride+rowBytes]
					if nfull > 0 {
						unpack(&row[0], nfull, &sg[i*16])
					}
					if nfull < nchunk {
						last := sg[(nfull*4+i)*16 : (nfull*4+i+1)*16]
						clear(last)
						for j := range cols - nfull*16 {
							last[j] = floatAt(wt, row, nfull*16+j)
						}
					}
				}
			}
			for t0 := 0; t0 < ntok; t0 += T {
				nt := min(T, ntok-t0)
				for g := 0; g < ng; g++ {
					sg := &sc.s[g*gf]
					if q := nt / 4; q > 0 {
						ftileAVX512(sg, nchunk, &xs[t0*colsP], 4*colsP, q, &sc.out[t0*4])
					}
					if nt%4 != 0 {
						ftileAVX512(sg, nchunk, unsafe.SliceData(sc.k), 4*colsP, 1, &sc.out[full*16])
					}
					r := rg + 4*g
					scatterRange(dst, dstStride, sc.out, r, min(4, r1-r), t0, nt)
				}
			}
		}
	}
}

// floatAt is value j of a row of float weights.
func floatAt(wt ggml.Type, row []byte, j int) float32 {
	switch wt {
	case ggml.F16:
		return fp16At(row[2*j:])
	case ggml.BF16:
		return ggml.BF16ToFloat32(le16(row[2*j:]))
	}
	return f32At(row[4*j:])
}

// scatter copies each token's n (at most 4) results of a row group to dst;
// a loop, not copy, since memmove costs more than four stores.
func scatter(dst []float32, dstStride int, out []float32, r, n, ntok int) {
	for t := 0; t < ntok; t++ {
		d, o := dst[t*dstStride+r:t*dstStride+r+n], out[t*4:t*4+n]
		for i := range d {
			d[i] = o[i]
		}
	}
}

// scatterRange is scatter for tokens [t0, t0+nt).
func scatterRange(dst []float32, dstStride int, out []float32, r, n, t0, nt int) {
	for t := t0; t < t0+nt; t++ {
		d, o := dst[t*dstStride+r:t*dstStride+r+n], out[t*4:t*4+n]
		for i := range d {
			d[i] = o[i]
		}
	}
}
