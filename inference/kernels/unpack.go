package kernels

import "github.com/foretoken/foretoken/gguf/ggml"

// The batched (prompt) matrix product first unpacks four weight rows into
// one common form, then multiplies them with every token by one assembly
// kernel. Unpacking costs about one row dot product and is shared by all
// the batch's tokens.
//
// The unpacked form of a row, for value v in group g(v) (a block of 32
// values for the Q8_0 activation form, 16 values for Q8_K):
//
//	weight(v) = S[g]*u[v] + K[g]
//
// with u an unsigned byte and S, K floats. The activation being dy*q, the
// product is sum_g S[g]*dy*sum(u*q) + K[g]*sy[g], sy[g] being the group's
// dy*sum(q), which Input keeps.
//
// The values are reordered so that lane i (4 bytes) of every 64-byte chunk
// of a super-chunk (16 groups: 512 values for Q8_0, 256 for Q8_K) holds
// group i: a VPDPBUSD per chunk then accumulates each group's integer sum in
// its own lane, and floats are touched once per super-chunk. The
// activations are reordered the same way once per batch (Input.tp). The
// four rows are interleaved, 64 bytes of each in turn, so that one pointer
// walks them; S and K hold 16 floats per row per super-chunk likewise. An
// unpacker gets u, s and k offset to its row's slot.

// ui32 and uiK place value v of a row (Q8_0 and Q8_K forms).
func ui32(v int) int { return v>>9<<11 | (v>>2&7)<<8 | (v>>5&15)<<2 | v&3 }
func uiK(v int) int  { return v>>8<<10 | (v>>2&3)<<8 | (v>>4&15)<<2 | v&3 }

// gi places the S and K of group g.
func gi(g int) int { return g>>4<<6 | g&15 }

// unpackFunc unpacks one weight row (n values) into its slot of u, S and K.
type unpackFunc func(w []byte, n int, u []byte, s, k []float32)

func unpackQ4_0(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/32; i++ {
		b := w[i*18 : i*18+18]
		dx := fp16At(b)
		for j := 0; j < 16; j++ {
			u[ui32(i*32+j)] = b[2+j] & 15
			u[ui32(i*32+16+j)] = b[2+j] >> 4
		}
		s[gi(i)] = dx
		k[gi(i)] = -8 * dx
	}
}

func unpackQ4_1(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/32; i++ {
		b := w[i*20 : i*20+20]
		for j := 0; j < 16; j++ {
			u[ui32(i*32+j)] = b[4+j] & 15
			u[ui32(i*32+16+j)] = b[4+j] >> 4
		}
		s[gi(i)] = fp16At(b)
		k[gi(i)] = fp16At(b[2:])
	}
}

func unpackQ5(w []byte, n int, u []byte, s, k []float32, size int) {
	for i := 0; i < n/32; i++ {
		b := w[i*size : (i+1)*size]
		dx := fp16At(b)
		qs := b[size-16:]
		qh := q5High(b[size-20:])
		for j := 0; j < 16; j++ {
			u[ui32(i*32+j)] = qs[j]&15 | byte(qh>>j&1)<<4
			u[ui32(i*32+16+j)] = qs[j]>>4 | byte(qh>>(j+16)&1)<<4
		}
		s[gi(i)] = dx
		if size == 22 {
			k[gi(i)] = -16 * dx
		} else {
			k[gi(i)] = fp16At(b[2:])
		}
	}
}

func unpackQ5_0(w []byte, n int, u []byte, s, k []float32) { unpackQ5(w, n, u, s, k, 22) }
func unpackQ5_1(w []byte, n int, u []byte, s, k []float32) { unpackQ5(w, n, u, s, k, 24) }

func unpackQ8_0(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/32; i++ {
		b := w[i*34 : i*34+34]
		dx := fp16At(b)
		for j := 0; j < 32; j++ {
			u[ui32(i*32+j)] = b[2+j] ^ 0x80
		}
		s[gi(i)] = dx
		k[gi(i)] = -128 * dx
	}
}

func unpackIQ4_NL(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/32; i++ {
		b := w[i*18 : i*18+18]
		dx := fp16At(b)
		for j := 0; j < 16; j++ {
			u[ui32(i*32+j)] = byte(iq4nlValues[b[2+j]&15]) ^ 0x80
			u[ui32(i*32+16+j)] = byte(iq4nlValues[b[2+j]>>4]) ^ 0x80
		}
		s[gi(i)] = dx
		k[gi(i)] = -128 * dx
	}
}

func unpackQ2_K(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/256; i++ {
		b := w[i*84 : i*84+84]
		sc, qs := b[0:16], b[16:80]
		d, dmin := fp16At(b[80:]), fp16At(b[82:])
		for half := 0; half < 2; half++ {
			for j := 0; j < 4; j++ {
				for l := 0; l < 32; l++ {
					u[uiK(i*256+half*128+j*32+l)] = qs[half*32+l] >> (2 * j) & 3
				}
			}
		}
		for g := 0; g < 16; g++ {
			s[gi(i*16+g)] = d * float32(sc[g]&15)
			k[gi(i*16+g)] = -dmin * float32(sc[g]>>4)
		}
	}
}

func unpackQ3_K(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/256; i++ {
		b := w[i*110 : i*110+110]
		hm, qs := b[0:32], b[32:96]
		sc := q3Scales(b[96:108])
		d := fp16At(b[108:])
		for half := 0; half < 2; half++ {
			for j := 0; j < 4; j++ {
				m := byte(1) << (half*4 + j)
				for l := 0; l < 32; l++ {
					v := qs[half*32+l] >> (2 * j) & 3
					if hm[l]&m != 0 {
						v |= 4
					}
					u[uiK(i*256+half*128+j*32+l)] = v
				}
			}
		}
		for g := 0; g < 16; g++ {
			v := d * float32(sc[g])
			s[gi(i*16+g)] = v
			k[gi(i*16+g)] = -4 * v
		}
	}
}

// unpackQ45_K unpacks Q5_K (size 176) in 16-value groups; Q4_K has its
// own 32-value unpacker below.
func unpackQ45_K(w []byte, n int, u []byte, s, k []float32, size int) {
	for i := 0; i < n/256; i++ {
		b := w[i*size : (i+1)*size]
		d, dmin := fp16At(b), fp16At(b[2:])
		scb := b[4:16]
		qs := b[size-128:]
		for j := 0; j < 4; j++ {
			for l := 0; l < 32; l++ {
				lo, hi := qs[32*j+l]&15, qs[32*j+l]>>4
				if size == 176 {
					lo |= (b[16+l] >> (2 * j) & 1) << 4
					hi |= (b[16+l] >> (2*j + 1) & 1) << 4
				}
				u[uiK(i*256+64*j+l)], u[uiK(i*256+64*j+32+l)] = lo, hi
			}
		}
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, scb)
			s[gi(i*16+2*j)] = d * float32(sc)
			s[gi(i*16+2*j+1)] = d * float32(sc)
			k[gi(i*16+2*j)] = -dmin * float32(m)
			k[gi(i*16+2*j+1)] = -dmin * float32(m)
		}
	}
}

func unpackQ5_K(w []byte, n int, u []byte, s, k []float32) { unpackQ45_K(w, n, u, s, k, 176) }

func unpackQ6_K(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/256; i++ {
		b := w[i*210 : i*210+210]
		d := fp16At(b[208:])
		for half := 0; half < 2; half++ {
			ql, qh := b[half*64:], b[128+half*32:]
			for l := 0; l < 32; l++ {
				o := half * 128
				u[uiK(i*256+o+l)] = ql[l]&15 | (qh[l]&3)<<4
				u[uiK(i*256+o+l+32)] = ql[l+32]&15 | (qh[l]>>2&3)<<4
				u[uiK(i*256+o+l+64)] = ql[l]>>4 | (qh[l]>>4&3)<<4
				u[uiK(i*256+o+l+96)] = ql[l+32]>>4 | (qh[l]>>6&3)<<4
			}
		}
		for g := 0; g < 16; g++ {
			v := d * float32(int8(b[192+g]))
			s[gi(i*16+g)] = v
			k[gi(i*16+g)] = -32 * v
		}
	}
}

func unpackIQ4_XS(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/256; i++ {
		b := w[i*136 : i*136+136]
		d := fp16At(b)
		sh := le16(b[2:])
		for ib := 0; ib < 8; ib++ {
			ls := int32(b[4+ib/2]>>(4*uint(ib%2))&15) | int32(sh>>(2*uint(ib))&3)<<4
			dl := d * float32(ls-32)
			x := b[8+ib*16:]
			o := i*256 + ib*32
			for j := 0; j < 16; j++ {
				u[uiK(o+j)] = byte(iq4nlValues[x[j]&15]) ^ 0x80
				u[uiK(o+16+j)] = byte(iq4nlValues[x[j]>>4]) ^ 0x80
			}
			s[gi(i*16+2*ib)] = dl
			s[gi(i*16+2*ib+1)] = dl
			k[gi(i*16+2*ib)] = -128 * dl
			k[gi(i*16+2*ib+1)] = -128 * dl
		}
	}
}

var unpackers = map[ggml.Type]unpackFunc{
	ggml.Q4_0: unpackQ4_0, ggml.Q4_1: unpackQ4_1, ggml.Q5_0: unpackQ5_0, ggml.Q5_1: unpackQ5_1,
	ggml.Q8_0: unpackQ8_0, ggml.IQ4_NL: unpackIQ4_NL, ggml.Q2_K: unpackQ2_K, ggml.Q3_K: unpackQ3_K,
	ggml.Q4_K: unpackQ4_K32, ggml.Q5_K: unpackQ5_K, ggml.Q6_K: unpackQ6_K, ggml.IQ4_XS: unpackIQ4_XS,
}

// unpackQ4_K32 unpacks Q4_K in the Q8_0 form's layout (blocks of 32 values,
// 512-value super-chunks): its scales and minimums are per 32 values, so
// groups of 32 halve the per-group work of the batched kernel. Its input
// is Input's 32-value copy of the Q8_K activations (tp32).
func unpackQ4_K32(w []byte, n int, u []byte, s, k []float32) {
	for i := 0; i < n/256; i++ {
		b := w[i*144 : i*144+144]
		d, dmin := fp16At(b), fp16At(b[2:])
		qs := b[16:]
		for j := 0; j < 4; j++ {
			for l := 0; l < 32; l++ {
				u[ui32(i*256+64*j+l)] = qs[32*j+l] & 15
				u[ui32(i*256+64*j+32+l)] = qs[32*j+l] >> 4
			}
		}
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, b[4:16])
			s[gi(i*8+j)] = d * float32(sc)
			k[gi(i*8+j)] = -dmin * float32(m)
		}
	}
}
