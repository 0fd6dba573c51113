package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFP16Conversions(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		f       float32
		h       uint16
		inexact bool // f is not a half value, so h does not convert back to f
	}{
		{0, 0x0000, false},
		{float32(math.Copysign(0, -1)), 0x8000, false},
		{1, 0x3c00, false},
		{-2, 0xc000, false},
		{0.5, 0x3800, false},
		{65504, 0x7bff, false},           // largest finite
		{inf, 0x7c00, false},             // infinity
		{-inf, 0xfc00, false},            // negative infinity
		{0x1p-14, 0x0400, false},         // smallest normal
		{0x1p-24, 0x0001, false},         // smallest subnormal
		{0x3ffp-24, 0x03ff, false},       // largest subnormal
		{-0x1p-24, 0x8001, false},        // negative subnormal
		{0.333251953125, 0x3555, false},  // exactly representable
		{1.0009765625, 0x3c01, false},    // 1 + 2^-10
		{0.0999755859375, 0x2e66, false}, // exactly representable
		{2049, 0x6800, true},             // tie between 2048 and 2050 goes to even 2048
		{2051, 0x6802, true},             // tie between 2050 and 2052 goes to even 2052
		{1 + 0x1p-11, 0x3c00, true},      // tie: even mantissa stays
		{1 + 3*0x1p-11, 0x3c02, true},    // tie: odd mantissa rounds up
	}
	for _, tt := range tests {
		if got := Float32ToFP16(tt.f); got != tt.h {
			t.Errorf("Float32ToFP16(%g) = %#04x, want %#04x", tt.f, got, tt.h)
		}
		if got := FP16ToFloat32(tt.h); !tt.inexact && got != tt.f {
			t.Errorf("FP16ToFloat32(%#04x) = %g, want %g", tt.h, got, tt.f)
		}
	}
	// Rounding beyond the largest finite half: 65519.99 rounds down, 65520 (the
	// midpoint to 2^16) rounds to infinity.
	if got := Float32ToFP16(65519); got != 0x7bff {
		t.Errorf("Float32ToFP16(65519) = %#04x, want 0x7bff", got)
	}
	if got := Float32ToFP16(65520); got != 0x7c00 {
		t.Errorf("Float32ToFP16(65520) = %#04x, want 0x7c00", got)
	}
	// Below half the smallest subnormal: zero; exactly half: ties to even (zero);
	// 0.75 of it: rounds up.
	for _, c := range []struct {
		f float32
		h uint16
	}{{0x1p-26, 0}, {0x1p-25, 0}, {0x3p-26, 1}, {0x3p-25, 2}} {
		if got := Float32ToFP16(c.f); got != c.h {
			t.Errorf("Float32ToFP16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	nan := Float32ToFP16(float32(math.NaN()))
	if nan&0x7c00 != 0x7c00 || nan&0x3ff == 0 {
		t.Errorf("Float32ToFP16(NaN) = %#04x, not a NaN", nan)
	}
	if f := FP16ToFloat32(0x7e00); !math.IsNaN(float64(f)) {
		t.Errorf("FP16ToFloat32(0x7e00) = %g, want NaN", f)
	}
}

// Every half value converts to float32 and back unchanged (NaNs stay NaN).
func TestFP16RoundTripAll(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := FP16ToFloat32(uint16(h))
		back := Float32ToFP16(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// Float32ToFP16 picks the nearest half (ties to even) for random inputs
// across the finite half range, checked against float64 distances.
func TestFP16Nearest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		f := float32(math.Ldexp(r.Float64()*2-1, r.IntN(42)-26)) // |f| < 2^15: finite halves
		h := Float32ToFP16(f)
		got := float64(FP16ToFloat32(h))
		d := math.Abs(got - float64(f))
		for _, nb := range []uint16{h + 1, h - 1} {
			if nb&0x7c00 == 0x7c00 {
				continue
			}
			o := float64(FP16ToFloat32(nb))
			if math.Signbit(o) != math.Signbit(got) && o != 0 {
				continue
			}
			od := math.Abs(o - float64(f))
			if od < d || (od == d && h&1 == 1) {
				t.Fatalf("Float32ToFP16(%g) = %#04x (%g), but %#04x (%g) is nearer or even", f, h, got, nb, o)
			}
		}
	}
}

func TestBF16Conversions(t *testing.T) {
	tests := []struct {
		bits uint32
		h    uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x3f807fff, 0x3f80}, // below the tie
		{0xbf800000, 0xbf80}, // -1
		{0x7f7fffff, 0x7f80}, // max float rounds to infinity
		{0x7f800000, 0x7f80}, // infinity
		{0x7f800001, 0x7fc0}, // signalling NaN becomes quiet
		{0x7f810000, 0x7fc1}, // NaN payload kept, quiet bit set
		{0xffc00000, 0xffc0}, // negative quiet NaN
		{0x00000001, 0x0000}, // tiny subnormal rounds to zero
	}
	for _, tt := range tests {
		if got := Float32ToBF16(math.Float32frombits(tt.bits)); got != tt.h {
			t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", tt.bits, got, tt.h)
		}
	}
	for _, h := range []uint16{0x3f80, 0xc000, 0x0001, 0x7f80} {
		if got := math.Float32bits(BF16ToFloat32(h)); got != uint32(h)<<16 {
			t.Errorf("BF16ToFloat32(%#04x) bits = %#08x", h, got)
		}
	}
}
