package kernels

import (
	"math"
	"math/rand/v2"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// dequantRow is an independent float64 dequantizer written after ggml's
// dequantize_row_* functions (the value-by-value form, not the dot-product
// form the kernels use), so the tests compare two different readings of the
// block layouts.
func dequantRow(t ggml.Type, w []byte, n int) []float64 {
	out := make([]float64, 0, n)
	f16 := func(b []byte) float64 { return float64(fp16ToF32(le16(b))) }
	switch t {
	case ggml.F32:
		for j := 0; j < n; j++ {
			out = append(out, float64(math.Float32frombits(uint32(w[4*j])|uint32(w[4*j+1])<<8|uint32(w[4*j+2])<<16|uint32(w[4*j+3])<<24)))
		}
	case ggml.F16:
		for j := 0; j < n; j++ {
			out = append(out, f16(w[2*j:]))
		}
	case ggml.BF16:
		for j := 0; j < n; j++ {
			out = append(out, float64(math.Float32frombits(uint32(le16(w[2*j:]))<<16)))
		}
	case ggml.Q8_0:
		for b := w; len(out) < n; b = b[34:] {
			for j := 0; j < 32; j++ {
				out = append(out, f16(b)*float64(int8(b[2+j])))
			}
		}
	case ggml.Q4_0, ggml.IQ4_NL:
		for b := w; len(out) < n; b = b[18:] {
			var v [32]float64
			for j := 0; j < 16; j++ {
				lo, hi := float64(int(b[2+j]&15)-8), float64(int(b[2+j]>>4)-8)
				if t == ggml.IQ4_NL {
					lo, hi = float64(iq4nlValues[b[2+j]&15]), float64(iq4nlValues[b[2+j]>>4])
				}
				v[j], v[j+16] = f16(b)*lo, f16(b)*hi
			}
			out = append(out, v[:]...)
		}
	case ggml.Q4_1:
		for b := w; len(out) < n; b = b[20:] {
			var v [32]float64
			for j := 0; j < 16; j++ {
				v[j] = f16(b)*float64(b[4+j]&15) + f16(b[2:])
				v[j+16] = f16(b)*float64(b[4+j]>>4) + f16(b[2:])
			}
			out = append(out, v[:]...)
		}
	case ggml.Q5_0, ggml.Q5_1:
		size, off := 22, 6
		if t == ggml.Q5_1 {
			size, off = 24, 8
		}
		for b := w; len(out) < n; b = b[size:] {
			qh := uint32(b[off-4]) | uint32(b[off-3])<<8 | uint32(b[off-2])<<16 | uint32(b[off-1])<<24
			var v [32]float64
			for j := 0; j < 16; j++ {
				x0 := int(b[off+j]&15) | int((qh>>uint(j))&1)<<4
				x1 := int(b[off+j]>>4) | int((qh>>uint(j+16))&1)<<4
				if t == ggml.Q5_0 {
					v[j], v[j+16] = f16(b)*float64(x0-16), f16(b)*float64(x1-16)
				} else {
					v[j], v[j+16] = f16(b)*float64(x0)+f16(b[2:]), f16(b)*float64(x1)+f16(b[2:])
				}
			}
			out = append(out, v[:]...)
		}
	case ggml.Q2_K:
		for b := w; len(out) < n; b = b[84:] {
			d, dmin := f16(b[80:]), f16(b[82:])
			q := b[16:80]
			is := 0
			for half := 0; half < 2; half++ {
				for shift := uint(0); shift < 8; shift += 2 {
					sc := b[is]
					is++
					for l := 0; l < 16; l++ {
						out = append(out, d*float64(sc&15)*float64(q[l]>>shift&3)-dmin*float64(sc>>4))
					}
					sc = b[is]
					is++
					for l := 16; l < 32; l++ {
						out = append(out, d*float64(sc&15)*float64(q[l]>>shift&3)-dmin*float64(sc>>4))
					}
				}
				q = q[32:]
			}
		}
	case ggml.Q3_K:
		for b := w; len(out) < n; b = b[110:] {
			d := f16(b[108:])
			// Scales through the 32-bit masks, as ggml does.
			var aux [4]uint32
			for k := 0; k < 3; k++ {
				aux[k] = uint32(b[96+4*k]) | uint32(b[97+4*k])<<8 | uint32(b[98+4*k])<<16 | uint32(b[99+4*k])<<24
			}
			tmp := aux[2]
			aux[2] = (aux[0]>>4)&0x0f0f0f0f | ((tmp>>4)&0x03030303)<<4
			aux[3] = (aux[1]>>4)&0x0f0f0f0f | ((tmp>>6)&0x03030303)<<4
			aux[0] = aux[0]&0x0f0f0f0f | (tmp&0x03030303)<<4
			aux[1] = aux[1]&0x0f0f0f0f | ((tmp>>2)&0x03030303)<<4
			var sc [16]int
			for k := 0; k < 16; k++ {
				sc[k] = int(int8(byte(aux[k/4]>>(8*uint(k%4))))) - 32
			}
			hm, q := b[0:32], b[32:96]
			m := byte(1)
			is := 0
			for half := 0; half < 2; half++ {
				for shift := uint(0); shift < 8; shift += 2 {
					for l := 0; l < 32; l++ {
						v := int(q[l]>>shift&3) - 4
						if hm[l]&m != 0 {
							v += 4
						}
						out = append(out, d*float64(sc[is+l/16])*float64(v))
					}
					is += 2
					m <<= 1
				}
				q = q[32:]
			}
		}
	case ggml.Q4_K, ggml.Q5_K:
		size := 144
		if t == ggml.Q5_K {
			size = 176
		}
		for b := w; len(out) < n; b = b[size:] {
			d, dmin := f16(b), f16(b[2:])
			scb := b[4:16]
			q := b[16:]
			var qh []byte
			if t == ggml.Q5_K {
				qh, q = b[16:48], b[48:]
			}
			u1, u2 := byte(1), byte(2)
			for j := 0; j < 8; j += 2 {
				sc1, m1 := scaleMinK4(j, scb)
				sc2, m2 := scaleMinK4(j+1, scb)
				for l := 0; l < 32; l++ {
					v := float64(q[l] & 15)
					if qh != nil && qh[l]&u1 != 0 {
						v += 16
					}
					out = append(out, d*float64(sc1)*v-dmin*float64(m1))
				}
				for l := 0; l < 32; l++ {
					v := float64(q[l] >> 4)
					if qh != nil && qh[l]&u2 != 0 {
						v += 16
					}
					out = append(out, d*float64(sc2)*v-dmin*float64(m2))
				}
				q = q[32:]
				u1 <<= 2
				u2 <<= 2
			}
		}
	case ggml.Q6_K:
		for b := w; len(out) < n; b = b[210:] {
			d := f16(b[208:])
			ql, qh, sc := b[0:128], b[128:192], b[192:208]
			var v [256]float64
			for half := 0; half < 2; half++ {
				for l := 0; l < 32; l++ {
					is := l / 16
					q1 := int(ql[l]&15|(qh[l]>>0&3)<<4) - 32
					q2 := int(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
					q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
					q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
					v[half*128+l] = d * float64(int8(sc[is])) * float64(q1)
					v[half*128+l+32] = d * float64(int8(sc[is+2])) * float64(q2)
					v[half*128+l+64] = d * float64(int8(sc[is+4])) * float64(q3)
					v[half*128+l+96] = d * float64(int8(sc[is+6])) * float64(q4)
				}
				ql, qh, sc = ql[64:], qh[32:], sc[8:]
			}
			out = append(out, v[:]...)
		}
	case ggml.IQ4_XS:
		for b := w; len(out) < n; b = b[136:] {
			d := f16(b)
			sh := le16(b[2:])
			for ib := 0; ib < 8; ib++ {
				ls := int(b[4+ib/2]>>(4*uint(ib%2))&15) | int(sh>>(2*uint(ib))&3)<<4
				dl := d * float64(ls-32)
				q := b[8+16*ib:]
				var v [32]float64
				for j := 0; j < 16; j++ {
					v[j] = dl * float64(iq4nlValues[q[j]&15])
					v[j+16] = dl * float64(iq4nlValues[q[j]>>4])
				}
				out = append(out, v[:]...)
			}
		}
	default:
		panic("dequantRow: unsupported type " + t.String())
	}
	return out[:n]
}

// fp16 field offsets within a block, per type: random bytes there are
// replaced by modest scales so values stay finite and sums meaningful.
var scaleFields = map[ggml.Type][]int{
	ggml.Q8_0: {0}, ggml.Q4_0: {0}, ggml.IQ4_NL: {0}, ggml.Q4_1: {0, 2},
	ggml.Q5_0: {0}, ggml.Q5_1: {0, 2}, ggml.Q2_K: {80, 82}, ggml.Q3_K: {108},
	ggml.Q4_K: {0, 2}, ggml.Q5_K: {0, 2}, ggml.Q6_K: {208}, ggml.IQ4_XS: {0},
}

// randomRows returns rows*cols weights of type t: random bits everywhere,
// with scale fields set to random values of either sign in [2^-12, 2^-4).
func randomRows(rng *rand.Rand, t ggml.Type, rows, cols int) []byte {
	n := rows * cols / t.BlockSize() * t.TypeSize()
	w := make([]byte, n)
	switch t {
	case ggml.F32:
		for j := 0; j < rows*cols; j++ {
			u := math.Float32bits(float32(rng.NormFloat64()))
			w[4*j], w[4*j+1], w[4*j+2], w[4*j+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		}
		return w
	case ggml.F16, ggml.BF16:
		for j := 0; j < rows*cols; j++ {
			var h uint16
			if t == ggml.F16 {
				h = ggml.Float32ToFP16(float32(rng.NormFloat64()))
			} else {
				h = uint16(math.Float32bits(float32(rng.NormFloat64())) >> 16)
			}
			w[2*j], w[2*j+1] = byte(h), byte(h>>8)
		}
		return w
	}
	for j := range w {
		w[j] = byte(rng.Uint32())
	}
	ts := t.TypeSize()
	for b := 0; b < n; b += ts {
		for _, off := range scaleFields[t] {
			v := float32(math.Ldexp(1+rng.Float64(), -12+rng.IntN(8)))
			if rng.IntN(2) == 0 {
				v = -v
			}
			h := ggml.Float32ToFP16(v)
			w[b+off], w[b+off+1] = byte(h), byte(h>>8)
		}
	}
	return w
}
