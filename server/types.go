package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/foretoken/foretoken/inference/chat"
)

// promptInput is an OpenAI prompt or embeddings input: a string, a list of
// strings, a list of token ids or a list of lists of token ids. Exactly one
// of Texts and IDs is set after decoding.
type promptInput struct {
	Texts []string
	IDs   [][]int32
	field string
	set   bool
}

func (p *promptInput) UnmarshalJSON(b []byte) error {
	field := p.field
	if field == "" {
		field = "prompt"
	}
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	p.set = true
	var s string
	if json.Unmarshal(b, &s) == nil {
		p.Texts = []string{s}
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &fieldError{field, "expected a string, an array of strings, an array of token ids or an array of arrays of token ids"}
	}
	if len(raw) == 0 {
		return &fieldError{field, "must not be an empty array"}
	}
	first := bytes.TrimSpace(raw[0])
	switch {
	case len(first) > 0 && first[0] == '"':
		for i, r := range raw {
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return &fieldError{field, fmt.Sprintf("element %d: expected a string like the first", i)}
			}
			p.Texts = append(p.Texts, s)
		}
	case len(first) > 0 && first[0] == '[':
		for i, r := range raw {
			ids, err := decodeIDs(r)
			if err != nil {
				return &fieldError{field, fmt.Sprintf("element %d: %v", i, err)}
			}
			p.IDs = append(p.IDs, ids)
		}
	default:
		ids, err := decodeIDs(b)
		if err != nil {
			return &fieldError{field, err.Error()}
		}
		p.IDs = [][]int32{ids}
	}
	return nil
}

func decodeIDs(b []byte) ([]int32, error) {
	var nums []json.Number
	if err := json.Unmarshal(b, &nums); err != nil {
		return nil, fmt.Errorf("expected an array of token ids")
	}
	ids := make([]int32, len(nums))
	for i, n := range nums {
		v, err := strconv.ParseInt(string(n), 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("token id %s at %d is not a non-negative integer", n, i)
		}
		ids[i] = int32(v)
	}
	return ids, nil
}

// stopList is the stop parameter: a string or a list of up to four.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = nil
		return nil
	}
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = stopList{one}
		return nil
	}
	var many []json.RawMessage
	if err := json.Unmarshal(b, &many); err != nil {
		return &fieldError{"stop", "expected a string or an array of strings"}
	}
	out := make(stopList, 0, len(many))
	for i, r := range many {
		var one string
		if bytes.Equal(bytes.TrimSpace(r), []byte("null")) || json.Unmarshal(r, &one) != nil {
			return &fieldError{"stop", fmt.Sprintf("element %d is not a string", i)}
		}
		// An empty stop string would match everywhere; like OpenAI, it
		// asks for nothing.
		if one != "" {
			out = append(out, one)
		}
	}
	*s = out
	return nil
}

// chatMessages is the messages field, decoded one message at a time so
// that an error names the message and field at fault.
type chatMessages []chat.Message

func (ms *chatMessages) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*ms = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &fieldError{"messages", "expected an array of messages"}
	}
	out := make(chatMessages, len(raw))
	for i, r := range raw {
		if r = bytes.TrimSpace(r); len(r) == 0 || r[0] != '{' {
			return &fieldError{"messages", fmt.Sprintf("messages[%d] is not an object", i)}
		}
		if err := json.Unmarshal(r, &out[i]); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) && typ.Field != "" {
				return &fieldError{"messages", fmt.Sprintf("messages[%d].%s: expected %s, got %s", i, typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)}
			}
			return &fieldError{"messages", fmt.Sprintf("messages[%d]: %v", i, err)}
		}
	}
	*ms = out
	return nil
}

// samplingFields are the sampling options shared by completions, chat and
// explain; pointers tell "absent" from zero.
type samplingFields struct {
	Temperature      *float64           `json:"temperature"`
	TopP             *float64           `json:"top_p"`
	TopK             *int               `json:"top_k"`
	MinP             *float64           `json:"min_p"`
	RepeatPenalty    *float64           `json:"repeat_penalty"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
	Seed             *int64             `json:"seed"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type completionRequest struct {
	Model  string      `json:"model"`
	Prompt promptInput `json:"prompt"`
	// Suffix and BestOf are refused unless they ask for nothing.
	Suffix json.RawMessage `json:"suffix"`
	BestOf *int            `json:"best_of"`
	samplingFields
	MaxTokens     *int           `json:"max_tokens"`
	N             *int           `json:"n"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
	Stop          stopList       `json:"stop"`
	Echo          bool           `json:"echo"`
	Logprobs      *int           `json:"logprobs"`
	User          string         `json:"user"`
}

type chatRequest struct {
	Model    string       `json:"model"`
	Messages chatMessages `json:"messages"`
	samplingFields
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	N                   *int           `json:"n"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	Stop                stopList       `json:"stop"`
	Logprobs            bool           `json:"logprobs"`
	TopLogprobs         *int           `json:"top_logprobs"`
	User                string         `json:"user"`

	Tools             []json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls *bool             `json:"parallel_tool_calls"`

	// Refused unless they ask for nothing (checkUnsupported).
	ResponseFormat json.RawMessage `json:"response_format"`
	Functions      json.RawMessage `json:"functions"`
	FunctionCall   json.RawMessage `json:"function_call"`
	Audio          json.RawMessage `json:"audio"`
	Modalities     json.RawMessage `json:"modalities"`
	Prediction     json.RawMessage `json:"prediction"`
	WebSearch      json.RawMessage `json:"web_search_options"`
}

type embeddingRequest struct {
	Model          string      `json:"model"`
	Input          promptInput `json:"input"`
	EncodingFormat string      `json:"encoding_format"`
	Dimensions     *int        `json:"dimensions"`
	// Pooling overrides the model's pooling ("mean" or "last"); an extension.
	Pooling string `json:"pooling"`
	User    string `json:"user"`
}

type explainRequest struct {
	Model       string      `json:"model"`
	Prompt      promptInput `json:"prompt"`
	TopLogprobs *int        `json:"top_logprobs"`
	MaxTokens   *int        `json:"max_tokens"`
	samplingFields
	Attention bool `json:"attention"`
	Layers    bool `json:"layers"`
}

// usage is the token accounting of a response.
type usage struct {
	PromptTokens        int                  `json:"prompt_tokens"`
	CompletionTokens    int                  `json:"completion_tokens"`
	TotalTokens         int                  `json:"total_tokens"`
	PromptTokensDetails *promptTokensDetails `json:"prompt_tokens_details,omitempty"`
	// CompletionTokensDetails is there for clients that read it; nothing
	// here reasons apart from its answer or predicts outputs.
	CompletionTokensDetails *completionTokensDetails `json:"completion_tokens_details,omitempty"`
}

type promptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type completionTokensDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// jsonFloat is a float32 that encodes NaN and infinities (which JSON cannot
// hold) as the most negative finite value: a logprob of a token the model
// rules out entirely.
type jsonFloat float32

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if v > 0 {
			v = math.MaxFloat32
		} else {
			v = -math.MaxFloat32
		}
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 32), nil
}

func (u *usage) add(prompt int, out *genOutput) {
	u.PromptTokens += prompt
	u.CompletionTokens += out.Generated
	if u.PromptTokensDetails == nil {
		u.PromptTokensDetails = &promptTokensDetails{}
	}
	u.PromptTokensDetails.CachedTokens += out.Cached
	if u.CompletionTokensDetails == nil {
		u.CompletionTokensDetails = &completionTokensDetails{}
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
}
