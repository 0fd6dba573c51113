// Package chat turns a conversation into the prompt text a model was
// trained on, by rendering the Jinja chat template the model carries in its
// GGUF metadata (tokenizer.chat_template) the way Hugging Face transformers
// applies it: trim_blocks and lstrip_blocks on, loop controls,
// raise_exception, strftime_now, tojson keeping key order and non-ASCII text.
//
// The Jinja engine is github.com/ardanlabs/jinja v1.8.0 (pure Go, no
// dependencies, written for chat templates). Where it departs from Python's
// Jinja2 in ways that change prompts, this package rewrites the template
// source to route the construct through its own functions (see adapt.go).
// A model without a template gets ChatML, as llama.cpp does.
//
// Tool call arguments reach a template as an object, or as JSON text for
// templates that concatenate them into the prompt ('...' + arguments): New
// probes which form the template renders, as llama.cpp does.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"
)

// Request is what a template is rendered with.
type Request struct {
	Messages            []Message
	AddGenerationPrompt bool
	BOSToken, EOSToken  string
	// Tools are the tool definitions, each JSON-able (json.RawMessage keeps
	// the client's key order). Nil means no tools: templates see None, as
	// with Hugging Face; an empty non-nil slice is an empty list.
	Tools []any
	// Extra holds further template variables, e.g. "enable_thinking".
	Extra map[string]any
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	src      string
	tmpl     *jinja.Template // nil: ChatML fallback
	now      func() time.Time
	maxBytes int
	timeout  time.Duration
	// stringArgs: the template prints tool call arguments as text
	// ('...' + arguments), so it gets them as JSON text; most templates
	// apply tojson to an object. Found by probing, as llama.cpp does.
	stringArgs bool
	// adapted: compiled from our rewrite of the source (adapt.go).
	adapted bool
}

// Option configures a Template.
type Option func(*Template)

// WithClock sets the clock strftime_now reads (tests pin the date).
func WithClock(now func() time.Time) Option { return func(t *Template) { t.now = now } }

// WithMaxOutput bounds the rendered prompt's size in bytes.
func WithMaxOutput(n int) Option { return func(t *Template) { t.maxBytes = n } }

// WithTimeout bounds one render's time (besides the caller's context).
func WithTimeout(d time.Duration) Option { return func(t *Template) { t.timeout = d } }

const (
	defaultMaxOutput = 16 << 20
	defaultTimeout   = 5 * time.Second
	probeTimeout     = 100 * time.Millisecond
	// maxRange bounds range(n): chat templates count messages, and a larger
	// range is a runaway loop.
	maxRange = 1 << 20
)

// Error is a failed render. Raised is true when the template itself called
// raise_exception, whose message is then Msg verbatim (e.g. "System role
// not supported"): that is the template rejecting the conversation, which
// a server reports as a bad request.
type Error struct {
	Msg    string
	Raised bool
	Err    error // the cause, e.g. context.DeadlineExceeded
}

func (e *Error) Error() string {
	if e.Raised {
		return "chat template: " + e.Msg
	}
	return "chat template: render: " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New compiles a template source. An empty source gives the ChatML
// fallback (see ChatML).
func New(src string, opts ...Option) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("compile chat template: engine panic: %v", r)
		}
	}()
	t = &Template{src: src, now: time.Now, maxBytes: defaultMaxOutput, timeout: defaultTimeout}
	for _, o := range opts {
		o(t)
	}
	if strings.TrimSpace(src) == "" {
		return t, nil
	}
	tmpl, err := jinja.Compile(adapt(src))
	if err != nil {
		orig, err0 := jinja.Compile(src)
		if err0 != nil {
			return nil, fmt.Errorf("compile chat template: %w", err0)
		}
		// Our rewrite broke a template the engine accepts: render it as
		// written, without the Jinja2 corrections and without the
		// budget checks, rather than refuse the model.
		slog.Warn("chat template: adaptation failed; rendering it unadapted", "err", err)
		tmpl = orig
	} else {
		t.adapted = true
	}
	t.tmpl = tmpl
	t.stringArgs = !t.rendersArguments(false) && t.rendersArguments(true)
	return t, nil
}

// rendersArguments reports whether the template shows a tool call's
// arguments properly when given them as an object (stringArgs false) or as
// JSON text. An object is shown properly when its value appears and the
// template did not print the dict itself (Python's repr, "{'code': ...}",
// which is what '...' + arguments gives); JSON text when the JSON appears.
// This is llama.cpp's probe, except that a template with its own syntax
// for arguments (Gemma) keeps objects.
func (t *Template) rendersArguments(stringArgs bool) bool {
	req := Request{
		Messages: []Message{
			{Role: "user", Content: Text("Run the code.")},
			{Role: "assistant", Content: Content{Null: true}, ToolCalls: []ToolCall{{
				ID: "call00001", Type: "function",
				Function: FunctionCall{Name: "ipython", Arguments: json.RawMessage(`{"code": "print('Hello, World!')"}`)},
			}}},
		},
		Tools: []any{json.RawMessage(`{"type": "function", "function": {"name": "ipython", "description": "Runs Python code.", "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}`)},
	}
	// The probe is our request, not a client's: a template that takes long
	// over it is already broken, so it gets a small budget.
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	out, err := t.render(ctx, req, stringArgs)
	if err != nil {
		return false
	}
	if stringArgs {
		return strings.Contains(out, `{"code": "print('Hello, World!')"}`)
	}
	return strings.Contains(out, `print('Hello, World!')`) && !strings.Contains(out, `{'code': `)
}

// ChatML returns the fallback template for models without one.
func ChatML(opts ...Option) *Template {
	t, _ := New("", opts...)
	return t
}

// IsFallback reports whether t is the built-in ChatML format.
func (t *Template) IsFallback() bool { return t.tmpl == nil }

// Source returns the template text ("" for the fallback).
func (t *Template) Source() string { return t.src }

// renderState is one render's budget, checked by the hooks.
type renderState struct {
	ctx     context.Context
	printed int
	max     int
}

func (s *renderState) check() error {
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("stopped: %w", err)
	}
	if s.printed > s.max {
		return fmt.Errorf("output exceeds %d bytes", s.max)
	}
	return nil
}

// Render renders the conversation. The work is bounded by ctx, the
// template's timeout and its output limit.
func (t *Template) Render(ctx context.Context, req Request) (string, error) {
	if t.tmpl == nil {
		return renderChatML(req)
	}
	return t.render(ctx, req, t.stringArgs)
}

func (t *Template) render(ctx context.Context, req Request, stringArgs bool) (out string, err error) {
	defer func() {
		// The template comes from a model file: an engine bug it triggers
		// must fail this request, not the server.
		if r := recover(); r != nil {
			out, err = "", &Error{Msg: fmt.Sprintf("engine panic: %v", r)}
		}
	}()
	if t.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	st := &renderState{ctx: ctx, max: t.maxBytes}
	data, err := t.data(req, st, stringArgs)
	if err != nil {
		return "", err
	}
	out, err = t.tmpl.RenderValues(data)
	if err != nil {
		var re *raised
		if errors.As(err, &re) {
			return "", &Error{Msg: re.msg, Raised: true}
		}
		if cerr := st.check(); cerr != nil {
			return "", &Error{Msg: cerr.Error(), Err: cerr}
		}
		return "", &Error{Msg: err.Error(), Err: err}
	}
	if len(out) > t.maxBytes {
		return "", &Error{Msg: fmt.Sprintf("output exceeds %d bytes", t.maxBytes)}
	}
	return out, nil
}

// raised carries a raise_exception message through the engine.
type raised struct{ msg string }

func (r *raised) Error() string { return r.msg }

func (t *Template) data(req Request, st *renderState, stringArgs bool) (map[string]jinja.Value, error) {
	data := make(map[string]jinja.Value, 16+len(req.Extra))
	for k, v := range req.Extra {
		val, err := anyToValue(v)
		if err != nil {
			return nil, fmt.Errorf("template variable %q: %w", k, err)
		}
		data[k] = val
	}
	msgs := make([]jinja.Value, len(req.Messages))
	for i := range req.Messages {
		v, err := req.Messages[i].value(stringArgs)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		msgs[i] = v
	}
	data["messages"] = jinja.NewList(msgs)
	data["add_generation_prompt"] = jinja.NewBool(req.AddGenerationPrompt)
	data["bos_token"] = jinja.NewString(req.BOSToken)
	data["eos_token"] = jinja.NewString(req.EOSToken)
	data["tools"] = jinja.None()
	if req.Tools != nil {
		tools := make([]jinja.Value, len(req.Tools))
		for i, tool := range req.Tools {
			v, err := anyToValue(tool)
			if err != nil {
				return nil, fmt.Errorf("tool %d: %w", i, err)
			}
			tools[i] = v
		}
		data["tools"] = jinja.NewList(tools)
	}

	data["raise_exception"] = jinja.NewCallable("raise_exception", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		msg := "raise_exception called"
		if len(args) > 0 {
			msg = pyStr(args[0])
		}
		return jinja.Undefined(), &raised{msg: msg}
	})
	data["strftime_now"] = jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) == 0 || !args[0].IsString() {
			return jinja.Undefined(), errors.New("strftime_now: want a format string")
		}
		return jinja.NewString(strftime(t.now(), args[0].AsString())), nil
	})
	data["range"] = jinja.NewCallable("range", builtinRange)
	data[hookPrint] = jinja.NewCallable(hookPrint, func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) != 1 {
			return jinja.Undefined(), errors.New("print: internal arity error")
		}
		s := pyStr(args[0])
		st.printed += len(s)
		if err := st.check(); err != nil {
			return jinja.Undefined(), err
		}
		return jinja.NewString(s), nil
	})
	data[hookIter] = jinja.NewCallable(hookIter, func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if err := st.check(); err != nil {
			return jinja.Undefined(), err
		}
		if len(args) != 1 {
			return jinja.Undefined(), errors.New("for: internal arity error")
		}
		v := args[0]
		switch {
		case v.IsNone():
			return jinja.Undefined(), errors.New("TypeError: 'NoneType' object is not iterable")
		case v.IsInt(), v.IsFloat(), v.IsBool():
			return jinja.Undefined(), fmt.Errorf("TypeError: %s object is not iterable", v.String())
		}
		return v, nil
	})
	data[hookToJSON] = jinja.NewCallable("tojson", filterToJSON)
	data[hookToJSONGenerator] = jinja.NewCallable("tojson", func([]jinja.Value, map[string]jinja.Value) (jinja.Value, error) {
		return jinja.Undefined(), errors.New("TypeError: Object of type generator is not JSON serializable")
	})
	data[hookTrim] = jinja.NewCallable("trim", filterTrim)
	data[hookEscape] = jinja.NewCallable("escape", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) != 1 {
			return jinja.Undefined(), errors.New("escape: internal arity error")
		}
		return jinja.NewString(htmlEscaper.Replace(pyStr(args[0]))), nil
	})
	data[hookOperand] = jinja.NewCallable("operand", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) != 2 {
			return jinja.Undefined(), errors.New("operand: internal arity error")
		}
		switch {
		case args[0].IsUndefined():
			return jinja.Undefined(), fmt.Errorf("UndefinedError: '%s' is undefined", pyStr(args[1]))
		case args[0].IsNone():
			return jinja.Undefined(), fmt.Errorf("TypeError: unsupported operand: '%s' is None", pyStr(args[1]))
		}
		return args[0], nil
	})
	data[hookString] = jinja.NewCallable("string", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) == 0 {
			return jinja.Undefined(), errors.New("string: no value")
		}
		return jinja.NewString(pyStr(args[0])), nil
	})
	return data, nil
}

// filterToJSON is Hugging Face's tojson: json.dumps(x, ensure_ascii=False,
// indent=indent, separators=separators, sort_keys=sort_keys).
func filterToJSON(args []jinja.Value, kwargs map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.Undefined(), errors.New("tojson: no value")
	}
	opt := jsonOptions{indent: -1, itemSep: ", ", keySep: ": "}
	indent, ok := kwargs["indent"]
	if !ok && len(args) > 1 {
		indent, ok = args[1], true
	}
	if ok && !indent.IsNone() && !indent.IsUndefined() {
		if !indent.IsInt() {
			return jinja.Undefined(), errors.New("tojson: indent must be an integer")
		}
		opt.indent = int(min(max(indent.AsInt(), 0), 64))
		opt.itemSep = "," // Python drops the space when indenting
	}
	if seps, ok := kwargs["separators"]; ok && !seps.IsNone() {
		if !seps.IsList() || seps.AsList().Len() != 2 || !seps.AsList().Items[0].IsString() || !seps.AsList().Items[1].IsString() {
			return jinja.Undefined(), errors.New("tojson: separators must be two strings")
		}
		opt.itemSep = seps.AsList().Items[0].AsString()
		opt.keySep = seps.AsList().Items[1].AsString()
	}
	if sk, ok := kwargs["sort_keys"]; ok {
		opt.sortKeys = sk.IsTruthy()
	}
	s, err := toJSON(args[0], opt)
	if err != nil {
		return jinja.Undefined(), err
	}
	return jinja.NewString(s), nil
}

// htmlEscaper escapes as markupsafe.escape does.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

// filterTrim is Jinja2's trim: str(value).strip(chars), so None gives
// "None" as in Python.
func filterTrim(args []jinja.Value, kwargs map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.Undefined(), errors.New("trim: no value")
	}
	s := pyStr(args[0])
	chars, ok := kwargs["chars"]
	if !ok && len(args) > 1 {
		chars, ok = args[1], true
	}
	if ok && chars.IsString() {
		return jinja.NewString(strings.Trim(s, chars.AsString())), nil
	}
	return jinja.NewString(strings.TrimSpace(s)), nil
}

// builtinRange is Python's range, bounded so a template cannot build a
// huge list.
func builtinRange(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	n := make([]int64, len(args))
	for i, a := range args {
		if !a.IsInt() {
			return jinja.Undefined(), fmt.Errorf("TypeError: range() argument %d must be an integer", i+1)
		}
		n[i] = a.AsInt()
	}
	var start, stop, step int64 = 0, 0, 1
	switch len(n) {
	case 1:
		stop = n[0]
	case 2:
		start, stop = n[0], n[1]
	case 3:
		start, stop, step = n[0], n[1], n[2]
	default:
		return jinja.Undefined(), fmt.Errorf("TypeError: range expected 1 to 3 arguments, got %d", len(n))
	}
	if step == 0 {
		return jinja.Undefined(), errors.New("ValueError: range() arg 3 must not be zero")
	}
	var items []jinja.Value
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		if len(items) == maxRange {
			return jinja.Undefined(), fmt.Errorf("range longer than %d", maxRange)
		}
		items = append(items, jinja.NewInt(i))
	}
	return jinja.NewList(items), nil
}
