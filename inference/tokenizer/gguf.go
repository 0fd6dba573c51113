package tokenizer

import (
	"fmt"

	"github.com/foretoken/foretoken/gguf"
)

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.ggml.*
// metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	v, err := VocabFromGGUF(f)
	if err != nil {
		return nil, err
	}
	t, err := New(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return t, nil
}

// VocabFromGGUF reads the vocabulary metadata of a GGUF file.
func VocabFromGGUF(f *gguf.File) (*Vocab, error) {
	v := &Vocab{}
	var err error
	if v.Model, err = f.String("tokenizer.ggml.model"); err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	if v.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	optional := func(key string) bool {
		_, ok := f.Lookup(key)
		return ok
	}
	if optional("tokenizer.ggml.pre") {
		if v.Pre, err = f.String("tokenizer.ggml.pre"); err != nil {
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
	}
	if optional("general.name") {
		v.Name, _ = f.String("general.name")
	}
	if optional("tokenizer.ggml.scores") {
		if v.Scores, err = f.Float32s("tokenizer.ggml.scores"); err != nil {
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
	}
	if optional("tokenizer.ggml.token_type") {
		if v.Types, err = f.Int32s("tokenizer.ggml.token_type"); err != nil {
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
	}
	if optional("tokenizer.ggml.merges") {
		if v.Merges, err = f.Strings("tokenizer.ggml.merges"); err != nil {
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
	}
	ids := []struct {
		key string
		dst **int32
	}{
		{"tokenizer.ggml.bos_token_id", &v.BOS},
		{"tokenizer.ggml.eos_token_id", &v.EOS},
		{"tokenizer.ggml.eot_token_id", &v.EOT},
		{"tokenizer.ggml.eom_token_id", &v.EOM},
		{"tokenizer.ggml.unknown_token_id", &v.UNK},
		{"tokenizer.ggml.seperator_token_id", &v.SEP}, // sic, llama.cpp's key
		{"tokenizer.ggml.padding_token_id", &v.PAD},
		{"tokenizer.ggml.cls_token_id", &v.CLS},
		{"tokenizer.ggml.mask_token_id", &v.MASK},
	}
	for _, k := range ids {
		if !optional(k.key) {
			continue
		}
		u, err := f.Uint32(k.key)
		if err != nil {
			// A negative id (-1 written as int32) means "none".
			if val, ok := f.Lookup(k.key); ok {
				if x, ok := val.Int64(); ok && x < 0 {
					none := NoToken
					*k.dst = &none
					continue
				}
			}
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
		id := int32(-1)
		if u <= 1<<31-1 {
			id = int32(u)
		}
		*k.dst = &id
	}
	flags := []struct {
		key string
		dst **bool
	}{
		{"tokenizer.ggml.add_bos_token", &v.AddBOS},
		{"tokenizer.ggml.add_eos_token", &v.AddEOS},
		{"tokenizer.ggml.add_space_prefix", &v.AddSpacePrefix},
	}
	for _, k := range flags {
		if !optional(k.key) {
			continue
		}
		b, err := f.Bool(k.key)
		if err != nil {
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
		*k.dst = &b
	}
	return v, nil
}
