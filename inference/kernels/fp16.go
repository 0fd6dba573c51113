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

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func fp16At(b []byte) float32 { return fp16ToF32(le16(b)) }
