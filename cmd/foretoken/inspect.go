package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/gguf/ggml"
)

func newInspectCmd() *cobra.Command {
	var (
		asJSON  bool
		tensor  string
		dequant bool
	)
	cmd := &cobra.Command{
		Use:   "inspect MODEL.gguf",
		Short: "Show a GGUF file's metadata, hyperparameters, tokenizer and tensors",
		Long: `inspect opens a GGUF file (validating its whole header) and prints what it holds:
architecture, parameter count, context length, embedding size, layers, heads,
the tokenizer (model, pre-tokenizer, vocabulary size, BOS/EOS), whether it has
a chat template, the file type, every metadata key, and a table of tensors
(name, type, shape with ne0 first, bytes) with totals per type.

--json prints one JSON object instead, with keys "metadata" (every key and its
value; arrays of more than 16 elements shown as {"type":T,"len":N}), "tensors"
(list of {"name","type","shape","offset","bytes"}; offset is relative to
"data_offset"), "summary" and "totals".

--tensor NAME describes one tensor and the statistics of its values;
with --dequant it instead writes the tensor's values as raw little-endian
float32 (ne0 fastest) to stdout, for example to compare with llama.cpp.`,
		Example: `  foretoken inspect model.gguf
  foretoken inspect model.gguf --json | jq .summary
  foretoken inspect model.gguf --tensor output.weight --dequant > output.f32`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dequant && tensor == "" {
				return errors.New("--dequant needs --tensor NAME")
			}
			if asJSON && tensor != "" {
				return errors.New("--json and --tensor cannot be used together")
			}
			f, err := gguf.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			out := cmd.OutOrStdout()
			switch {
			case tensor != "" && dequant:
				if fp, ok := out.(*os.File); ok {
					if st, err := fp.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
						return errors.New("--dequant writes binary data; redirect stdout to a file")
					}
				}
				return inspectWriteDequant(out, f, tensor)
			case tensor != "":
				return inspectPrintTensor(out, f, tensor)
			case asJSON:
				return printInspectJSON(out, f)
			}
			return printInspect(out, f)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().StringVar(&tensor, "tensor", "", "describe only the tensor `NAME`")
	cmd.Flags().BoolVar(&dequant, "dequant", false, "with --tensor: write its values as raw little-endian float32 to stdout")
	return cmd
}

// inspectFileTypeNames are llama.cpp's llama_ftype names for general.file_type.
var inspectFileTypeNames = map[uint32]string{
	0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1",
	7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0", 9: "MOSTLY_Q5_1", 10: "MOSTLY_Q2_K",
	11: "MOSTLY_Q3_K_S", 12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L", 14: "MOSTLY_Q4_K_S",
	15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S", 17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K",
	19: "MOSTLY_IQ2_XXS", 20: "MOSTLY_IQ2_XS", 21: "MOSTLY_Q2_K_S", 22: "MOSTLY_IQ3_XS",
	23: "MOSTLY_IQ3_XXS", 24: "MOSTLY_IQ1_S", 25: "MOSTLY_IQ4_NL", 26: "MOSTLY_IQ3_S",
	27: "MOSTLY_IQ3_M", 28: "MOSTLY_IQ2_S", 29: "MOSTLY_IQ2_M", 30: "MOSTLY_IQ4_XS",
	31: "MOSTLY_IQ1_M", 32: "MOSTLY_BF16", 36: "MOSTLY_TQ1_0", 37: "MOSTLY_TQ2_0",
	1024: "GUESSED",
}

func inspectFileTypeName(ft uint32) string {
	if n, ok := inspectFileTypeNames[ft]; ok {
		return n
	}
	return "unknown(" + strconv.FormatUint(uint64(ft), 10) + ")"
}

// inspectSummary is what a person wants to know first about a model.
// Pointers are nil where the file does not say.
type inspectSummary struct {
	Architecture  string   `json:"architecture,omitempty"`
	Name          string   `json:"name,omitempty"`
	FileType      *uint32  `json:"file_type,omitempty"`
	FileTypeName  string   `json:"file_type_name,omitempty"`
	Parameters    uint64   `json:"parameters"`
	ContextLength *uint32  `json:"context_length,omitempty"`
	Embedding     *uint32  `json:"embedding_length,omitempty"`
	Layers        *uint32  `json:"block_count,omitempty"`
	Heads         *uint32  `json:"head_count,omitempty"`
	KVHeads       *uint32  `json:"head_count_kv,omitempty"`
	FeedForward   *uint32  `json:"feed_forward_length,omitempty"`
	RopeBase      *float32 `json:"rope_freq_base,omitempty"`
	Tokenizer     struct {
		Model     string  `json:"model,omitempty"`
		Pre       string  `json:"pre,omitempty"`
		VocabSize int     `json:"vocab_size"`
		BOS       *uint32 `json:"bos_token_id,omitempty"`
		EOS       *uint32 `json:"eos_token_id,omitempty"`
		BOSText   string  `json:"bos_token,omitempty"`
		EOSText   string  `json:"eos_token,omitempty"`
	} `json:"tokenizer"`
	ChatTemplate bool `json:"chat_template"`
}

func inspectOptUint32(f *gguf.File, key string) *uint32 {
	if v, err := f.Uint32(key); err == nil {
		return &v
	}
	return nil
}

func inspectSummarize(f *gguf.File) inspectSummary {
	var s inspectSummary
	s.Architecture = f.Architecture()
	s.Name, _ = f.String("general.name")
	if s.FileType = inspectOptUint32(f, "general.file_type"); s.FileType != nil {
		s.FileTypeName = inspectFileTypeName(*s.FileType)
	}
	for i := range f.Tensors {
		s.Parameters += f.Tensors[i].Elements()
	}
	a := s.Architecture + "."
	s.ContextLength = inspectOptUint32(f, a+"context_length")
	s.Embedding = inspectOptUint32(f, a+"embedding_length")
	s.Layers = inspectOptUint32(f, a+"block_count")
	s.Heads = inspectOptUint32(f, a+"attention.head_count")
	s.KVHeads = inspectOptUint32(f, a+"attention.head_count_kv")
	s.FeedForward = inspectOptUint32(f, a+"feed_forward_length")
	if v, err := f.Float32(a + "rope.freq_base"); err == nil {
		s.RopeBase = &v
	}
	t := &s.Tokenizer
	t.Model, _ = f.String("tokenizer.ggml.model")
	t.Pre, _ = f.String("tokenizer.ggml.pre")
	if v, ok := f.Lookup("tokenizer.ggml.tokens"); ok {
		t.VocabSize = v.Len()
	}
	tokens, _ := f.Lookup("tokenizer.ggml.tokens")
	tokenText := func(id *uint32) string {
		if id != nil && tokens.Elem == gguf.String && int64(*id) < int64(tokens.Len()) {
			s, _ := tokens.Index(int(*id)).Str()
			return s
		}
		return ""
	}
	t.BOS = inspectOptUint32(f, "tokenizer.ggml.bos_token_id")
	t.EOS = inspectOptUint32(f, "tokenizer.ggml.eos_token_id")
	t.BOSText, t.EOSText = tokenText(t.BOS), tokenText(t.EOS)
	_, err := f.String("tokenizer.chat_template")
	s.ChatTemplate = err == nil
	return s
}

type inspectTypeTotal struct {
	Count int    `json:"count"`
	Bytes uint64 `json:"bytes"`
}

type inspectTotals struct {
	Count  int                          `json:"count"`
	Bytes  uint64                       `json:"bytes"`
	ByType map[string]*inspectTypeTotal `json:"by_type"`
}

func inspectTotalsOf(f *gguf.File) inspectTotals {
	t := inspectTotals{ByType: map[string]*inspectTypeTotal{}}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		t.Count++
		t.Bytes += ti.Size
		tt := t.ByType[ti.Type.String()]
		if tt == nil {
			tt = &inspectTypeTotal{}
			t.ByType[ti.Type.String()] = tt
		}
		tt.Count++
		tt.Bytes += ti.Size
	}
	return t
}

func printInspect(w io.Writer, f *gguf.File) error {
	s := inspectSummarize(f)
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	dash := func(p *uint32) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatUint(uint64(*p), 10)
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(tw, "file:\t%s (GGUF v%d, %s, alignment %d)\n", f.Path, f.Version, inspectHumanBytes(uint64(f.Size())), f.Alignment)
	fmt.Fprintf(tw, "architecture:\t%s\n", orDash(s.Architecture))
	fmt.Fprintf(tw, "name:\t%s\n", orDash(s.Name))
	if s.FileType != nil {
		fmt.Fprintf(tw, "file type:\t%s (%d)\n", s.FileTypeName, *s.FileType)
	} else {
		fmt.Fprintf(tw, "file type:\t-\n")
	}
	fmt.Fprintf(tw, "parameters:\t%s (%d)\n", inspectHumanCount(s.Parameters), s.Parameters)
	fmt.Fprintf(tw, "context length:\t%s\n", dash(s.ContextLength))
	fmt.Fprintf(tw, "embedding:\t%s\n", dash(s.Embedding))
	fmt.Fprintf(tw, "layers:\t%s\n", dash(s.Layers))
	fmt.Fprintf(tw, "heads:\t%s (kv %s)\n", dash(s.Heads), dash(s.KVHeads))
	fmt.Fprintf(tw, "feed forward:\t%s\n", dash(s.FeedForward))
	if s.RopeBase != nil {
		fmt.Fprintf(tw, "rope base:\t%g\n", *s.RopeBase)
	}
	tok := s.Tokenizer
	fmt.Fprintf(tw, "tokenizer:\t%s, pre %s, %d tokens, bos %s %s, eos %s %s\n", orDash(tok.Model), orDash(tok.Pre),
		tok.VocabSize, dash(tok.BOS), strconv.Quote(tok.BOSText), dash(tok.EOS), strconv.Quote(tok.EOSText))
	if tmpl, err := f.String("tokenizer.chat_template"); err == nil {
		fmt.Fprintf(tw, "chat template:\tyes (%d bytes)\n", len(tmpl))
	} else {
		fmt.Fprintf(tw, "chat template:\tno\n")
	}
	fmt.Fprintf(tw, "\nmetadata (%d keys):\n", len(f.Metadata))
	for _, kv := range f.Metadata {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", kv.Key, kv.Value.TypeName(), inspectShortValue(kv.Value))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(f.Tensors) > 0 {
		fmt.Fprintf(bw, "\ntensors:\n")
		nameW, shapeW := len("name"), len("shape")
		for i := range f.Tensors {
			nameW = max(nameW, len(f.Tensors[i].Name))
			shapeW = max(shapeW, len(inspectShape(f.Tensors[i].Dims)))
		}
		fmt.Fprintf(bw, "  %-*s  %-6s  %-*s  %12s\n", nameW, "name", "type", shapeW, "shape", "bytes")
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			fmt.Fprintf(bw, "  %-*s  %-6s  %-*s  %12d\n", nameW, ti.Name, ti.Type, shapeW, inspectShape(ti.Dims), ti.Size)
		}
	}
	t := inspectTotalsOf(f)
	fmt.Fprintf(bw, "\ntotal: %d tensors, %d bytes (%s)\n", t.Count, t.Bytes, inspectHumanBytes(t.Bytes))
	names := make([]string, 0, len(t.ByType))
	for n := range t.ByType {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(bw, "  %-7s %4d tensors %12d bytes (%s)\n", n, t.ByType[n].Count, t.ByType[n].Bytes, inspectHumanBytes(t.ByType[n].Bytes))
	}
	return bw.Flush()
}

// inspectShortValue keeps each metadata line on one screen line.
func inspectShortValue(v gguf.Value) string {
	const max = 72
	if v.Type == gguf.Array {
		var b strings.Builder
		b.WriteByte('[')
		n := v.Len()
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			if b.Len() > max {
				fmt.Fprintf(&b, "... %d elements", n)
				break
			}
			b.WriteString(inspectShortValue(v.Index(i)))
		}
		b.WriteByte(']')
		return b.String()
	}
	if str, ok := v.Str(); ok && len(str) > max {
		return strconv.Quote(str[:max]) + fmt.Sprintf("... (%d bytes)", len(str))
	}
	return v.String()
}

func inspectShape(dims []uint64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func inspectHumanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2fK", float64(n)/1e3)
	}
	return strconv.FormatUint(n, 10)
}

func inspectHumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	x, i := float64(n), -1
	for x >= unit && i < 3 {
		x /= unit
		i++
	}
	return fmt.Sprintf("%.2f %ciB", x, "KMGT"[i])
}

// inspectMetadataJSON keeps the file's key order, which a Go map would lose.
type inspectMetadataJSON []gguf.KV

func (m inspectMetadataJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		// An Encoder, unlike json.Marshal, can leave <, > and & of chat
		// templates readable.
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(kv.Key); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := enc.Encode(inspectJSONValue(kv.Value, true)); err != nil {
			return nil, fmt.Errorf("key %q: %w", kv.Key, err)
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// inspectJSONValue converts a value to something encoding/json renders faithfully:
// non-finite floats become strings, byte arrays stay lists of numbers, and
// (when abbreviate) arrays of more than 16 elements become their type and
// length.
func inspectJSONValue(v gguf.Value, abbreviate bool) any {
	if v.Type == gguf.Array {
		n := v.Len()
		if abbreviate && n > 16 {
			return map[string]any{"type": v.Elem.String(), "len": n}
		}
		out := make([]any, n)
		for i := range n {
			out[i] = inspectJSONValue(v.Index(i), abbreviate)
		}
		return out
	}
	if x, ok := v.Float64(); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return v.Any()
}

type inspectTensorJSON struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Shape  []uint64 `json:"shape"`
	Offset uint64   `json:"offset"`
	Bytes  uint64   `json:"bytes"`
}

func printInspectJSON(w io.Writer, f *gguf.File) error {
	tensors := make([]inspectTensorJSON, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		tensors[i] = inspectTensorJSON{ti.Name, ti.Type.String(), ti.Dims, ti.Offset, ti.Size}
	}
	out := struct {
		Path       string              `json:"path"`
		Version    uint32              `json:"version"`
		Size       int64               `json:"size"`
		Alignment  uint64              `json:"alignment"`
		DataOffset uint64              `json:"data_offset"`
		Summary    inspectSummary      `json:"summary"`
		Metadata   inspectMetadataJSON `json:"metadata"`
		Tensors    []inspectTensorJSON `json:"tensors"`
		Totals     inspectTotals       `json:"totals"`
	}{f.Path, f.Version, f.Size(), f.Alignment, f.DataOffset, inspectSummarize(f), inspectMetadataJSON(f.Metadata), tensors, inspectTotalsOf(f)}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

func inspectLookupTensor(f *gguf.File, name string) (*gguf.TensorInfo, error) {
	ti, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	return ti, nil
}

// inspectChunks dequantizes t a few rows at a time, so that a tensor of any
// size needs only a bounded buffer.
func inspectChunks(f *gguf.File, ti *gguf.TensorInfo, fn func([]float32) error) error {
	ne0 := int(ti.Dims[0])
	rowBytes, err := ti.Type.RowBytes(ne0)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", ti.Name, err)
	}
	rows := int(ti.Elements() / ti.Dims[0])
	step := max(1, (1<<20)/ne0)
	buf := make([]float32, min(rows, step)*ne0)
	data := f.TensorData(ti)
	for r := 0; r < rows; r += step {
		n := min(step, rows-r)
		dst := buf[:n*ne0]
		if err := ggml.Dequantize(ti.Type, data[r*rowBytes:(r+n)*rowBytes], dst); err != nil {
			return fmt.Errorf("tensor %q rows %d..%d: %w", ti.Name, r, r+n, err)
		}
		if err := fn(dst); err != nil {
			return err
		}
	}
	return nil
}

func inspectWriteDequant(w io.Writer, f *gguf.File, name string) error {
	ti, err := inspectLookupTensor(f, name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var b []byte
	err = inspectChunks(f, ti, func(xs []float32) error {
		b = b[:0]
		for _, x := range xs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		_, err := bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func inspectPrintTensor(w io.Writer, f *gguf.File, name string) error {
	ti, err := inspectLookupTensor(f, name)
	if err != nil {
		return err
	}
	var (
		n, nonFinite uint64
		sum, sumSq   float64
		lo, hi       = math.Inf(1), math.Inf(-1)
		first        []float32
	)
	err = inspectChunks(f, ti, func(xs []float32) error {
		if len(first) < 8 {
			first = append(first, xs[:min(len(xs), 8-len(first))]...)
		}
		for _, x := range xs {
			v := float64(x)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				nonFinite++
				continue
			}
			n++
			sum += v
			sumSq += v * v
			lo, hi = min(lo, v), max(hi, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", ti.Name)
	fmt.Fprintf(tw, "type:\t%s\n", ti.Type)
	fmt.Fprintf(tw, "shape:\t%s (%d values)\n", inspectShape(ti.Dims), ti.Elements())
	fmt.Fprintf(tw, "offset:\t%d (file byte %d)\n", ti.Offset, f.DataOffset+ti.Offset)
	fmt.Fprintf(tw, "bytes:\t%d (%.3f bits per value)\n", ti.Size, float64(ti.Size)*8/float64(ti.Elements()))
	if n > 0 {
		mean := sum / float64(n)
		std := math.Sqrt(max(0, sumSq/float64(n)-mean*mean))
		fmt.Fprintf(tw, "min / max:\t%g / %g\n", lo, hi)
		fmt.Fprintf(tw, "mean / std:\t%g / %g\n", mean, std)
	}
	if nonFinite > 0 {
		fmt.Fprintf(tw, "non-finite:\t%d values\n", nonFinite)
	}
	fmt.Fprintf(tw, "first values:\t%v\n", first)
	return tw.Flush()
}
