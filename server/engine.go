package server

import (
	"context"

	"github.com/foretoken/foretoken/inference/chat"
)

// Engine is what the server needs of a loaded model. The production
// implementation wraps inference/model (modelEngine); the interface keeps
// the HTTP layer independent of how the forward pass is computed.
type Engine interface {
	Info() ModelInfo
	// Tokenize encodes text; addSpecial adds BOS (and EOS) as the model's
	// tokenizer says. Special-token markers in text are recognised.
	Tokenize(text string, addSpecial bool) ([]int32, error)
	// TokenBytes is the raw text a token stands for ("▁" as space, byte
	// tokens as their byte); special tokens give their marker text.
	TokenBytes(id int32) []byte
	IsSpecial(id int32) bool
	IsEOG(id int32) bool
	// NewDecoder starts turning generated ids into text, continuing a
	// prompt: control tokens give nothing, and a UTF-8 character cut across
	// tokens is held back until complete.
	NewDecoder() Decoder
	// Detokenize turns ids into text as the tokenizer decodes a whole
	// sequence (a leading SentencePiece space dropped).
	Detokenize(ids []int32) string
	// RenderChat renders messages with the model's chat template, or a
	// plain fallback when it has none, ending with the assistant's turn.
	// tools (nil: none) are the tool definitions the template shows the
	// model, each JSON-able.
	RenderChat(ctx context.Context, msgs []chat.Message, tools []any) (string, error)
	// ChatStops are the end-of-turn markers of the chat template, which end
	// a chat answer even where the vocabulary has no token for them.
	ChatStops() []string
	NewSequence(ctxLen int) Sequence
	Close() error
}

// Decoder is an incremental, UTF-8-safe detokenizer (tokenizer.Decoder).
type Decoder interface {
	Add(id int32) string // the text id completes, possibly ""
	Flush() string       // what is left: U+FFFD for an incomplete character
}

// ModelInfo is the metadata the server shows and checks requests against.
type ModelInfo struct {
	Arch          string
	ContextLength int // trained context
	EmbeddingDim  int
	VocabSize     int
	Layers        int
	Heads         int
	Pooling       string // "mean", "last", "cls" or "" (mean)
	HasTemplate   bool
}

// Sequence is one conversation's position and KV cache.
type Sequence interface {
	Len() int
	Cap() int // most positions the cache holds
	Truncate(n int)
	// Forward feeds tokens after the current position.
	Forward(ctx context.Context, tokens []int32, want Want) (*Result, error)
}

// Want says which outputs Forward should compute.
type Want struct {
	AllLogits   bool // logits for every fed position, not just the last
	Hidden      bool // final (normed) hidden state of every fed position
	Attention   bool // attention weights of the last position
	LayerLogits bool // logit lens of the last position
}

// Result holds Forward's outputs.
type Result struct {
	Logits      [][]float32   // per fed position (AllLogits) or just the last
	Hidden      []float32     // EmbeddingDim values per fed position, one after another
	Attention   [][][]float32 // [layer][head][key position] for the last position
	LayerLogits [][]float32   // [layer] logits from that layer's hidden state
}
