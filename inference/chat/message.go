package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation. Its JSON form is OpenAI's chat
// message, so a request body decodes straight into it; Ollama's messages
// map into it field by field (see FromOllama).
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	// Name is the speaker's name, or for role "tool" the function whose
	// result this is.
	Name       string     `json:"name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	// ReasoningContent is an assistant's earlier reasoning, which some
	// templates (DeepSeek R1, Qwen3) place or drop themselves.
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

// Content is a message's content: a string, null, or (OpenAI) a list of
// typed parts. Templates see a string (text parts joined by newlines, as
// llama.cpp does) or None.
type Content struct {
	Text  string
	Parts []Part // set when the content was a list
	Null  bool   // JSON null or absent
}

// Part is one element of a list-valued content.
type Part struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
}

// Text returns a string content.
func Text(s string) Content { return Content{Text: s} }

// UnmarshalJSON accepts a string, null or a list of parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = Content{Null: true}
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content{Text: s}
		return nil
	case len(b) > 0 && b[0] == '[':
		var parts []Part
		if err := json.Unmarshal(b, &parts); err != nil {
			return fmt.Errorf("content parts: %w", err)
		}
		*c = Content{Parts: parts}
		return nil
	}
	return fmt.Errorf("content must be a string, null or a list of parts, got %.20s", b)
}

// MarshalJSON writes the form the content was given in.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.Null:
		return []byte("null"), nil
	case c.Parts != nil:
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// String returns the text a template sees: the string, or the text parts
// joined by newlines. It fails on parts other than text, which the
// templates here cannot show (images need a vision model).
func (c Content) String() (string, error) {
	if c.Parts == nil {
		return c.Text, nil
	}
	var sb strings.Builder
	for i, p := range c.Parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part %d has type %q; only text parts are supported", i, p.Type)
		}
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(p.Text)
	}
	return sb.String(), nil
}

// ToolCall is a function call an assistant made.
type ToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"` // "function" when empty
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and its arguments: a JSON object
// (Ollama) or a string holding one (OpenAI). Templates get an object
// either way, as Hugging Face and llama.cpp give them.
type FunctionCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// OllamaMessage is the shape of a message in Ollama's /api/chat.
type OllamaMessage struct {
	Role      string           `json:"role"`
	Content   string           `json:"content"`
	Thinking  string           `json:"thinking,omitempty"`
	ToolName  string           `json:"tool_name,omitempty"`
	Images    []string         `json:"images,omitempty"` // base64; not supported by text models
	ToolCalls []OllamaToolCall `json:"tool_calls,omitempty"`
}

// OllamaToolCall is a tool call in an Ollama message: no id, and the
// arguments are an object.
type OllamaToolCall struct {
	Function struct {
		Index     int             `json:"index,omitempty"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// FromOllama maps an Ollama chat message: its thinking becomes
// reasoning_content and tool_name the tool message's name. An assistant
// message that only calls tools gets a null content, as OpenAI clients send.
func FromOllama(m OllamaMessage) Message {
	msg := Message{
		Role:             m.Role,
		Content:          Text(m.Content),
		Name:             m.ToolName,
		ReasoningContent: m.Thinking,
	}
	for _, tc := range m.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, ToolCall{
			Type:     "function",
			Function: FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
		})
	}
	if m.Content == "" && len(msg.ToolCalls) > 0 {
		msg.Content = Content{Null: true}
	}
	return msg
}

// value builds the dict a template sees for m. Optional fields are left
// out when empty, since templates test them with "is defined" or "in".
// With stringArgs, tool call arguments are given as JSON text rather than
// as an object (see Template.stringArgs).
func (m *Message) value(stringArgs bool) (jinja.Value, error) {
	d := jinja.NewDict()
	dict := d.AsDict()
	role := m.Role
	if role == "developer" {
		// OpenAI's newer name for the system role, which no template knows.
		role = "system"
	}
	dict.Set("role", jinja.NewString(role))
	if m.Content.Null {
		dict.Set("content", jinja.None())
	} else {
		s, err := m.Content.String()
		if err != nil {
			return jinja.Undefined(), err
		}
		dict.Set("content", jinja.NewString(s))
	}
	if m.Name != "" {
		dict.Set("name", jinja.NewString(m.Name))
	}
	if m.ToolCallID != "" {
		dict.Set("tool_call_id", jinja.NewString(m.ToolCallID))
	}
	if m.ReasoningContent != "" {
		dict.Set("reasoning_content", jinja.NewString(m.ReasoningContent))
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]jinja.Value, len(m.ToolCalls))
		for i, tc := range m.ToolCalls {
			v, err := tc.value(stringArgs)
			if err != nil {
				return jinja.Undefined(), fmt.Errorf("tool call %d: %w", i, err)
			}
			calls[i] = v
		}
		dict.Set("tool_calls", jinja.NewList(calls))
	}
	return d, nil
}

func (tc *ToolCall) value(stringArgs bool) (jinja.Value, error) {
	args := jinja.NewDict()
	if raw := bytes.TrimSpace(tc.Function.Arguments); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		v, err := jsonToValue(raw)
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("arguments: %w", err)
		}
		// OpenAI sends the arguments as a string of JSON, Ollama as an
		// object; convert to what the template wants. A string that is
		// not a JSON object stays a string.
		if v.IsString() && !stringArgs {
			if obj, err := jsonToValue([]byte(v.AsString())); err == nil && obj.IsDict() {
				v = obj
			}
		}
		args = v
	}
	if stringArgs && !args.IsString() {
		text, err := toJSON(args, pythonJSON)
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("arguments: %w", err)
		}
		args = jinja.NewString(text)
	}
	fn := jinja.NewDict()
	fn.AsDict().Set("name", jinja.NewString(tc.Function.Name))
	fn.AsDict().Set("arguments", args)

	d := jinja.NewDict()
	dict := d.AsDict()
	if tc.ID != "" {
		dict.Set("id", jinja.NewString(tc.ID))
	}
	typ := tc.Type
	if typ == "" {
		typ = "function"
	}
	dict.Set("type", jinja.NewString(typ))
	dict.Set("function", fn)
	return d, nil
}
