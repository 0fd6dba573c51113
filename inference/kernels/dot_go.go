package kernels

import (
	"math"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// Pure-Go dot products of one weight row with one activation row. They are
// the reference the assembly kernels are tested against and the fallback on
// other machines. Each follows ggml's block layout (ggml-common.h) and its
// generic ggml_vec_dot_*: integer sums inside a block, scaled once per block.
//
// Arguments: w is the row's blocks; q, d and s are the token's quantized
// values, block scales and block sums (see Input).

// dotQ8_0Go adds up like ggml's AVX2 Q8_0 kernel and tinyBLAS's Q8_0
// product, which llama.cpp runs on x86: eight lanes, lane k taking the
// integer sum of products 4k..4k+3 of every block times the block's scale
// product in a chain of FMAs, then the lanes reduced pairwise. The order is
// kept because the outputs of the key, query and value projections are
// rounded to fp16 next: a result one float32 ulp away from llama.cpp's
// rounds to a different fp16 about once in 8000, and the network amplifies
// that (measured: reference error 0.028 with a plain sum, 0.009 with this).
func dotQ8_0Go(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var acc [8]float32
	for i := range d {
		b := w[i*34 : i*34+34]
		y := q[i*32 : i*32+32]
		db := fp16At(b) * d[i]
		for k := range acc {
			var s int32
			for j := 4 * k; j < 4*k+4; j++ {
				s += int32(int8(b[2+j])) * int32(y[j])
			}
			// float64 holds db*s exactly: one rounding, as VFMADD's.
			acc[k] = float32(math.FMA(float64(db), float64(s), float64(acc[k])))
		}
	}
	return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

func dotQ4_0Go(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*18 : i*18+18]
		y := q[i*32 : i*32+32]
		var s int32
		for j := 0; j < 16; j++ {
			s += (int32(b[2+j]&15) - 8) * int32(y[j])
			s += (int32(b[2+j]>>4) - 8) * int32(y[j+16])
		}
		sum += fp16At(b) * d[i] * float32(s)
	}
	return sum
}

func dotQ4_1Go(w []byte, q []int8, d []float32, _ []int16, sy []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*20 : i*20+20]
		y := q[i*32 : i*32+32]
		var s int32
		for j := 0; j < 16; j++ {
			s += int32(b[4+j]&15) * int32(y[j])
			s += int32(b[4+j]>>4) * int32(y[j+16])
		}
		sum += fp16At(b)*d[i]*float32(s) + fp16At(b[2:])*sy[i]
	}
	return sum
}

func q5High(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func dotQ5_0Go(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*22 : i*22+22]
		y := q[i*32 : i*32+32]
		qh := q5High(b[2:])
		var s int32
		for j := 0; j < 16; j++ {
			h0 := int32(qh>>j&1) << 4
			h1 := int32(qh>>(j+16)&1) << 4
			s += ((int32(b[6+j]&15) | h0) - 16) * int32(y[j])
			s += ((int32(b[6+j]>>4) | h1) - 16) * int32(y[j+16])
		}
		sum += fp16At(b) * d[i] * float32(s)
	}
	return sum
}

func dotQ5_1Go(w []byte, q []int8, d []float32, _ []int16, sy []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*24 : i*24+24]
		y := q[i*32 : i*32+32]
		qh := q5High(b[4:])
		var s int32
		for j := 0; j < 16; j++ {
			h0 := int32(qh>>j&1) << 4
			h1 := int32(qh>>(j+16)&1) << 4
			s += (int32(b[8+j]&15) | h0) * int32(y[j])
			s += (int32(b[8+j]>>4) | h1) * int32(y[j+16])
		}
		sum += fp16At(b)*d[i]*float32(s) + fp16At(b[2:])*sy[i]
	}
	return sum
}

// iq4nlValues is ggml's kvalues_iq4nl: the non-linear 4-bit codebook of
// IQ4_NL and IQ4_XS.
var iq4nlValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func dotIQ4_NLGo(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*18 : i*18+18]
		y := q[i*32 : i*32+32]
		var s int32
		for j := 0; j < 16; j++ {
			s += int32(iq4nlValues[b[2+j]&15]) * int32(y[j])
			s += int32(iq4nlValues[b[2+j]>>4]) * int32(y[j+16])
		}
		sum += fp16At(b) * d[i] * float32(s)
	}
	return sum
}

func dotQ2_KGo(w []byte, q []int8, d []float32, bs []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*84 : i*84+84]
		sc, qs := b[0:16], b[16:80]
		y := q[i*256 : i*256+256]
		var mins int32
		for j := 0; j < 16; j++ {
			mins += int32(bs[i*16+j]) * int32(sc[j]>>4)
		}
		var isum int32
		for half := 0; half < 2; half++ {
			q2 := qs[half*32 : half*32+32]
			for j := 0; j < 4; j++ {
				shift := uint(2 * j)
				yy := y[half*128+j*32:]
				var lo, hi int32
				for l := 0; l < 16; l++ {
					lo += int32(q2[l]>>shift&3) * int32(yy[l])
					hi += int32(q2[l+16]>>shift&3) * int32(yy[l+16])
				}
				g := half*8 + j*2
				isum += int32(sc[g]&15)*lo + int32(sc[g+1]&15)*hi
			}
		}
		sum += d[i]*fp16At(b[80:])*float32(isum) - d[i]*fp16At(b[82:])*float32(mins)
	}
	return sum
}

// q3Scales unpacks Q3_K's twelve bytes into sixteen 6-bit scales, offset by
// -32: the low 4 bits come from bytes 0..7 (two per byte), the high 2 bits
// from bytes 8..11.
func q3Scales(p []byte) (sc [16]int32) {
	for j := 0; j < 16; j++ {
		lo := p[j%8] >> (4 * uint(j/8)) & 15
		hi := p[8+j%4] >> (2 * uint(j/4)) & 3
		sc[j] = int32(lo|hi<<4) - 32
	}
	return sc
}

func dotQ3_KGo(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*110 : i*110+110]
		hm, qs := b[0:32], b[32:96]
		sc := q3Scales(b[96:108])
		y := q[i*256 : i*256+256]
		var isum int32
		m := byte(1)
		for half := 0; half < 2; half++ {
			q3 := qs[half*32 : half*32+32]
			for j := 0; j < 4; j++ {
				shift := uint(2 * j)
				yy := y[half*128+j*32:]
				var lo, hi int32
				for l := 0; l < 32; l++ {
					v := int32(q3[l] >> shift & 3)
					if hm[l]&m == 0 {
						v -= 4
					}
					if l < 16 {
						lo += v * int32(yy[l])
					} else {
						hi += v * int32(yy[l])
					}
				}
				g := half*8 + j*2
				isum += sc[g]*lo + sc[g+1]*hi
				m <<= 1
			}
		}
		sum += d[i] * fp16At(b[108:]) * float32(isum)
	}
	return sum
}

// scaleMinK4 is ggml's get_scale_min_k4: the j-th of eight 6-bit scale/min
// pairs packed in the twelve scale bytes of Q4_K and Q5_K.
func scaleMinK4(j int, p []byte) (sc, m int32) {
	if j < 4 {
		return int32(p[j] & 63), int32(p[j+4] & 63)
	}
	return int32(p[j+4]&15 | p[j-4]>>6<<4), int32(p[j+4]>>4 | p[j]>>6<<4)
}

func dotQ4_KGo(w []byte, q []int8, d []float32, bs []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*144 : i*144+144]
		scb, qs := b[4:16], b[16:144]
		y := q[i*256 : i*256+256]
		s := bs[i*16 : i*16+16]
		var isum, mins int32
		for j := 0; j < 4; j++ {
			s1, m1 := scaleMinK4(2*j, scb)
			s2, m2 := scaleMinK4(2*j+1, scb)
			var lo, hi int32
			for l := 0; l < 32; l++ {
				lo += int32(qs[32*j+l]&15) * int32(y[64*j+l])
				hi += int32(qs[32*j+l]>>4) * int32(y[64*j+32+l])
			}
			isum += s1*lo + s2*hi
			mins += m1*(int32(s[4*j])+int32(s[4*j+1])) + m2*(int32(s[4*j+2])+int32(s[4*j+3]))
		}
		sum += d[i]*fp16At(b)*float32(isum) - d[i]*fp16At(b[2:])*float32(mins)
	}
	return sum
}

func dotQ5_KGo(w []byte, q []int8, d []float32, bs []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*176 : i*176+176]
		scb, qh, qs := b[4:16], b[16:48], b[48:176]
		y := q[i*256 : i*256+256]
		s := bs[i*16 : i*16+16]
		var isum, mins int32
		for j := 0; j < 4; j++ {
			s1, m1 := scaleMinK4(2*j, scb)
			s2, m2 := scaleMinK4(2*j+1, scb)
			var lo, hi int32
			for l := 0; l < 32; l++ {
				h0 := int32(qh[l]>>(2*j)&1) << 4
				h1 := int32(qh[l]>>(2*j+1)&1) << 4
				lo += (int32(qs[32*j+l]&15) | h0) * int32(y[64*j+l])
				hi += (int32(qs[32*j+l]>>4) | h1) * int32(y[64*j+32+l])
			}
			isum += s1*lo + s2*hi
			mins += m1*(int32(s[4*j])+int32(s[4*j+1])) + m2*(int32(s[4*j+2])+int32(s[4*j+3]))
		}
		sum += d[i]*fp16At(b)*float32(isum) - d[i]*fp16At(b[2:])*float32(mins)
	}
	return sum
}

func dotQ6_KGo(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*210 : i*210+210]
		y := q[i*256 : i*256+256]
		var isum int32
		for half := 0; half < 2; half++ {
			ql := b[half*64 : half*64+64]
			qh := b[128+half*32 : 128+half*32+32]
			sc := b[192+half*8 : 192+half*8+8]
			yy := y[half*128 : half*128+128]
			var part [8]int32 // one per 16-value group
			for l := 0; l < 32; l++ {
				q1 := int32(ql[l]&15|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				g := l / 16
				part[g] += q1 * int32(yy[l])
				part[g+2] += q2 * int32(yy[l+32])
				part[g+4] += q3 * int32(yy[l+64])
				part[g+6] += q4 * int32(yy[l+96])
			}
			for g := 0; g < 8; g++ {
				isum += int32(int8(sc[g])) * part[g]
			}
		}
		sum += d[i] * fp16At(b[208:]) * float32(isum)
	}
	return sum
}

func dotIQ4_XSGo(w []byte, q []int8, d []float32, _ []int16, _ []float32) float32 {
	var sum float32
	for i := range d {
		b := w[i*136 : i*136+136]
		sh := le16(b[2:])
		sl, qs := b[4:8], b[8:136]
		y := q[i*256 : i*256+256]
		var isum int32
		for ib := 0; ib < 8; ib++ {
			ls := int32(sl[ib/2]>>(4*uint(ib%2))&15) | int32(sh>>(2*uint(ib))&3)<<4
			x := qs[ib*16 : ib*16+16]
			yy := y[ib*32 : ib*32+32]
			var s int32
			for j := 0; j < 16; j++ {
				s += int32(iq4nlValues[x[j]&15]) * int32(yy[j])
				s += int32(iq4nlValues[x[j]>>4]) * int32(yy[j+16])
			}
			isum += (ls - 32) * s
		}
		sum += d[i] * fp16At(b) * float32(isum)
	}
	return sum
}

func dotF32Go(w []byte, x []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(x)
	j := 0
	for ; j+4 <= n; j += 4 {
		s0 += f32At(w[4*j:]) * x[j]
		s1 += f32At(w[4*j+4:]) * x[j+1]
		s2 += f32At(w[4*j+8:]) * x[j+2]
		s3 += f32At(w[4*j+12:]) * x[j+3]
	}
	for ; j < n; j++ {
		s0 += f32At(w[4*j:]) * x[j]
	}
	return s0 + s1 + s2 + s3
}

func dotF16Go(w []byte, x []float32) float32 {
	var s0, s1 float32
	n := len(x)
	j := 0
	for ; j+2 <= n; j += 2 {
		s0 += fp16At(w[2*j:]) * x[j]
		s1 += fp16At(w[2*j+2:]) * x[j+1]
	}
	for ; j < n; j++ {
		s0 += fp16At(w[2*j:]) * x[j]
	}
	return s0 + s1
}

func dotBF16Go(w []byte, x []float32) float32 {
	var s0, s1 float32
	n := len(x)
	j := 0
	for ; j+2 <= n; j += 2 {
		s0 += ggml.BF16ToFloat32(le16(w[2*j:])) * x[j]
		s1 += ggml.BF16ToFloat32(le16(w[2*j+2:])) * x[j+1]
	}
	for ; j < n; j++ {
		s0 += ggml.BF16ToFloat32(le16(w[2*j:])) * x[j]
	}
	return s0 + s1
}
