package model

import (
	"errors"
	"fmt"
	"strings"

	"github.com/foretoken/foretoken/gguf"
)

// Architectures lists the values of general.architecture this package runs.
var Architectures = []string{"llama", "qwen2"}

// RopeMode says which dimensions of a head RoPE rotates together.
type RopeMode int

const (
	// RopeNormal rotates adjacent pairs (x[2i], x[2i+1]): llama's GGUF
	// layout, whose converter permuted Q and K rows for it.
	RopeNormal RopeMode = iota
	// RopeNeoX rotates (x[i], x[i+n/2]): GPT-NeoX style, used by qwen2.
	RopeNeoX
)

func (m RopeMode) String() string {
	if m == RopeNeoX {
		return "neox"
	}
	return "normal"
}

// Config holds a model's hyperparameters as read from GGUF metadata.
type Config struct {
	Arch          string
	Name          string
	Dim           int // embedding_length: width of the residual stream
	Layers        int // block_count
	FFN           int // feed_forward_length
	Heads         int // attention.head_count
	KVHeads       int // attention.head_count_kv
	HeadDim       int // attention.key_length, default Dim/Heads
	ValueDim      int // attention.value_length, default HeadDim
	Vocab         int // rows of token_embd.weight
	ContextLength int // context the model was trained for

	NormEps     float32 // attention.layer_norm_rms_epsilon
	RopeDim     int     // rope.dimension_count: leading dims of a head that are rotated
	RopeBase    float32 // rope.freq_base
	RopeScale   float32 // multiplies positions: 1/rope.scaling.factor for linear scaling
	RopeMode    RopeMode
	RopeScaling string // rope.scaling.type as found ("" when absent)

	QKVBias bool // attention projections carry biases (qwen2)
}

func (c Config) String() string {
	return fmt.Sprintf("%s: %d layers, dim %d, ffn %d, %d heads / %d kv heads of %d, vocab %d, context %d, rope %s base %g",
		c.Arch, c.Layers, c.Dim, c.FFN, c.Heads, c.KVHeads, c.HeadDim, c.Vocab, c.ContextLength, c.RopeMode, c.RopeBase)
}

// readConfig reads the hyperparameters of f. The vocabulary size is set
// later from the embedding tensor.
func readConfig(f *gguf.File) (Config, error) {
	arch := f.Architecture()
	c := Config{Arch: arch}
	switch arch {
	case "llama":
		c.RopeMode = RopeNormal
	case "qwen2":
		c.RopeMode = RopeNeoX
		c.QKVBias = true
	case "":
		return c, fmt.Errorf("no general.architecture in the file (supported: %s)", strings.Join(Architectures, ", "))
	default:
		return c, fmt.Errorf("unsupported architecture %q (supported: %s)", arch, strings.Join(Architectures, ", "))
	}
	c.Name, _ = f.String("general.name")

	var err error
	req := func(key string) int {
		if err != nil {
			return 0
		}
		var v uint32
		v, err = f.Uint32(arch + "." + key)
		if err == nil && v == 0 {
			err = fmt.Errorf("metadata %s.%s is 0", arch, key)
		}
		return int(v)
	}
	opt := func(key string, def int) int {
		if err != nil {
			return 0
		}
		v, e := f.Uint32(arch + "." + key)
		if errors.Is(e, gguf.ErrMissing) {
			return def
		}
		if e != nil {
			err = e
		}
		return int(v)
	}
	optF := func(key string, def float32) float32 {
		if err != nil {
			return 0
		}
		v, e := f.Float32(arch + "." + key)
		if errors.Is(e, gguf.ErrMissing) {
			return def
		}
		if e != nil {
			err = e
		}
		return v
	}

	c.Dim = req("embedding_length")
	c.Layers = req("block_count")
	c.FFN = req("feed_forward_length")
	c.Heads = req("attention.head_count")
	c.KVHeads = opt("attention.head_count_kv", c.Heads)
	c.ContextLength = opt("context_length", 2048)
	if err == nil && c.Heads > 0 {
		c.HeadDim = opt("attention.key_length", c.Dim/c.Heads)
		c.ValueDim = opt("attention.value_length", c.HeadDim)
		c.RopeDim = opt("rope.dimension_count", c.HeadDim)
	}
	c.NormEps = optF("attention.layer_norm_rms_epsilon", 1e-5)
	c.RopeBase = optF("rope.freq_base", 10000)
	c.RopeScale = 1
	if s, e := f.String(arch + ".rope.scaling.type"); e == nil {
		c.RopeScaling = s
	}
	factor := optF("rope.scaling.factor", 0)
	if err != nil {
		return c, err
	}
	switch c.RopeScaling {
	case "", "none":
	case "linear":
		if factor > 0 {
			c.RopeScale = 1 / factor
		}
	case "llama3":
		// The per-dimension factors are stored as the rope_freqs.weight tensor.
	default:
		return c, fmt.Errorf("rope scaling %q is not supported (supported: none, linear, llama3 via rope_freqs.weight)", c.RopeScaling)
	}
	if c.RopeScaling == "" {
		// Older files give only a factor (rope.scale_linear).
		if v := optF("rope.scale_linear", 0); v > 0 {
			c.RopeScale = 1 / v
		}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.Heads <= 0 || c.KVHeads <= 0:
		return fmt.Errorf("invalid head counts %d/%d", c.Heads, c.KVHeads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("head count %d is not a multiple of the kv head count %d", c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.ValueDim <= 0:
		return fmt.Errorf("invalid head dimensions %d/%d", c.HeadDim, c.ValueDim)
	case c.RopeDim <= 0 || c.RopeDim > c.HeadDim || c.RopeDim%2 != 0:
		return fmt.Errorf("rope dimension %d does not fit head dimension %d", c.RopeDim, c.HeadDim)
	case c.NormEps <= 0:
		return fmt.Errorf("invalid rms norm epsilon %g", c.NormEps)
	case c.RopeBase <= 0:
		return fmt.Errorf("invalid rope base %g", c.RopeBase)
	}
	return nil
}
