package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// Tool calling. The tool definitions go to the model's chat template, which
// tells the model how to call them (Qwen 2.5 and Hermes: <tool_call> tags;
// Llama 3.x: a bare JSON object; Mistral: [TOOL_CALLS]; ...). The answer is
// then searched for calls in any of those formats; a call counts only when
// it names a declared tool, so that text which merely looks like JSON stays
// content. There is no constrained decoding: a model may still answer in
// prose, and tool_choice cannot force a call.

// toolSet is a request's validated tools.
type toolSet struct {
	defs     []any // json.RawMessage each, as the client sent it (key order kept)
	names    map[string]bool
	parallel bool // more than one call may be returned
}

// parseTools checks OpenAI's tools, tool_choice and parallel_tool_calls.
// It returns nil when no tool may be called: none declared, or
// tool_choice "none".
func parseTools(tools []json.RawMessage, choice json.RawMessage, parallel *bool) (*toolSet, error) {
	mode := "auto"
	if c := bytes.TrimSpace(choice); len(c) > 0 && !bytes.Equal(c, []byte("null")) {
		var s string
		if json.Unmarshal(c, &s) != nil {
			return nil, errInvalid("tool_choice", "tool_choice naming a function is not supported: foretoken cannot force a tool call (no constrained decoding); use \"auto\" or \"none\"")
		}
		switch s {
		case "auto", "none":
			mode = s
		case "required":
			return nil, errInvalid("tool_choice", "tool_choice \"required\" is not supported: foretoken cannot force a tool call (no constrained decoding); use \"auto\" or \"none\"")
		default:
			return nil, errInvalid("tool_choice", "tool_choice %q is not one of \"auto\", \"none\"", s)
		}
	}
	if len(tools) == 0 || mode == "none" {
		return nil, nil
	}
	ts := &toolSet{names: map[string]bool{}, parallel: parallel == nil || *parallel}
	for i, raw := range tools {
		var def struct {
			Type     string `json:"type"`
			Function *struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		}
		if err := json.Unmarshal(raw, &def); err != nil {
			return nil, errInvalid("tools", "tools[%d] is not a tool definition: %v", i, err)
		}
		if def.Type != "function" {
			return nil, errInvalid("tools", "tools[%d].type %q is not supported; only \"function\" tools are", i, def.Type)
		}
		if def.Function == nil || def.Function.Name == "" {
			return nil, errInvalid("tools", "tools[%d].function.name is required", i)
		}
		if p := bytes.TrimSpace(def.Function.Parameters); len(p) > 0 && p[0] != '{' && !bytes.Equal(p, []byte("null")) {
			return nil, errInvalid("tools", "tools[%d].function.parameters must be a JSON Schema object", i)
		}
		if ts.names[def.Function.Name] {
			return nil, errInvalid("tools", "tools[%d]: function %q is declared twice", i, def.Function.Name)
		}
		ts.names[def.Function.Name] = true
		ts.defs = append(ts.defs, json.RawMessage(raw))
	}
	return ts, nil
}

// toolCall is a call found in a model's answer.
type toolCall struct {
	Name      string
	Arguments string // a JSON object, compact
}

// parseToolCalls looks for tool calls in text. It returns the text left
// around them (trimmed) and the calls; when text holds no call to a known
// tool, it returns text unchanged and no calls.
func parseToolCalls(text string, known map[string]bool) (string, []toolCall) {
	for _, parse := range []func(string) (string, []toolCall, bool){
		parseTagged("<tool_call>", "</tool_call>"),              // Qwen 2.5, Hermes 2/3
		parsePrefixedList("[TOOL_CALLS]", ""),                   // Mistral
		parsePrefixedList("functools", ""),                      // Firefunction v2
		parsePrefixedList("<|START_ACTION|>", "<|END_ACTION|>"), // Command R7B
		parsePrefixedList("Action:", ""),                        // Command R+
		parseDeepSeek,                                           // DeepSeek R1
		parseFunctionTags,                                       // Llama 3.1 custom tools, Functionary v3.1
		parseFunctionary,                                        // Functionary v3.2
		parseBareJSON,                                           // Llama 3.x
	} {
		content, calls, ok := parse(text)
		if !ok || len(calls) == 0 {
			continue
		}
		for _, c := range calls {
			if !known[c.Name] {
				return text, nil
			}
		}
		return content, calls
	}
	return text, nil
}

// parseTagged finds every open...close block holding one JSON call; the
// close tag may be missing at the end (generation stopped on it).
func parseTagged(open, close string) func(string) (string, []toolCall, bool) {
	return func(text string) (string, []toolCall, bool) {
		return scanBlocks(text, open, close, func(rest string) (toolCall, int, bool) {
			v, n, ok := firstJSON(rest)
			if !ok {
				return toolCall{}, 0, false
			}
			c, ok := callOf(v)
			return c, n, ok
		})
	}
}

// scanBlocks reads every block of text that starts with open: call parses
// what follows open into a call and says how many bytes it took; then
// blanks and the close tag (missing at the end when generation stopped on
// it) are skipped. The text outside the blocks is the content. It fails
// when text has no block or a block does not parse.
func scanBlocks(text, open, close string, call func(rest string) (toolCall, int, bool)) (string, []toolCall, bool) {
	if !strings.Contains(text, open) {
		return "", nil, false
	}
	var (
		content strings.Builder
		calls   []toolCall
	)
	rest := text
	for {
		i := strings.Index(rest, open)
		if i < 0 {
			content.WriteString(rest)
			break
		}
		content.WriteString(rest[:i])
		rest = rest[i+len(open):]
		c, n, ok := call(rest)
		if !ok {
			return "", nil, false
		}
		calls = append(calls, c)
		rest = strings.TrimLeftFunc(rest[n:], unicode.IsSpace)
		rest = strings.TrimPrefix(rest, close)
	}
	return strings.TrimSpace(content.String()), calls, true
}

// parsePrefixedList reads a JSON array of calls after prefix, perhaps in
// a ```json fence and followed by close.
func parsePrefixedList(prefix, close string) func(string) (string, []toolCall, bool) {
	return func(text string) (string, []toolCall, bool) {
		i := strings.Index(text, prefix)
		if i < 0 {
			return "", nil, false
		}
		after := text[i+len(prefix):]
		body := skipFence(after)
		v, n, ok := firstJSON(body)
		if !ok {
			return "", nil, false
		}
		rest := strings.TrimLeftFunc(body[n:], unicode.IsSpace)
		rest = strings.TrimPrefix(rest, "```")
		rest = strings.TrimPrefix(strings.TrimLeftFunc(rest, unicode.IsSpace), close)
		n = len(after) - len(rest)
		list, ok := v.([]any)
		if !ok {
			return "", nil, false
		}
		var calls []toolCall
		for _, x := range list {
			c, ok := callOf(x)
			if !ok {
				return "", nil, false
			}
			calls = append(calls, c)
		}
		content := text[:i] + text[i+len(prefix)+n:]
		return strings.TrimSpace(content), calls, true
	}
}

// skipFence skips blanks and the opening of a ```json (or ```) fence.
func skipFence(s string) string {
	t := strings.TrimLeftFunc(s, unicode.IsSpace)
	if r, ok := strings.CutPrefix(t, "```"); ok {
		r = strings.TrimPrefix(r, "json")
		return r
	}
	return s
}

// parseDeepSeek reads DeepSeek R1's calls:
// <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜>,
// the whole inside <｜tool▁calls▁begin｜>...<｜tool▁calls▁end｜>.
func parseDeepSeek(text string) (string, []toolCall, bool) {
	const (
		allOpen, allClose = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
		open, close, sep  = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
	)
	first := strings.Index(text, open)
	if first < 0 {
		return "", nil, false
	}
	content := text[:first]
	if i := strings.Index(text, allOpen); i >= 0 && i < first {
		content = text[:i]
	}
	rest := text[first:]
	var calls []toolCall
	for {
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		r, ok := strings.CutPrefix(rest, open)
		if !ok {
			break
		}
		_, r, ok = strings.Cut(r, sep)
		if !ok {
			return "", nil, false
		}
		name, body, ok := strings.Cut(r, "\n")
		if !ok {
			return "", nil, false
		}
		body = skipFence(body)
		v, n, ok := firstJSON(body)
		if !ok {
			return "", nil, false
		}
		args, ok := argumentsOf(v)
		if !ok {
			return "", nil, false
		}
		calls = append(calls, toolCall{Name: strings.TrimSpace(name), Arguments: args})
		rest = strings.TrimLeftFunc(body[n:], unicode.IsSpace)
		rest = strings.TrimPrefix(rest, "```")
		rest = strings.TrimPrefix(rest, close)
	}
	rest = strings.TrimPrefix(strings.TrimLeftFunc(rest, unicode.IsSpace), allClose)
	return strings.TrimSpace(content + rest), calls, true
}

// parseFunctionary reads Functionary v3.2's turns: >>>NAME\n{args} for a
// call, >>>all\ntext for text.
func parseFunctionary(text string) (string, []toolCall, bool) {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, ">>>") {
		return "", nil, false
	}
	var (
		content strings.Builder
		calls   []toolCall
	)
	for _, part := range strings.Split(t[len(">>>"):], ">>>") {
		name, body, _ := strings.Cut(part, "\n")
		if name == "all" {
			content.WriteString(body)
			continue
		}
		body = strings.TrimSpace(body)
		v, n, ok := firstJSON(body)
		if !ok || n != len(body) {
			return "", nil, false
		}
		args, ok := argumentsOf(v)
		if !ok {
			return "", nil, false
		}
		calls = append(calls, toolCall{Name: strings.TrimSpace(name), Arguments: args})
	}
	return strings.TrimSpace(content.String()), calls, true
}

// parseFunctionTags reads <function=NAME>{args}</function> blocks.
func parseFunctionTags(text string) (string, []toolCall, bool) {
	return scanBlocks(text, "<function=", "</function>", func(rest string) (toolCall, int, bool) {
		j := strings.IndexByte(rest, '>')
		if j <= 0 {
			return toolCall{}, 0, false
		}
		v, n, ok := firstJSON(rest[j+1:])
		if !ok {
			return toolCall{}, 0, false
		}
		args, ok := argumentsOf(v)
		return toolCall{Name: rest[:j], Arguments: args}, j + 1 + n, ok
	})
}

// parseBareJSON accepts an answer that is nothing but calls: JSON objects
// (after an optional <|python_tag|>), separated by blanks or semicolons.
func parseBareJSON(text string) (string, []toolCall, bool) {
	rest := strings.TrimSpace(text)
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "<|python_tag|>"))
	if !strings.HasPrefix(rest, "{") {
		return "", nil, false
	}
	var calls []toolCall
	for rest != "" {
		v, n, ok := firstJSON(rest)
		if !ok {
			return "", nil, false
		}
		c, ok := callOf(v)
		if !ok {
			return "", nil, false
		}
		calls = append(calls, c)
		rest = strings.TrimLeft(rest[n:], " \t\r\n;")
	}
	return "", calls, true
}

// firstJSON decodes the JSON value at the start of s (after blanks) and
// returns it with the number of bytes it took.
func firstJSON(s string) (any, int, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, 0, false
	}
	return v, int(dec.InputOffset()), true
}

// callOf reads {"name"|"tool_name": ..., "arguments"|"parameters": {...}},
// also in OpenAI's own shape {"type":"function","function":{...}}.
func callOf(v any) (toolCall, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return toolCall{}, false
	}
	if f, ok := m["function"].(map[string]any); ok {
		m = f
	}
	name, _ := m["name"].(string)
	if name == "" {
		name, _ = m["tool_name"].(string) // Command R
	}
	if name == "" {
		return toolCall{}, false
	}
	raw, ok := m["arguments"]
	if !ok {
		raw, ok = m["parameters"]
	}
	if !ok {
		return toolCall{Name: name, Arguments: "{}"}, true
	}
	args, ok := argumentsOf(raw)
	return toolCall{Name: name, Arguments: args}, ok
}

// argumentsOf turns arguments given as an object, or as a string holding
// one, into compact JSON text.
func argumentsOf(v any) (string, bool) {
	if s, ok := v.(string); ok {
		var obj map[string]any
		if json.Unmarshal([]byte(s), &obj) != nil {
			return "", false
		}
		v = obj
	}
	if _, ok := v.(map[string]any); !ok {
		return "", false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// toolCallOut is a tool call in a chat response (OpenAI's shape; Index is
// set in streamed deltas).
type toolCallOut struct {
	Index    *int            `json:"index,omitempty"`
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Function functionCallOut `json:"function"`
}

type functionCallOut struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func toolCallsOut(calls []toolCall, indexed bool) []toolCallOut {
	out := make([]toolCallOut, len(calls))
	for i, c := range calls {
		out[i] = toolCallOut{ID: newID("call_"), Type: "function", Function: functionCallOut{Name: c.Name, Arguments: c.Arguments}}
		if indexed {
			out[i].Index = &i
		}
	}
	return out
}

// rejectUnsupported answers 400 for a field foretoken does not implement
// when it is set to anything but null or one of the values that ask for
// nothing special (given as compact JSON).
func rejectUnsupported(field string, raw json.RawMessage, why string, harmless ...string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		for _, h := range harmless {
			if buf.String() == h {
				return nil
			}
		}
	}
	return errInvalid(field, "%s is not supported: %s", field, why)
}

// jsonMode reads response_format: true for {"type": "json_object"}. JSON
// schemas are refused: the sampler can keep an answer within JSON syntax,
// not within a schema.
func (r *chatRequest) jsonMode() (bool, error) {
	raw := bytes.TrimSpace(r.ResponseFormat)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return false, nil
	}
	var rf struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return false, errInvalid("response_format", "response_format must be an object with a type")
	}
	switch rf.Type {
	case "text":
		return false, nil
	case "json_object":
		return true, nil
	case "json_schema":
		return false, errInvalid("response_format", "response_format json_schema is not supported: foretoken can constrain an answer to JSON syntax (json_object) but not to a schema")
	}
	return false, errInvalid("response_format", "response_format type %q is not one of text, json_object", rf.Type)
}

// checkChatUnsupported refuses the chat fields foretoken would otherwise
// silently ignore.
func (r *chatRequest) checkUnsupported() error {
	checks := []struct {
		field    string
		raw      json.RawMessage
		why      string
		harmless []string
	}{
		{"functions", r.Functions, "use tools instead of the deprecated functions", []string{"[]"}},
		{"function_call", r.FunctionCall, "use tool_choice instead of the deprecated function_call", []string{`"auto"`, `"none"`}},
		{"audio", r.Audio, "foretoken serves text models", nil},
		{"modalities", r.Modalities, "foretoken serves text models", []string{`["text"]`}},
		{"prediction", r.Prediction, "predicted outputs are not implemented", nil},
		{"web_search_options", r.WebSearch, "foretoken has no web search", nil},
	}
	for _, c := range checks {
		if err := rejectUnsupported(c.field, c.raw, c.why, c.harmless...); err != nil {
			return err
		}
	}
	return nil
}

func (r *completionRequest) checkUnsupported(n int) error {
	if err := rejectUnsupported("suffix", r.Suffix, "fill-in-the-middle is not implemented", `""`); err != nil {
		return err
	}
	if r.BestOf != nil && *r.BestOf != n {
		return errInvalid("best_of", "best_of %d is not supported: foretoken returns n completions without ranking them; leave best_of out or equal to n", *r.BestOf)
	}
	return nil
}
