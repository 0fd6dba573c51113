package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foretoken/foretoken/gguf/ggml"
)

var allTypes = []ggml.Type{
	ggml.F32, ggml.F16, ggml.BF16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1,
	ggml.IQ4_NL, ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.IQ4_XS,
}

func randomActs(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for j := range x {
		x[j] = float32(rng.NormFloat64())
		if rng.IntN(50) == 0 {
			x[j] *= 20 // outliers, as real activations have
		}
	}
	return x
}

// activation returns the values the kernels see for token t: the float32
// input itself or its dequantized 8-bit form.
func activation(in *Input, t int) []float64 {
	a := make([]float64, in.cols)
	if in.form == formF32 {
		for j := range a {
			a[j] = float64(in.f[t*in.cols+j])
		}
		return a
	}
	bs := 32
	if in.form == formQ8_K {
		bs = 256
	}
	for j := range a {
		k := t*in.cols + j
		a[j] = float64(in.q[k]) * float64(in.d[k/bs])
	}
	return a
}

// checkMatMul multiplies rows [r0,r1) and checks every output against a
// float64 product of the dequantized weights with the activations the kernel
// was given (tight: only float32 accumulation differs) and with the
// original float32 activations (within the 8-bit rounding bound).
func checkMatMul(t *testing.T, wt ggml.Type, w []byte, rows, cols int, x []float32, ntok, r0, r1 int) {
	t.Helper()
	checkMatMulWith(t, impl, wt, w, rows, cols, x, ntok, r0, r1)
}

func checkMatMulWith(t *testing.T, k *kernelSet, wt ggml.Type, w []byte, rows, cols int, x []float32, ntok, r0, r1 int) {
	t.Helper()
	var in Input
	in.prepare(k, wt, x, ntok, cols)
	stride := rows + 3
	dst := make([]float32, ntok*stride)
	for j := range dst {
		dst[j] = float32(math.NaN())
	}
	rb, _ := wt.RowBytes(cols)
	k.matMulRows(dst, stride, wt, w, cols, rb, &in, r0, r1)
	rowBytes, _ := wt.RowBytes(cols)
	for tk := 0; tk < ntok; tk++ {
		a := activation(&in, tk)
		xt := x[tk*cols : (tk+1)*cols]
		for r := 0; r < rows; r++ {
			got := dst[tk*stride+r]
			if r < r0 || r >= r1 {
				if !math.IsNaN(float64(got)) {
					t.Fatalf("%v: row %d outside [%d,%d) written", wt, r, r0, r1)
				}
				continue
			}
			wr := dequantRow(wt, w[r*rowBytes:(r+1)*rowBytes], cols)
			var ref, mag, exact, bound float64
			for j, wv := range wr {
				ref += wv * a[j]
				mag += math.Abs(wv * a[j])
				exact += wv * float64(xt[j])
				bound += math.Abs(wv) * math.Abs(float64(xt[j])-a[j])
			}
			// Q4_1 and Q5_1 weights take their minimum times the fp16
			// rounding of the block's sum times scale, as llama.cpp's
			// Q8_1 activations give it.
			if in.rounding == roundQ8_1 {
				for b := 0; b < cols/32; b++ {
					m := float64(ggml.FP16ToFloat32(uint16(w[r*rowBytes+b*rowBytes/(cols/32)+2]) | uint16(w[r*rowBytes+b*rowBytes/(cols/32)+3])<<8))
					k := tk*cols/32 + b
					c := m * (float64(in.sy[k]) - float64(in.d[k])*float64(in.s[k]))
					ref += c
					mag += math.Abs(m * float64(in.sy[k]))
					bound += math.Abs(c)
				}
			}
			if d := math.Abs(float64(got) - ref); !(d <= 2e-5*mag+1e-6) {
				t.Fatalf("%v token %d row %d: got %g, want %g (diff %g, scale %g)", wt, tk, r, got, ref, d, mag)
			}
			if d := math.Abs(ref - exact); !(d <= bound*1.0001+1e-9) {
				t.Fatalf("%v token %d row %d: quantized-activation product %g off exact %g by %g > bound %g", wt, tk, r, ref, exact, d, bound)
			}
		}
	}
}

func TestMatMulRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, wt := range allTypes {
		// 32*23: an odd number of blocks and a half 64-value chunk; 512 and
		// 768: whole chunks and whole blocks of 16 groups.
		for _, cols := range []int{256, 512, 768, 32 * 23} {
			if cols%wt.BlockSize() != 0 || (wt.BlockSize() == 256 && cols == 512) {
				continue
			}
			for _, ntok := range []int{1, 2, 3, 4, 5, 7} {
				rows := 13 + 2*ntok
				t.Run(fmt.Sprintf("%v/cols%d/ntok%d", wt, cols, ntok), func(t *testing.T) {
					w := randomRows(rng, wt, rows, cols)
					x := randomActs(rng, ntok*cols)
					checkMatMul(t, wt, w, rows, cols, x, ntok, 0, rows)
					checkMatMul(t, wt, w, rows, cols, x, ntok, 3, rows-2)
					checkMatMul(t, wt, w, rows, cols, x, ntok, 5, 6)
				})
			}
		}
	}
}

func TestQuantizeActivations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, wt := range []ggml.Type{ggml.Q8_0, ggml.Q4_K} {
		x := randomActs(rng, 3*512)
		copy(x[256:288], make([]float32, 32)) // an all-zero block
		var in Input
		in.Prepare(wt, x, 3, 512)
		bs, per := 32, 32
		if wt == ggml.Q4_K {
			bs, per = 256, 16
		}
		for j, v := range x {
			d := float64(in.d[j/bs])
			q := int(in.q[j])
			if q < -127 || q > 127 {
				t.Fatalf("%v: value %d quantized to %d", wt, j, q)
			}
			// The Q8_0 scale is rounded to fp16 (relative error at most
			// 2^-11) after the values were rounded with the float32 one.
			tol := d / 2 * (1 + 1e-6)
			if wt == ggml.Q8_0 {
				tol += 127 * d * 0x1p-11
			}
			if !(math.Abs(float64(v)-float64(q)*d) <= tol) {
				t.Fatalf("%v: value %d = %g quantized to %d*%g", wt, j, v, q, d)
			}
		}
		for g := range in.s {
			var s int
			for _, v := range in.q[g*per : (g+1)*per] {
				s += int(v)
			}
			if int(in.s[g]) != s {
				t.Fatalf("%v: block sum %d = %d, want %d", wt, g, in.s[g], s)
			}
		}
		for b := range in.d {
			var amax float32
			for _, v := range x[b*bs : (b+1)*bs] {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			want := amax / 127
			if wt == ggml.Q8_0 {
				want = ggml.FP16ToFloat32(ggml.Float32ToFP16(want)) // as ggml's block_q8_0 keeps it
			}
			if in.d[b] != want {
				t.Fatalf("%v: block %d scale %g, want %g", wt, b, in.d[b], want)
			}
		}
	}
}

func TestFP16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := fp16ToF32(uint16(h))
		exp, mant := h>>10&31, h&1023
		var want float64
		switch {
		case exp == 31 && mant != 0:
			if !math.IsNaN(float64(f)) {
				t.Fatalf("%#04x: got %g, want NaN", h, f)
			}
			continue
		case exp == 31:
			want = math.Inf(1)
		case exp == 0:
			want = math.Ldexp(float64(mant), -24)
		default:
			want = math.Ldexp(float64(mant|1024), exp-25)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("%#04x: got %g, want %g", h, f, want)
		}
		if exp != 31 || mant == 0 {
			if back := ggml.Float32ToFP16(f); back != uint16(h) {
				t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
			}
		}
	}
	// Rounding: halfway cases go to even; overflow saturates to Inf.
	cases := []struct {
		f float32
		h uint16
	}{
		{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {65520, 0x7c00}, {65519, 0x7bff},
		{float32(math.Ldexp(1, -25)), 0}, {float32(math.Ldexp(1.5, -25)), 1}, {1e-10, 0},
	}
	for _, c := range cases {
		if got := ggml.Float32ToFP16(c.f); got != c.h {
			t.Errorf("ggml.Float32ToFP16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
}

// TestFloatHelpers checks the slice conversions against ggml's scalar ones,
// which are tested over every half value.
func TestFloatHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 8, 33, 200} {
		src := randomActs(rng, n)
		b := make([]uint16, n)
		F32ToF16(b, src)
		f := make([]float32, n)
		F16ToF32(f, b)
		for j := range f {
			if want := ggml.Float32ToFP16(src[j]); b[j] != want {
				t.Fatalf("F32ToF16 n=%d [%d]: got %#04x, want %#04x", n, j, b[j], want)
			}
			if want := ggml.FP16ToFloat32(b[j]); f[j] != want {
				t.Fatalf("F16ToF32 n=%d [%d]: got %g, want %g", n, j, f[j], want)
			}
		}
	}
}
