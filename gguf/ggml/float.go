package ggml

import "math"

// fp16Table holds the float32 value of every half, built once: a lookup is
// several times faster than decoding the bits, which matters for F16 weights.
var fp16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = fp16Bits(uint16(h))
	}
	return &t
}()

// FP16ToFloat32 converts an IEEE 754 half-precision value to float32.
// Every half value, subnormals and NaN payloads included, is exact in float32.
func FP16ToFloat32(h uint16) float32 { return fp16Table[h] }

func fp16Bits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN: keep the payload in the top mantissa bits.
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: normalize so the leading 1 becomes the implicit bit.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// Float32ToFP16 converts f to half precision, rounding to nearest with ties
// to even as F16C's VCVTPS2PH (and ggml's software fallback) do. Values too
// large become ±Inf; NaN stays a quiet NaN with the top payload bits kept.
func Float32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e >= 1 {
		h := uint32(e)<<10 | mant>>13
		rest := mant & 0x1fff
		// A carry out of the mantissa correctly bumps the exponent (up to Inf).
		if rest > 0x1000 || (rest == 0x1000 && h&1 != 0) {
			h++
		}
		return sign | uint16(h)
	}
	// Result is subnormal or zero: shift the full significand into place.
	shift := uint(14 - e)
	if shift > 24 {
		return sign
	}
	m := mant | 0x800000
	h := m >> shift
	rest := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rest > half || (rest == half && h&1 != 0) {
		h++
	}
	return sign | uint16(h)
}

// BF16ToFloat32 converts a bfloat16 value to float32 (exact).
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 converts f to bfloat16 as ggml does: round to nearest even,
// and NaN forced to a quiet NaN by setting bit 6 of the result.
func Float32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + (u>>16)&1)) >> 16)
}
