package model

import (
	"math"

	"github.com/viterin/vek/vek32"
)

// rmsNorm writes x / sqrt(mean(x²) + eps) * w into dst (which may be x).
// It rounds as llama.cpp does (ggml's rms_norm, then a separate multiply by
// w): the sum of squares in float64, the mean and the scale in float32, x
// times the scale before the weight. Quantized weights make this matter:
// their activations are rounded to int8 next, and a different last bit
// sometimes rounds one the other way, which later layers amplify.
func rmsNorm(dst, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v * v)
	}
	mean := float32(ss / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	vek32.MulNumber_Into(dst[:len(x)], x, scale)
	vek32.Mul_Inplace(dst[:len(x)], w[:len(x)])
}

// add adds y to x element-wise.
func add(x, y []float32) { vek32.Add_Inplace(x, y[:len(x)]) }

// swiglu writes silu(gate) * up = gate / (1 + exp(-gate)) * up into gate,
// in slices of len(tmp) with vectorized exp.
func swiglu(gate, up, tmp []float32) {
	up = up[:len(gate)]
	for i := 0; i < len(gate); i += len(tmp) {
		g, u := gate[i:min(i+len(tmp), len(gate))], up[i:min(i+len(tmp), len(gate))]
		t := tmp[:len(g)]
		vek32.MulNumber_Into(t, g, -1)
		expInplace(t)
		vek32.AddNumber_Inplace(t, 1)
		vek32.Div_Inplace(g, t)
		vek32.Mul_Inplace(g, u)
	}
}

// ropeTables fills cos and sin (each dims/2 long) for one position:
// theta_i = pos * scale * base^(-2i/dims) / factors[i].
//
// theta is computed as ggml's rope cache does, in float32 with
// base^(-2/dims) multiplied in once per pair. It is a few ulp from the exact
// value, and the keys' rounding to fp16 and the activations' to int8 turn
// such differences into different roundings, so llama.cpp's is the one to
// reproduce.
func ropeTables(cos, sin []float32, pos int, scale, base float32, factors []float32) {
	n := len(cos)
	step := float32(math.Pow(float64(base), float64(float32(-2)/float32(2*n))))
	theta := float32(pos)
	for i := range n {
		t := theta
		if factors != nil {
			t /= factors[i]
		}
		s, c := math.Sincos(float64(t * scale))
		cos[i], sin[i] = float32(c), float32(s)
		theta *= step
	}
}

// rope rotates the first 2*len(cos) values of one head in place.
func rope(x, cos, sin []float32, mode RopeMode) {
	n := len(cos)
	if mode == RopeNeoX {
		a, b := x[:n], x[n:2*n]
		for i := range n {
			x0, x1 := a[i], b[i]
			a[i] = x0*cos[i] - x1*sin[i]
			b[i] = x0*sin[i] + x1*cos[i]
		}
		return
	}
	x = x[:2*n]
	for i := range n {
		x0, x1 := x[2*i], x[2*i+1]
		x[2*i] = x0*cos[i] - x1*sin[i]
		x[2*i+1] = x0*sin[i] + x1*cos[i]
	}
}

// expInplace replaces x by exp(x). vek32's vectorized exp is fast but
// wrong outside about [-87, 88] (exp(-100) comes out as -4e33), so the
// arguments are clamped to that range first: exp(-87) is 1.6e-38, as good
// as 0 here, and exp(88) is near the largest float32.
func expInplace(x []float32) {
	vek32.MaximumNumber_Inplace(x, -87)
	vek32.MinimumNumber_Inplace(x, 88)
	vek32.Exp_Inplace(x)
}

// softmax normalises x in place.
func softmax(x []float32) {
	vek32.AddNumber_Inplace(x, -vek32.Max(x))
	expInplace(x)
	vek32.MulNumber_Inplace(x, float32(1/float64(vek32.Sum(x))))
}
