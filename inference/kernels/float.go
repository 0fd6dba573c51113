package kernels

import "github.com/foretoken/foretoken/gguf/ggml"

// fp16 conversions of whole slices, for the fp16 KV cache and the rounding
// of activations that F16 weights multiply with.

// F32ToF16 rounds src to fp16 (nearest even) into dst (len(dst) >= len(src)).
func F32ToF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic("kernels: F32ToF16 length mismatch")
	}
	impl.f32ToF16(dst[:len(src)], src)
}

// F16ToF32 widens the fp16 values src into dst (len(dst) >= len(src)).
func F16ToF32(dst []float32, src []uint16) {
	if len(dst) < len(src) {
		panic("kernels: F16ToF32 length mismatch")
	}
	impl.f16ToF32(dst[:len(src)], src)
}

func f32ToF16Go(dst []uint16, src []float32) {
	for j, v := range src {
		dst[j] = ggml.Float32ToFP16(v)
	}
}

func f16ToF32Go(dst []float32, src []uint16) {
	for j, v := range src {
		dst[j] = fp16ToF32(v)
	}
}
