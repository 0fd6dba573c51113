package kernels

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/internal/testdata"
)

// TestReferenceTensors checks the test's dequantizer and the matrix product
// on tensors llama.cpp quantized, against llama.cpp's own dequantization in
// shared/reference/dequant.
func TestReferenceTensors(t *testing.T) {
	dir := testdata.Path(t, "reference", "dequant")
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct {
		Model, Tensor, Type, File string
		Ne                        []int
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	seen := map[ggml.Type]bool{}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, e := range index {
		t.Run(e.Type+"/"+e.Model+"/"+e.Tensor, func(t *testing.T) {
			f, err := gguf.Open(testdata.Path(t, "models", "synth", e.Model))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ti, ok := f.Tensor(e.Tensor)
			if !ok {
				t.Fatalf("no tensor %q", e.Tensor)
			}
			wt := ti.Type
			if wt.String() != e.Type {
				t.Fatalf("tensor type %v, index says %s", wt, e.Type)
			}
			seen[wt] = true
			refRaw, err := os.ReadFile(filepath.Join(dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			cols, rows := e.Ne[0], e.Ne[1]
			data := f.TensorData(ti)
			rowBytes, _ := wt.RowBytes(cols)
			ref := func(r, j int) float64 {
				return float64(math.Float32frombits(binary.LittleEndian.Uint32(refRaw[4*(r*cols+j):])))
			}
			for r := 0; r < rows; r++ {
				got := dequantRow(wt, data[r*rowBytes:(r+1)*rowBytes], cols)
				for j, v := range got {
					if w := ref(r, j); !(math.Abs(v-w) <= 1e-6*math.Abs(w)) {
						t.Fatalf("row %d col %d: dequantized %g, llama.cpp %g", r, j, v, w)
					}
				}
			}
			const ntok = 3
			n := min(rows, 41)
			x := randomActs(rng, ntok*cols)
			checkMatMul(t, wt, data[:n*rowBytes], n, cols, x, ntok, 0, n)
		})
	}
	for _, wt := range allTypes {
		if !seen[wt] && !t.Failed() {
			t.Errorf("no reference tensor of type %v", wt)
		}
	}
}
