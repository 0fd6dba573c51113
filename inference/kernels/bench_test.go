package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/foretoken/foretoken/gguf/ggml"
)

// BenchmarkMatMul multiplies a 2048x2048 matrix of each type with 1 and 16
// tokens for every kernel set; MB/s is weight bytes read per second.
func BenchmarkMatMul(b *testing.B) {
	const rows, cols = 2048, 2048
	rng := rand.New(rand.NewPCG(1, 1))
	for _, wt := range allTypes {
		w := randomRows(rng, wt, rows, cols)
		for _, ntok := range []int{1, 16, 128} {
			x := randomActs(rng, ntok*cols)
			dst := make([]float32, ntok*rows)
			for _, k := range kernelSets() {
				if k.name == "go" && ntok > 16 {
					continue // minutes, and says nothing new
				}
				b.Run(fmt.Sprintf("%v/ntok%d/%s", wt, ntok, k.name), func(b *testing.B) {
					var in Input
					in.prepare(k, wt, x, ntok, cols)
					b.SetBytes(int64(len(w)))
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					c0 := threadCPU()
					for b.Loop() {
						k.matMulRows(dst, rows, wt, w, cols, len(w)/rows, &in, 0, rows)
					}
					if cpu := threadCPU() - c0; cpu > 0 {
						// Weight GB/s per second of this thread's CPU time.
						b.ReportMetric(float64(len(w))*float64(b.N)/cpu.Seconds()/1e9, "cpuGB/s")
						b.ReportMetric(float64(rows)*float64(cols)*float64(ntok)*float64(b.N)/cpu.Seconds()/1e9, "cpuGMAC/s")
					}
				})
			}
		}
	}
}

func BenchmarkPrepare(b *testing.B) {
	const cols, ntok = 2048, 16
	x := randomActs(rand.New(rand.NewPCG(2, 2)), ntok*cols)
	for _, wt := range []ggml.Type{ggml.Q8_0, ggml.Q4_K} {
		for _, k := range kernelSets() {
			b.Run(fmt.Sprintf("%v/%s", wt, k.name), func(b *testing.B) {
				var in Input
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					in.prepare(k, wt, x, ntok, cols)
				}
			})
		}
	}
}

// BenchmarkMatMulDRAM is the single-token product on 64 MB of weights, far
// beyond the caches: what a decode step sees.
func BenchmarkMatMulDRAM(b *testing.B) {
	const size = 64 << 20
	rng := rand.New(rand.NewPCG(3, 3))
	for _, wt := range []ggml.Type{ggml.Q4_0, ggml.Q8_0, ggml.Q4_K, ggml.Q6_K, ggml.F16} {
		const cols = 4096
		rowBytes, _ := wt.RowBytes(cols)
		rows := size / rowBytes
		w := randomRows(rng, wt, rows, cols)
		x := randomActs(rng, cols)
		dst := make([]float32, rows)
		b.Run(fmt.Sprintf("%v/%s", wt, impl.name), func(b *testing.B) {
			var in Input
			in.Prepare(wt, x, 1, cols)
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				MatMulRows(dst, rows, wt, w, cols, &in, 0, rows)
			}
		})
	}
}
