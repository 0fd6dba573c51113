package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
)

func newQuantizeCmd() *cobra.Command {
	var threads int
	cmd := &cobra.Command{
		Use:   "quantize IN.gguf OUT.gguf TYPE",
		Short: "Convert a GGUF model's weights to another tensor type",
		Long: `Quantize writes a copy of a GGUF model with its weight matrices converted to
TYPE, choosing per-tensor types as llama.cpp's llama-quantize does (without an
importance matrix), so the result matches llama.cpp's file tensor for tensor.

TYPE is one of: ` + strings.Join(ftypeNames(), ", ") + `.

The _s/_m/_l types are llama.cpp's mixes: output.weight (or token_embd.weight
when the embeddings are tied) goes to Q6_K, and q4_k_m/q5_k_m give Q6_K to
attn_v and ffn_down in the first and last eighth of the layers and every third
layer between. For every quantized TYPE the output matrix gets Q6_K unless
TYPE is q8_0. 1-D tensors and norms stay as they are. A matrix whose row
length is not a multiple of the chosen type's block size falls back as
llama.cpp does (Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, Q2_K/Q3_K/IQ4_XS->IQ4_NL),
and to F16 when even that does not fit (llama.cpp refuses such a tensor for
the 32-value types; we store it as F16).

Tensors already quantized are dequantized first, so any model foretoken can
read can be re-quantized. The output is written through a temporary file and
renamed into place when complete; tensors stream through, so memory stays
small whatever the model size. All cores are used unless --threads says
otherwise. Progress goes to stderr.`,
		Example: "  foretoken quantize model-f16.gguf model-q4_k_m.gguf q4_k_m",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ft, err := parseFileType(args[2])
			if err != nil {
				return err
			}
			if threads <= 0 {
				threads = runtime.GOMAXPROCS(0)
			}
			return quantizeFile(cmd.Context(), args[0], args[1], ft, threads, newConvProgress(cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().IntVarP(&threads, "threads", "t", 0, "worker goroutines (default: all cores)")
	return cmd
}

// fileType is one of llama.cpp's llama_ftype values: the default tensor
// type of a model plus the rules that pick other types for some tensors.
type fileType struct {
	name string
	id   uint32    // general.file_type
	base ggml.Type // type of most weight matrices
}

var fileTypes = []fileType{
	{"f32", 0, ggml.F32},
	{"f16", 1, ggml.F16},
	{"bf16", 32, ggml.BF16},
	{"q8_0", 7, ggml.Q8_0},
	{"q4_0", 2, ggml.Q4_0},
	{"q4_1", 3, ggml.Q4_1},
	{"q5_0", 8, ggml.Q5_0},
	{"q5_1", 9, ggml.Q5_1},
	{"q2_k", 10, ggml.Q2_K},
	{"q3_k_s", 11, ggml.Q3_K},
	{"q3_k_m", 12, ggml.Q3_K},
	{"q3_k_l", 13, ggml.Q3_K},
	{"q4_k_s", 14, ggml.Q4_K},
	{"q4_k_m", 15, ggml.Q4_K},
	{"q5_k_s", 16, ggml.Q5_K},
	{"q5_k_m", 17, ggml.Q5_K},
	{"q6_k", 18, ggml.Q6_K},
	{"iq4_nl", 25, ggml.IQ4_NL},
	{"iq4_xs", 30, ggml.IQ4_XS},
}

func ftypeNames() []string {
	var s []string
	for _, f := range fileTypes {
		s = append(s, f.name)
	}
	return s
}

func parseFileType(name string) (fileType, error) {
	for _, f := range fileTypes {
		if strings.EqualFold(f.name, name) {
			return f, nil
		}
	}
	return fileType{}, fmt.Errorf("unknown type %q (want one of %s)", name, strings.Join(ftypeNames(), ", "))
}

// mixPlanner decides each tensor's type as llama.cpp's
// llama_tensor_get_type does for the file types above (llama-family models,
// no experts, no importance matrix).
type mixPlanner struct {
	ft        fileType
	arch      string
	nLayer    int
	nGQA      int  // attention heads per KV head
	is70B     bool // llama 70B gets more bits in attn_v
	hasOutput bool // a separate output.weight exists
	nAttnV    int
	iAttnV    int
}

func newMixPlanner(ft fileType, arch string, nLayer, nHead, nHeadKV int, names []string) *mixPlanner {
	p := &mixPlanner{ft: ft, arch: arch, nLayer: nLayer, nGQA: 1}
	if nHeadKV > 0 {
		p.nGQA = nHead / nHeadKV
	}
	p.is70B = arch == "llama" && nLayer == 80 && nHead != nHeadKV
	for _, n := range names {
		if strings.Contains(n, "attn_v.weight") || strings.Contains(n, "attn_qkv.weight") || strings.Contains(n, "attn_kv_b.weight") {
			p.nAttnV++
		} else if n == "output.weight" {
			p.hasOutput = true
		}
	}
	return p
}

// quantizable reports whether llama.cpp would convert this tensor at all:
// weight matrices (2-D or more) other than norms and small special tables.
func quantizable(name string, dims []uint64) bool {
	// Like ggml_n_dims, trailing dimensions of 1 do not count.
	nd := len(dims)
	for nd > 1 && dims[nd-1] == 1 {
		nd--
	}
	if !strings.HasSuffix(name, "weight") || nd < 2 {
		return false
	}
	for _, s := range []string{"_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "attn_rel_b.weight", "time_mix_"} {
		if strings.Contains(name, s) {
			return false
		}
	}
	return name != "position_embd.weight" && name != "token_types.weight"
}

func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// blockIndex returns N of a "blk.N." tensor name, or -1.
func blockIndex(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}

// typeFor returns the type for tensor name. Tensors must be presented in
// llama.cpp's order (by layer, then name) because attn_v's rule counts them.
func (p *mixPlanner) typeFor(name string, dims []uint64) ggml.Type {
	t := p.ft.base
	if !t.Quantized() {
		return t
	}
	ft := p.ft.name
	nx := int(dims[0])
	switch {
	case name == "output.weight" || (!p.hasOutput && name == "token_embd.weight"):
		if nx%t.BlockSize() != 0 {
			t = ggml.Q8_0
		} else if t != ggml.Q8_0 {
			t = ggml.Q6_K
		}
	case name == "token_embd.weight":
	case strings.Contains(name, "attn_v.weight"):
		i, n := p.iAttnV, p.nAttnV
		switch {
		case ft == "q2_k":
			t = ggml.Q3_K
			if p.nGQA >= 4 {
				t = ggml.Q4_K
			}
		case ft == "q3_k_m":
			t = ggml.Q4_K
			if i < 2 {
				t = ggml.Q5_K
			}
		case ft == "q3_k_l":
			t = ggml.Q5_K
		case (ft == "iq4_nl" || ft == "iq4_xs") && p.nGQA >= 4:
			t = ggml.Q5_K
		case (ft == "q4_k_m" || ft == "q5_k_m") && useMoreBits(i, n):
			t = ggml.Q6_K
		case ft == "q4_k_s" && i < 4:
			t = ggml.Q5_K
		}
		if p.is70B && (t == ggml.Q3_K || t == ggml.Q4_K) {
			t = ggml.Q5_K
		}
		p.iAttnV++
	case strings.Contains(name, "ffn_down"):
		i, n := blockIndex(name), p.nLayer
		switch {
		case ft == "q2_k":
			t = ggml.Q3_K
		case ft == "q3_k_m":
			t = ggml.Q4_K
			if i < n/16 {
				t = ggml.Q5_K
			}
		case ft == "q3_k_l":
			t = ggml.Q5_K
		case ft == "q4_k_m":
			if useMoreBits(i, n) {
				t = ggml.Q6_K
			}
		case i < n/8 && (ft == "iq4_nl" || ft == "iq4_xs"):
			t = ggml.Q5_K
		case ft == "q5_k_m" && useMoreBits(i, n):
			t = ggml.Q6_K
		case ft == "q4_k_s" && i < n/8:
			t = ggml.Q5_K
		}
	case strings.Contains(name, "attn_output.weight"):
		switch ft {
		case "q2_k":
			t = ggml.Q3_K
		case "q3_k_m":
			t = ggml.Q4_K
		case "q3_k_l":
			t = ggml.Q5_K
		}
	case strings.Contains(name, "attn_qkv.weight"):
		switch ft {
		case "q3_k_m", "q3_k_l":
			t = ggml.Q4_K
		case "q4_k_m":
			t = ggml.Q5_K
		case "q5_k_m":
			t = ggml.Q6_K
		}
	}
	return fallbackType(t, nx)
}

// fallbackType replaces t by a type whose blocks fit rows of nx values.
func fallbackType(t ggml.Type, nx int) ggml.Type {
	if nx%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case ggml.Q2_K, ggml.Q3_K, ggml.IQ4_XS:
		t = ggml.IQ4_NL
	case ggml.Q4_K:
		t = ggml.Q5_0
	case ggml.Q5_K:
		t = ggml.Q5_1
	case ggml.Q6_K:
		t = ggml.Q8_0
	}
	if nx%t.BlockSize() != 0 {
		t = ggml.F16
	}
	return t
}

// llamaOrder sorts tensor indices the way llama.cpp's model loader lists
// weights: by layer number (non-layer tensors first), then by name.
func llamaOrder(names []string) []int {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		na, nb := names[idx[a]], names[idx[b]]
		la, lb := blockIndex(na), blockIndex(nb)
		if la != lb {
			return la < lb
		}
		return na < nb
	})
	return idx
}

// metaIntOr reads an integer hyperparameter, or def when it is absent.
func metaIntOr(f *gguf.File, key string, def int) (int, error) {
	if _, ok := f.Lookup(key); !ok {
		return def, nil
	}
	v, err := f.Uint32(key)
	if err != nil {
		// Per-layer arrays (e.g. head_count_kv) take their first entry.
		if a, aerr := f.Int32s(key); aerr == nil && len(a) > 0 {
			return int(a[0]), nil
		}
		return 0, err
	}
	return int(v), nil
}

// quantizeFile converts in to out with file type ft.
func quantizeFile(ctx context.Context, in, out string, ft fileType, threads int, prog *convProgress) error {
	src, err := gguf.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()

	arch := src.Architecture()
	nLayer, err := metaIntOr(src, arch+".block_count", 0)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	nHead, err := metaIntOr(src, arch+".attention.head_count", 0)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	nHeadKV, err := metaIntOr(src, arch+".attention.head_count_kv", nHead)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}

	names := make([]string, len(src.Tensors))
	for i := range src.Tensors {
		names[i] = src.Tensors[i].Name
	}
	order := llamaOrder(names)
	plan := newMixPlanner(ft, arch, nLayer, nHead, nHeadKV, names)

	w, err := gguf.Create(out)
	if err != nil {
		return err
	}
	// Close removes the temporary file unless every tensor was written.
	defer w.Close()

	// Like llama.cpp's gguf_set_val, setting a key moves it to the end.
	for _, kv := range src.Metadata {
		switch kv.Key {
		case "general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count":
			continue
		}
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	if err := w.AddKV("general.quantization_version", gguf.Uint32Value(2)); err != nil {
		return err
	}
	if err := w.AddKV("general.file_type", gguf.Uint32Value(ft.id)); err != nil {
		return err
	}

	types := make([]ggml.Type, len(order))
	var total uint64
	for k, i := range order {
		ti := &src.Tensors[i]
		t := ti.Type
		if quantizable(ti.Name, ti.Dims) {
			t = plan.typeFor(ti.Name, ti.Dims)
		}
		if t != ti.Type && (!ggml.CanQuantize(t) || !canDequantize(ti.Type)) {
			return fmt.Errorf("tensor %q: cannot convert %s to %s", ti.Name, ti.Type, t)
		}
		types[k] = t
		if err := w.AddTensor(ti.Name, t, ti.Dims); err != nil {
			return err
		}
		sz, _ := w.TensorSize(ti.Name)
		total += sz
	}

	prog.start(len(order), total)
	for k, i := range order {
		ti := &src.Tensors[i]
		t := types[k]
		prog.tensor(k, ti.Name, ti.Type, t)
		data := src.TensorData(ti)
		if t == ti.Type {
			if err := writeChunked(ctx, w, ti.Name, data, prog); err != nil {
				return err
			}
			continue
		}
		ne0 := int(ti.Dims[0])
		nrows := int(ti.Elements()) / ne0
		inRow, err := ti.Type.RowBytes(ne0)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", ti.Name, err)
		}
		outRow, err := t.RowBytes(ne0)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", ti.Name, err)
		}
		convert := func(r0, r1 int, dst []byte) error {
			x := make([]float32, (r1-r0)*ne0)
			if err := ggml.Dequantize(ti.Type, data[r0*inRow:r1*inRow], x); err != nil {
				return err
			}
			return ggml.Quantize(t, x, dst)
		}
		err = streamRows(ctx, nrows, outRow, rowsPerChunk(ne0), threads, convert, func(p []byte) error {
			prog.add(uint64(len(p)))
			return w.WriteTensorData(ti.Name, p)
		})
		if err != nil {
			return fmt.Errorf("tensor %q: %w", ti.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	prog.finish()
	return nil
}

func canDequantize(t ggml.Type) bool {
	return t.Known() && ggml.Dequantize(t, make([]byte, t.TypeSize()), make([]float32, t.BlockSize())) == nil
}

// rowsPerChunk sizes work units at about a million values.
func rowsPerChunk(ne0 int) int { return max(1, (1<<20)/ne0) }

func writeChunked(ctx context.Context, w *gguf.Writer, name string, data []byte, prog *convProgress) error {
	const chunk = 8 << 20
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, len(data))
		if err := w.WriteTensorData(name, data[:n]); err != nil {
			return err
		}
		prog.add(uint64(n))
		data = data[n:]
	}
	return nil
}

// streamRows produces the output of nrows rows, chunk rows at a time, on up
// to workers goroutines, and hands the chunks to write in row order. At most
// about 2*workers chunks are in memory at once.
func streamRows(ctx context.Context, nrows, rowBytes, chunk, workers int, produce func(r0, r1 int, dst []byte) error, write func([]byte) error) error {
	type job struct {
		out  []byte
		err  error
		done chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *job, workers)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	go func() {
		defer close(jobs)
		for r0 := 0; r0 < nrows; r0 += chunk {
			r1 := min(nrows, r0+chunk)
			j := &job{out: make([]byte, (r1-r0)*rowBytes), done: make(chan struct{})}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				j.err = produce(r0, r1, j.out)
				close(j.done)
			}()
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	var err error
	for j := range jobs {
		<-j.done
		if err == nil {
			err = j.err
		}
		if err == nil {
			err = write(j.out)
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	return err
}

// convProgress reports tensor i/N and bytes written on stderr: one line redrawn
// in place on a terminal, one line per tensor otherwise.
type convProgress struct {
	w           io.Writer
	tty         bool
	n           int
	i           int
	label       string
	done, total uint64
	last        time.Time
	began       time.Time
	mu          sync.Mutex
}

func newConvProgress(w io.Writer) *convProgress {
	p := &convProgress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *convProgress) start(n int, total uint64) {
	if p == nil {
		return
	}
	p.n, p.total, p.began = n, total, time.Now()
}

func (p *convProgress) tensor(i int, name string, from, to ggml.Type) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.i = i + 1
	p.label = fmt.Sprintf("%s %s", name, from)
	if from != to {
		p.label += " -> " + to.String()
	}
	if !p.tty {
		fmt.Fprintf(p.w, "[%*d/%d] %s\n", len(strconv.Itoa(p.n)), p.i, p.n, p.label)
		return
	}
	p.draw(true)
}

func (p *convProgress) add(n uint64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.tty {
		p.draw(false)
	}
}

func (p *convProgress) draw(force bool) {
	if !force && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 24
	filled := 0
	if p.total > 0 {
		filled = int(uint64(width) * p.done / p.total)
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r\033[K[%s] %*d/%d %s / %s  %s", bar, len(strconv.Itoa(p.n)), p.i, p.n, byteCount(p.done), byteCount(p.total), p.label)
}

func (p *convProgress) finish() {
	if p == nil {
		return
	}
	if p.tty {
		p.done = p.total
		p.draw(true)
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "wrote %d tensors, %s in %.1fs\n", p.n, byteCount(p.total), time.Since(p.began).Seconds())
}

func byteCount(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
