package kernels

import "math"

// fp16ToF32 converts an IEEE half-precision value. Rebiasing the exponent
// by integer arithmetic handles normals; one float subtraction renormalises
// subnormals, so there is no table to pull through the cache.
func fp16ToF32(h uint16) float32 {
	o := uint32(h&0x7fff) << 13
	exp := o & 0x0f800000
	o += (127 - 15) << 23
	switch exp {
	case 0x0f800000: // Inf or NaN
		o += (128 - 16) << 23
	case 0: // zero or subnormal
		o += 1 << 23
		o = math.Float32bits(math.Float32frombits(o) - math.Float32frombits(113<<23))
	}
	return math.Float32frombits(o | uint32(h&0x8000)<<16)
}

// f32ToFP16 rounds to nearest even, as F16C's VCVTPS2PH does by default.
func f32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff:
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f:
		return sign | 0x7c00
	case exp-127+15 <= 0:
		if exp-127+15 < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - (exp - 127 + 15))
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp-127+15)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the right answer
	}
	return sign | uint16(r)
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func fp16At(b []byte) float32 { return fp16ToF32(le16(b)) }
