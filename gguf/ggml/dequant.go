package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// kvaluesIQ4NL is the non-linear 4-bit codebook of IQ4_NL and IQ4_XS.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func fp16At(b []byte) float32 { return FP16ToFloat32(binary.LittleEndian.Uint16(b)) }

// Dequantize converts len(dst) values of type t, stored in src as whole
// blocks, to float32. The arithmetic follows ggml's dequantize_row_* step by
// step so the results are bit-identical to llama.cpp's.
func Dequantize(t Type, src []byte, dst []float32) error {
	l, ok := layouts[t]
	if !ok {
		return fmt.Errorf("dequantize: unknown tensor type %d", uint32(t))
	}
	if len(dst)%l.blockSize != 0 {
		return fmt.Errorf("dequantize %s: %d values is not a whole number of blocks of %d", l.name, len(dst), l.blockSize)
	}
	nb := len(dst) / l.blockSize
	if len(src) != nb*l.typeSize {
		return fmt.Errorf("dequantize %s: %d values need %d bytes, got %d", l.name, len(dst), nb*l.typeSize, len(src))
	}
	var fn func(b []byte, y []float32)
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	case F16:
		for i := range dst {
			dst[i] = FP16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	case Q4_0:
		fn = dequantQ4_0
	case Q4_1:
		fn = dequantQ4_1
	case Q5_0:
		fn = dequantQ5_0
	case Q5_1:
		fn = dequantQ5_1
	case Q8_0:
		fn = dequantQ8_0
	case Q2_K:
		fn = dequantQ2_K
	case Q3_K:
		fn = dequantQ3_K
	case Q4_K:
		fn = dequantQ4_K
	case Q5_K:
		fn = dequantQ5_K
	case Q6_K:
		fn = dequantQ6_K
	case Q8_K:
		fn = dequantQ8_K
	case IQ4_NL:
		fn = dequantIQ4_NL
	case IQ4_XS:
		fn = dequantIQ4_XS
	default:
		return fmt.Errorf("dequantize: type %s is not supported", l.name)
	}
	for i := 0; i < nb; i++ {
		fn(src[i*l.typeSize:(i+1)*l.typeSize], dst[i*l.blockSize:(i+1)*l.blockSize])
	}
	return nil
}

// block_q4_0: d fp16, qs[16]; value j is the low nibble of qs[j], value
// j+16 the high nibble, both offset by 8.
func dequantQ4_0(b []byte, y []float32) {
	d := fp16At(b)
	qs := b[2:18]
	y = y[:32]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0x0f)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// block_q4_1: d fp16, m fp16, qs[16].
func dequantQ4_1(b []byte, y []float32) {
	d := fp16At(b)
	m := fp16At(b[2:])
	qs := b[4:20]
	y = y[:32]
	for j := 0; j < 16; j++ {
		y[j] = float32(float32(qs[j]&0x0f)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

// block_q5_0: d fp16, qh[4] (fifth bits, little-endian), qs[16].
func dequantQ5_0(b []byte, y []float32) {
	d := fp16At(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	y = y[:32]
	for j := 0; j < 16; j++ {
		h0 := byte(qh>>uint(j)<<4) & 0x10
		h1 := byte(qh>>uint(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0x0f|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

// block_q5_1: d fp16, m fp16, qh[4], qs[16].
func dequantQ5_1(b []byte, y []float32) {
	d := fp16At(b)
	m := fp16At(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	y = y[:32]
	for j := 0; j < 16; j++ {
		h0 := byte(qh>>uint(j)<<4) & 0x10
		h1 := byte(qh>>uint(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0x0f|h0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
	}
}

// block_q8_0: d fp16, qs[32] int8.
func dequantQ8_0(b []byte, y []float32) {
	d := fp16At(b)
	qs := b[2:34]
	y = y[:32]
	for j := range 32 {
		y[j] = float32(int8(qs[j])) * d
	}
}

// block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
// Each qs byte holds four 2-bit values 32 positions apart.
func dequantQ2_K(b []byte, y []float32) {
	scales := b[0:16]
	q := b[16:80]
	d := fp16At(b[80:])
	min := fp16At(b[82:])
	y = y[:256]
	is := 0
	for n := 0; n < 256; n += 128 {
		qq := q[n/4 : n/4+32]
		shift := uint(0)
		for j := 0; j < 4; j++ {
			out := y[n+32*j : n+32*j+32]
			sc := scales[is]
			is++
			dl := d * float32(sc&0xf)
			ml := min * float32(sc>>4)
			for l := 0; l < 16; l++ {
				out[l] = float32(dl*float32((qq[l]>>shift)&3)) - ml
			}
			sc = scales[is]
			is++
			dl = d * float32(sc&0xf)
			ml = min * float32(sc>>4)
			for l := 0; l < 16; l++ {
				out[16+l] = float32(dl*float32((qq[l+16]>>shift)&3)) - ml
			}
			shift += 2
		}
	}
}

// q3KScales unpacks Q3_K's twelve bytes into sixteen 6-bit scales (still
// offset by 32): low nibbles in bytes 0-7, high two bits in bytes 8-11.
func q3KScales(s []byte) [16]int8 {
	var out [16]int8
	for j := 0; j < 16; j++ {
		var lo byte
		if j < 8 {
			lo = s[j] & 0xf
		} else {
			lo = s[j-8] >> 4
		}
		hi := (s[8+j%4] >> (2 * uint(j/4))) & 3
		out[j] = int8(lo | hi<<4)
	}
	return out
}

// block_q3_K: hmask[32], qs[64], scales[12], d fp16. The third bit of
// value 32*k+l (within each 128) is bit (n/128*4+k) of hmask[l]; a clear bit
// subtracts 4.
func dequantQ3_K(b []byte, y []float32) {
	hm := b[0:32]
	q := b[32:96]
	sc := q3KScales(b[96:108])
	dAll := fp16At(b[108:])
	y = y[:256]
	is := 0
	hbit := uint(0)
	for n := 0; n < 256; n += 128 {
		qq := q[n/4 : n/4+32]
		shift := uint(0)
		for j := 0; j < 4; j++ {
			out := y[n+32*j : n+32*j+32]
			for half := 0; half < 2; half++ {
				dl := dAll * float32(int(sc[is])-32)
				is++
				qh := qq[16*half : 16*half+16]
				hh := hm[16*half : 16*half+16]
				o := out[16*half : 16*half+16]
				for l := range 16 {
					// A clear high bit means the value is 4 lower.
					v := int((qh[l]>>shift)&3) - 4 + 4*int((hh[l]>>hbit)&1)
					o[l] = dl * float32(v)
				}
			}
			shift += 2
			hbit++
		}
	}
}

// scaleMinK4 extracts the j-th 6-bit scale and min of Q4_K/Q5_K's twelve
// scale bytes: j<4 sit in the low 6 bits of bytes j and j+4; j>=4 take a
// nibble of byte j+4 and the top two bits of bytes j-4 (scale) and j (min).
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// block_q4_K: d, dmin fp16, scales[12], qs[128]. Each 64 values share 32
// bytes: low nibbles first, then high nibbles.
func dequantQ4_K(b []byte, y []float32) {
	d := fp16At(b)
	min := fp16At(b[2:])
	scales := b[4:16]
	q := b[16:144]
	y = y[:256]
	for j := 0; j < 4; j++ {
		sc, m := scaleMinK4(2*j, scales)
		d1, m1 := d*float32(sc), min*float32(m)
		sc, m = scaleMinK4(2*j+1, scales)
		d2, m2 := d*float32(sc), min*float32(m)
		qq := q[32*j : 32*j+32]
		out := y[64*j : 64*j+64]
		for l := 0; l < 32; l++ {
			out[l] = float32(d1*float32(qq[l]&0xf)) - m1
			out[32+l] = float32(d2*float32(qq[l]>>4)) - m2
		}
	}
}

// block_q5_K: d, dmin fp16, scales[12], qh[32], qs[128]. As Q4_K with the
// fifth bit of value 64*j+l in bit 2j of qh[l] and of 64*j+32+l in bit 2j+1.
func dequantQ5_K(b []byte, y []float32) {
	d := fp16At(b)
	min := fp16At(b[2:])
	scales := b[4:16]
	qh := b[16:48]
	ql := b[48:176]
	y = y[:256]
	for j := 0; j < 4; j++ {
		sc, m := scaleMinK4(2*j, scales)
		d1, m1 := d*float32(sc), min*float32(m)
		sc, m = scaleMinK4(2*j+1, scales)
		d2, m2 := d*float32(sc), min*float32(m)
		s1, s2 := uint(2*j), uint(2*j+1)
		qq := ql[32*j : 32*j+32]
		hh := qh[:32]
		out := y[64*j : 64*j+64]
		for l := 0; l < 32; l++ {
			v1 := qq[l]&0xf | (hh[l]>>s1&1)<<4
			v2 := qq[l]>>4 | (hh[l]>>s2&1)<<4
			out[l] = float32(d1*float32(v1)) - m1
			out[32+l] = float32(d2*float32(v2)) - m2
		}
	}
}

// block_q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] int8,
// d fp16. Per 128 values: ql[l] holds values l (low nibble) and l+64 (high),
// ql[l+32] values l+32 and l+96; qh[l] holds the high bits of all four.
func dequantQ6_K(b []byte, y []float32) {
	ql := b[0:128]
	qh := b[128:192]
	sc := b[192:208]
	d := fp16At(b[208:])
	y = y[:256]
	for n := 0; n < 2; n++ {
		l4 := ql[64*n : 64*n+64]
		h := qh[32*n : 32*n+32]
		s := sc[8*n : 8*n+8]
		out := y[128*n : 128*n+128]
		var ds [8]float32
		for k := range ds {
			ds[k] = d * float32(int8(s[k]))
		}
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(l4[l]&0xf|(h[l]&3)<<4) - 32
			q2 := int(l4[l+32]&0xf|((h[l]>>2)&3)<<4) - 32
			q3 := int(l4[l]>>4|((h[l]>>4)&3)<<4) - 32
			q4 := int(l4[l+32]>>4|((h[l]>>6)&3)<<4) - 32
			out[l] = ds[is] * float32(q1)
			out[l+32] = ds[is+2] * float32(q2)
			out[l+64] = ds[is+4] * float32(q3)
			out[l+96] = ds[is+6] * float32(q4)
		}
	}
}

// block_q8_K: d float32, qs[256] int8, bsums[16] int16 (unused here).
func dequantQ8_K(b []byte, y []float32) {
	d := math.Float32frombits(binary.LittleEndian.Uint32(b))
	qs := b[4:260]
	y = y[:256]
	for j := range 256 {
		y[j] = d * float32(int8(qs[j]))
	}
}

// block_iq4_nl: d fp16, qs[16] of codebook indices, nibbles as in Q4_0.
func dequantIQ4_NL(b []byte, y []float32) {
	d := fp16At(b)
	qs := b[2:18]
	y = y[:32]
	for j := 0; j < 16; j++ {
		y[j] = d * float32(kvaluesIQ4NL[qs[j]&0xf])
		y[j+16] = d * float32(kvaluesIQ4NL[qs[j]>>4])
	}
}

// block_iq4_xs: d fp16, scales_h uint16 (2 high bits per 32-block),
// scales_l[4] (low nibble per 32-block), qs[128]; 6-bit scales offset by 32.
func dequantIQ4_XS(b []byte, y []float32) {
	d := fp16At(b)
	sh := binary.LittleEndian.Uint16(b[2:])
	sl := b[4:8]
	qs := b[8:136]
	y = y[:256]
	for ib := 0; ib < 8; ib++ {
		ls := int((sl[ib/2]>>(4*uint(ib%2)))&0xf) | int((sh>>(2*uint(ib)))&3)<<4
		dl := d * float32(ls-32)
		q := qs[16*ib : 16*ib+16]
		out := y[32*ib : 32*ib+32]
		for j := 0; j < 16; j++ {
			out[j] = dl * float32(kvaluesIQ4NL[q[j]&0xf])
			out[j+16] = dl * float32(kvaluesIQ4NL[q[j]>>4])
		}
	}
}
