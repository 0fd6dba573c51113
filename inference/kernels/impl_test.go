package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// The tests below hold every kernel of the chosen (assembly) set to its
// pure-Go twin. On machines or builds without assembly both sets are Go
// and the tests pass trivially.

func TestQuantizersMatchGo(t *testing.T) {
	for _, k := range kernelSets()[1:] {
		testQuantizers(t, k)
	}
}

func testQuantizers(t *testing.T, asmSet *kernelSet) {
	g := goKernels()
	rng := rand.New(rand.NewPCG(9, 10))
	for _, nb := range []int{1, 2, 3, 7} {
		for _, f := range []struct {
			name     string
			bs, per  int
			asm, ref func(x []float32, q []int8, d []float32, s []int16)
		}{
			{"Q8_0", 32, 32, asmSet.quantQ8_0, g.quantQ8_0},
			{"Q8_K", 256, 16, asmSet.quantQ8_K, g.quantQ8_K},
		} {
			x := randomActs(rng, nb*f.bs)
			if nb == 3 {
				clear(x[f.bs : 2*f.bs]) // an all-zero block
			}
			x[0] = 0.5 // a tie, to check the rounding mode
			qa, qg := make([]int8, len(x)), make([]int8, len(x))
			da, dg := make([]float32, nb), make([]float32, nb)
			sa, sg := make([]int16, len(x)/f.per), make([]int16, len(x)/f.per)
			f.asm(x, qa, da, sa)
			f.ref(x, qg, dg, sg)
			if !slices.Equal(qa, qg) || !slices.Equal(da, dg) || !slices.Equal(sa, sg) {
				t.Errorf("%s %s nb=%d: assembly and Go quantizers differ", asmSet.name, f.name, nb)
			}
		}
	}
}

func TestQDotMatchGo(t *testing.T) {
	for _, k := range kernelSets()[1:] {
		testQDot(t, k)
	}
}

func testQDot(t *testing.T, asmSet *kernelSet) {
	g := goKernels()
	rng := rand.New(rand.NewPCG(11, 12))
	for wt, ref := range g.qdot {
		dot := asmSet.qdot[wt]
		for _, nb := range []int{1, 2, 3, 5, 8, 11} {
			cols := nb * wt.BlockSize()
			w := randomRows(rng, wt, 1, cols)
			var in Input
			in.prepare(asmSet, wt, randomActs(rng, cols), 1, cols)
			nd, ns := len(in.d), len(in.s)
			want := ref(w, in.q, in.d, in.s, in.sy)
			got := dot(w, asmSet.acts(&in, wt), in.d[:nd], in.s[:ns], in.sy[:ns])
			mag := dotMagnitude(wt, w, &in)
			if !(math.Abs(float64(got-want)) <= 1e-5*mag+1e-7) {
				t.Errorf("%v nb=%d: %s %g, go %g (scale %g)", wt, nb, asmSet.name, got, want, mag)
			}
		}
	}
}

// dotMagnitude is sum |w_j * a_j| for token 0, the scale of rounding error.
func dotMagnitude(wt ggml.Type, w []byte, in *Input) float64 {
	a := activation(in, 0)
	var m float64
	for j, v := range dequantRow(wt, w, in.cols) {
		m += math.Abs(v * a[j])
	}
	return m
}

// FuzzKernels runs every kernel set (batched kernels whatever the token
// count) on random weights of a fuzzed type and shape, against the float64
// product of the dequantized weights, and each set's single-row dot product
// against the Go one.
func FuzzKernels(f *testing.F) {
	f.Add(uint8(ggml.Q4_0), uint8(1), uint64(1))
	f.Add(uint8(ggml.Q4_K), uint8(3), uint64(2))
	f.Fuzz(func(t *testing.T, typ, nb uint8, seed uint64) {
		wt := ggml.Type(typ)
		if !Supported(wt) || nb == 0 || nb > 40 {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 99))
		cols := int(nb) * wt.BlockSize()
		if wt.BlockSize() == 1 {
			cols = int(nb) * 7
		}
		ntok := 1 + int(seed%6)
		rows := 1 + int(seed>>8%9)
		w := randomRows(rng, wt, rows, cols)
		x := randomActs(rng, ntok*cols)
		g := goKernels()
		for _, set := range kernelSets() {
			k := *set
			k.tileMin = nil
			checkMatMulWith(t, &k, wt, w, rows, cols, x, ntok, 0, rows)
			var in Input
			in.prepare(&k, wt, x, 1, cols)
			rb, _ := wt.RowBytes(cols)
			row := w[:rb]
			var got, want float32
			if in.form == formF32 {
				got, want = k.fdot[wt](row, in.f), g.fdot[wt](row, in.f)
			} else {
				got = k.qdot[wt](row, k.acts(&in, wt), in.d, in.s, in.sy)
				want = g.qdot[wt](row, in.q, in.d, in.s, in.sy)
			}
			var mag float64
			a := activation(&in, 0)
			for j, v := range dequantRow(wt, row, cols) {
				mag += math.Abs(v * a[j])
			}
			if !(math.Abs(float64(got-want)) <= 1e-5*mag+1e-7) {
				t.Fatalf("%s %v: dot %g, Go %g", k.name, wt, got, want)
			}
		}
	})
}

func TestFloatKernelsMatchGo(t *testing.T) {
	g := goKernels()
	rng := rand.New(rand.NewPCG(13, 14))
	for _, k := range kernelSets()[1:] {
		for _, n := range []int{1, 7, 8, 9, 33, 100, 257} {
			x := randomActs(rng, n)
			for _, wt := range []ggml.Type{ggml.F32, ggml.F16, ggml.BF16} {
				w := randomRows(rng, wt, 1, n)
				want, got := g.fdot[wt](w, x), k.fdot[wt](w, x)
				var mag float64
				for j, v := range dequantRow(wt, w, n) {
					mag += math.Abs(v * float64(x[j]))
				}
				if !(math.Abs(float64(got-want)) <= 1e-6*mag) {
					t.Errorf("%s %v n=%d: %g, go %g", k.name, wt, n, got, want)
				}
			}
			// Conversions are exact, including ties, subnormals and overflow.
			src := randomActs(rng, n)
			for j := range src {
				switch rng.IntN(4) {
				case 0:
					src[j] = float32(math.Ldexp(float64(src[j]), -20))
				case 1:
					src[j] *= 40000
				case 2:
					src[j] = float32(float64(rng.IntN(4096)) / 2048 * (1 + 1.0/2048)) // ties
				}
			}
			ha, hg := make([]uint16, n), make([]uint16, n)
			k.f32ToF16(ha, src)
			g.f32ToF16(hg, src)
			if !slices.Equal(ha, hg) {
				t.Errorf("%s f32ToF16 n=%d differs", k.name, n)
			}
			fa, fg := make([]float32, n), make([]float32, n)
			k.f16ToF32(fa, ha)
			g.f16ToF32(fg, ha)
			if !slices.Equal(fa, fg) {
				t.Errorf("%s f16ToF32 n=%d differs", k.name, n)
			}
		}
	}
}

// TestUnpack checks the Go unpackers against the dequantizer through the
// unpacked form's formula, and the assembly unpackers against the Go ones.
func TestUnpack(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for wt, un := range unpackers {
		for _, n := range []int{256, 512, 1024, 32 * 23} {
			if n%wt.BlockSize() != 0 {
				continue
			}
			w := randomRows(rng, wt, 1, n)
			super, place := 512, ui32
			if formOf(wt) == formQ8_K && wt != ggml.Q4_K {
				super, place = 256, uiK
			}
			ns := (n + super - 1) / super
			u, s, k := make([]byte, ns*super*4), make([]float32, ns*64), make([]float32, ns*64)
			slot := 2 // unpack into the third of the four row slots
			un(w, n, u[slot*64:], s[slot*16:], k[slot*16:])
			gsize := super / 16
			if wt == ggml.Q4_K {
				gsize = 32 // super-chunks of 512 values over two super-blocks
			}
			for v, want := range dequantRow(wt, w, n) {
				g := v / gsize
				got := float64(s[slot*16+gi(g)])*float64(u[slot*64+place(v)]) + float64(k[slot*16+gi(g)])
				if !(math.Abs(got-want) <= 1e-6*math.Abs(want)+1e-9) {
					t.Fatalf("%v n=%d value %d: unpacked %g, want %g", wt, n, v, got, want)
				}
			}
			for _, set := range kernelSets() {
				f := set.unpack[wt]
				if f == nil {
					continue
				}
				u2, s2, k2 := make([]byte, len(u)), make([]float32, len(s)), make([]float32, len(k))
				f(w, n, u2[slot*64:], s2[slot*16:], k2[slot*16:])
				if !slices.Equal(u, u2) || !slices.Equal(s, s2) || !slices.Equal(k, k2) {
					t.Errorf("%s %v n=%d: unpacker differs from Go", set.name, wt, n)
				}
			}
		}
	}
}

// TestTiles runs every batched kernel, whatever its token threshold, on
// few tokens and odd shapes.
func TestTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, set := range kernelSets() {
		if len(set.tile) == 0 {
			continue
		}
		k := *set
		k.tileMin = nil
		for wt := range k.tile {
			for _, cols := range []int{256, 512, 1024, 32 * 23, 48, 37} {
				if cols%wt.BlockSize() != 0 {
					continue
				}
				for _, ntok := range []int{2, 5, 9} {
					rows := 11
					w := randomRows(rng, wt, rows, cols)
					x := randomActs(rng, ntok*cols)
					t.Run(fmt.Sprintf("%s/%v/cols%d/ntok%d", k.name, wt, cols, ntok), func(t *testing.T) {
						checkMatMulWith(t, &k, wt, w, rows, cols, x, ntok, 1, rows)
					})
				}
			}
		}
	}
}

func TestNoAllocation(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, wt := range allTypes {
		const rows, ntok = 9, 5
		cols := 512
		if wt.BlockSize() == 1 {
			cols = 45 // tails of 8 and 16 values
		}
		w := randomRows(rng, wt, rows, cols)
		x := randomActs(rng, ntok*cols)
		dst := make([]float32, ntok*rows)
		var in Input
		for _, n := range []int{ntok, 1} {
			in.Prepare(wt, x, n, cols) // warm up
			MatMulRows(dst, rows, wt, w, cols, &in, 0, rows)
			allocs := testing.AllocsPerRun(20, func() {
				in.Prepare(wt, x, n, cols)
				MatMulRows(dst, rows, wt, w, cols, &in, 0, rows)
			})
			if allocs > 0 {
				t.Errorf("%v ntok=%d: %g allocations per Prepare+MatMulRows", wt, n, allocs)
			}
		}
	}
}

// TestMatMulRowsStride checks that rows taken wStride bytes apart give what
// the same rows packed together give, for every set and type.
func TestMatMulRowsStride(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, set := range kernelSets() {
		for _, wt := range allTypes {
			for _, ntok := range []int{1, 3, 8} {
				const rows = 6
				cols := 512
				if wt.BlockSize() == 1 {
					cols = 45
				}
				rb, _ := wt.RowBytes(cols)
				packed := randomRows(rng, wt, rows, cols)
				stride := rb + 13
				strided := make([]byte, (rows-1)*stride+rb)
				for i := range strided {
					strided[i] = 0xff // garbage between the rows
				}
				for r := 0; r < rows; r++ {
					copy(strided[r*stride:], packed[r*rb:(r+1)*rb])
				}
				var in Input
				in.prepare(set, wt, randomActs(rng, ntok*cols), ntok, cols)
				want, got := make([]float32, ntok*rows), make([]float32, ntok*rows)
				set.matMulRows(want, rows, wt, packed, cols, rb, &in, 0, rows)
				set.matMulRows(got, rows, wt, strided, cols, stride, &in, 0, rows)
				if !slices.Equal(got, want) {
					t.Errorf("%s %v ntok=%d: strided %v, packed %v", set.name, wt, ntok, got, want)
				}
			}
		}
	}
}

// TestTilesBlocked uses shapes large enough for the batched kernels to
// split rows and tokens into several cache blocks (with odd remainders).
func TestTilesBlocked(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, set := range kernelSets() {
		if len(set.tile) == 0 {
			continue
		}
		for _, wt := range []ggml.Type{ggml.Q8_0, ggml.Q4_K, ggml.Q6_K, ggml.F16} {
			const rows, cols, ntok = 101, 4096, 99
			w := randomRows(rng, wt, rows, cols)
			x := randomActs(rng, ntok*cols)
			t.Run(fmt.Sprintf("%s/%v", set.name, wt), func(t *testing.T) {
				checkMatMulWith(t, set, wt, w, rows, cols, x, ntok, 2, rows)
			})
		}
	}
}
