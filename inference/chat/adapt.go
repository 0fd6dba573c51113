package chat

import (
	"strings"
)

// The engine (github.com/ardanlabs/jinja) differs from Python's Jinja2,
// which model authors test their templates with, in ways that change
// prompts: it prints None as "" (Jinja2: "None"), iterates None as an empty
// list (Jinja2 raises), sorts keys in tojson(indent=...), goes on silently
// with arithmetic on undefined variables or None, has no generators (map's
// result cannot be serialized in Jinja2) and no Markup ("x"|safe + s
// escapes s). Its filters cannot be replaced, but names it does not know
// fall through to the render data. So before compiling we route the
// affected constructs through functions of ours:
//
//	{{ e }}              ->  {{ foretoken_print(e) }}
//	{% for t in e ... %} ->  {% for t in foretoken_iter(e) ... %}
//	x | tojson(...)      ->  x | foretoken_tojson(...)
//	x | map(...) | tojson -> x | map(...) | foretoken_tojson_generator
//	x | trim             ->  x | foretoken_trim
//	x | string           ->  x | foretoken_string
//	a + x                ->  a + foretoken_operand(x, "x")
//	{{ s|safe + x }}     ->  {{ s|safe + foretoken_escape(x) }}
//
// The same hooks let a render be cancelled: every print and every loop
// passes through our code, which checks the deadline and the output budget.
const (
	hookPrint  = "foretoken_print"
	hookIter   = "foretoken_iter"
	hookToJSON = "foretoken_tojson"
	// hookToJSONGenerator is tojson applied straight to map, select...,
	// whose results Jinja2 cannot serialize.
	hookToJSONGenerator = "foretoken_tojson_generator"
	hookTrim            = "foretoken_trim"
	hookString          = "foretoken_string"
	hookOperand         = "foretoken_operand"
	hookEscape          = "foretoken_escape"
)

// filterHook names our replacement for one of the engine's filters.
func filterHook(name string) (string, bool) {
	switch name {
	case "tojson":
		return hookToJSON, true
	case "trim":
		return hookTrim, true
	case "string":
		return hookString, true
	}
	return "", false
}

// adapt rewrites src as described above. It follows the engine's own
// scanner (tags end at the first closer outside a quoted string) and leaves
// {% raw %} blocks and comments untouched.
func adapt(src string) string {
	var out strings.Builder
	out.Grow(len(src) + len(src)/8)
	inRaw := false
	i := 0
	for i < len(src) {
		j := strings.IndexByte(src[i:], '{')
		if j < 0 || i+j+1 >= len(src) {
			out.WriteString(src[i:])
			break
		}
		j += i
		var closer string
		switch src[j+1] {
		case '{':
			closer = "}}"
		case '%':
			closer = "%}"
		case '#':
			closer = "#}"
		default:
			out.WriteString(src[i : j+1])
			i = j + 1
			continue
		}
		out.WriteString(src[i:j])
		start := j + 2
		if start < len(src) && src[start] == '-' {
			start++
		}
		end, next, ok := findCloser(src, start, closer)
		if !ok {
			// Unterminated tag: leave the rest for the engine to report.
			out.WriteString(src[j:])
			break
		}
		open, body, close := src[j:start], src[start:end], src[end:next]
		i = next

		switch {
		case closer == "#}":
			out.WriteString(open + body + close)
		case inRaw:
			if closer == "%}" && firstWord(body) == "endraw" {
				inRaw = false
			}
			out.WriteString(open + body + close)
		case closer == "}}":
			out.WriteString(open + " " + hookPrint + "(" + adaptExpr(markupConcat(body)) + ") " + close)
		default:
			switch firstWord(body) {
			case "raw":
				inRaw = true
				out.WriteString(open + body + close)
			case "for":
				out.WriteString(open + wrapForIterable(adaptExpr(body)) + close)
			default:
				out.WriteString(open + adaptExpr(body) + close)
			}
		}
	}
	return out.String()
}

// findCloser returns where the tag body that starts at i ends (before an
// optional '-' and the closer) and where the text after the tag begins.
func findCloser(src string, i int, closer string) (end, next int, ok bool) {
	for i < len(src) {
		c := src[i]
		if closer != "#}" && (c == '\'' || c == '"') {
			i = skipString(src, i)
			continue
		}
		if c == '-' && strings.HasPrefix(src[i+1:], closer) {
			return i, i + 3, true
		}
		if strings.HasPrefix(src[i:], closer) {
			return i, i + 2, true
		}
		i++
	}
	return 0, 0, false
}

// skipString returns the index after the quoted string starting at i.
func skipString(s string, i int) int {
	q := s[i]
	i++
	for i < len(s) && s[i] != q {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i+1, len(s))
}

// token is one lexeme of a tag body: an identifier, a quoted string, or a
// single other byte (spaces included), located by its byte offsets.
type token struct {
	start, end int
	ident      bool
}

func lex(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := skipString(s, i)
			toks = append(toks, token{start: i, end: j})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentStart(s[j]) || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			toks = append(toks, token{start: i, end: j, ident: true})
			i = j
		default:
			toks = append(toks, token{start: i, end: i + 1})
			i++
		}
	}
	return toks
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func firstWord(body string) string {
	for _, t := range lex(body) {
		if t.ident {
			return body[t.start:t.end]
		}
		if !isSpace(body[t.start]) {
			return ""
		}
	}
	return ""
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// adaptExpr applies the expression rewrites to a tag body.
func adaptExpr(body string) string {
	return renameFilters(guardOperands(body))
}

// guardOperands wraps each variable that is a whole operand of an
// arithmetic operator (a bare name: not an attribute, not followed by an
// attribute, index, call, filter or test) in our check, which raises as
// Jinja2 does when the variable is undefined or None. A call around a name
// binds tighter than any operator, so the expression keeps its meaning.
func guardOperands(body string) string {
	if !strings.ContainsAny(body, "+-*/%") {
		return body
	}
	toks := lex(body)
	// significant returns the index of the nearest non-space token in
	// direction dir from i, or -1.
	significant := func(i, dir int) int {
		for i += dir; i >= 0 && i < len(toks); i += dir {
			if t := toks[i]; t.ident || t.end-t.start > 1 || !isSpace(body[t.start]) {
				return i
			}
		}
		return -1
	}
	text := func(i int) string {
		if i < 0 {
			return ""
		}
		return body[toks[i].start:toks[i].end]
	}
	var sb strings.Builder
	last := 0
	for i, t := range toks {
		name := body[t.start:t.end]
		if !t.ident || isKeyword(name) || (name[0] >= '0' && name[0] <= '9') {
			continue
		}
		p := significant(i, -1)
		prev, next := text(p), text(significant(i, +1))
		if prev == "not" && p >= 0 && text(significant(p, -1)) == "is" {
			prev = "is" // a test name after "is not"
		}
		switch {
		case prev == "." || prev == "|" || prev == "is": // attribute, filter, test names
			continue
		case next == "." || next == "[" || next == "(" || next == "|" || next == "is" || next == "=":
			continue
		}
		if !isArith(prev) && !isArith(next) {
			continue
		}
		sb.WriteString(body[last:t.start])
		sb.WriteString(hookOperand + "(" + name + ", '" + name + "')")
		last = t.end
	}
	if last == 0 {
		return body
	}
	sb.WriteString(body[last:])
	return sb.String()
}

func isArith(tok string) bool {
	return tok == "+" || tok == "-" || tok == "*" || tok == "/" || tok == "%"
}

// isKeyword reports the words of Jinja's expression and statement syntax,
// which are not variables.
func isKeyword(s string) bool {
	switch s {
	case "and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor",
		"set", "endset", "macro", "endmacro", "call", "endcall", "filter", "endfilter",
		"recursive", "true", "false", "none", "True", "False", "None", "with", "endwith",
		"block", "endblock", "generation", "endgeneration", "break", "continue":
		return true
	}
	return false
}

// markupConcat handles Jinja2's Markup arithmetic in a printed chain of
// '+': when one operand is marked safe (ends in "|safe"), the result is
// Markup and every plain string in the chain is HTML-escaped into it. The
// engine has no Markup type, so we escape those operands explicitly. Only
// a chain of '+' at the top of the expression is handled; anything else
// at that level (comparisons, and/or, if/else, '-') leaves it as it is.
func markupConcat(body string) string {
	if !strings.Contains(body, "safe") {
		return body
	}
	toks := lex(body)
	depth := 0
	var cuts []int // offsets of the top-level '+'
	for _, t := range toks {
		text := body[t.start:t.end]
		switch text {
		case "(", "[", "{":
			depth++
			continue
		case ")", "]", "}":
			depth--
			continue
		}
		if depth != 0 {
			continue
		}
		switch text {
		case "+":
			cuts = append(cuts, t.start)
		case "-", "=", "<", ">", "!", "and", "or", "not", "if", "else", "in", "is":
			return body
		}
	}
	if len(cuts) == 0 {
		return body
	}
	var operands []string
	start := 0
	for _, c := range cuts {
		operands = append(operands, body[start:c])
		start = c + 1
	}
	operands = append(operands, body[start:])
	anySafe := false
	safe := make([]bool, len(operands))
	for i, op := range operands {
		var sig []string
		for _, t := range lex(op) {
			if t.ident || t.end-t.start > 1 || !isSpace(op[t.start]) {
				sig = append(sig, op[t.start:t.end])
			}
		}
		n := len(sig)
		safe[i] = n >= 2 && sig[n-1] == "safe" && sig[n-2] == "|"
		anySafe = anySafe || safe[i]
	}
	if !anySafe {
		return body
	}
	for i, op := range operands {
		if !safe[i] {
			operands[i] = " " + hookEscape + "(" + op + ") "
		}
	}
	return strings.Join(operands, "+")
}

// renameFilters replaces the filter names that filterHook knows after a '|'.
func renameFilters(body string) string {
	if !strings.Contains(body, "|") {
		return body
	}
	var sig []token // the tokens that are not spaces
	for _, t := range lex(body) {
		if t.ident || t.end-t.start > 1 || !isSpace(body[t.start]) {
			sig = append(sig, t)
		}
	}
	text := func(k int) string {
		if k < 0 || k >= len(sig) {
			return ""
		}
		return body[sig[k].start:sig[k].end]
	}
	var sb strings.Builder
	last := 0
	for k, t := range sig {
		if !t.ident || text(k-1) != "|" {
			continue
		}
		hook, ok := filterHook(text(k))
		if !ok {
			continue
		}
		if hook == hookToJSON && afterGenerator(text, k-1) {
			hook = hookToJSONGenerator
		}
		sb.WriteString(body[last:t.start])
		sb.WriteString(hook)
		last = t.end
	}
	sb.WriteString(body[last:])
	return sb.String()
}

// afterGenerator reports whether the filter before the '|' at k is one
// that returns a generator in Jinja2 (map, select...), which tojson cannot
// serialize: "x | map(attribute='a') | tojson" raises there.
func afterGenerator(text func(int) string, k int) bool {
	k--
	if text(k) == ")" {
		for depth := 0; k >= 0; k-- {
			switch text(k) {
			case ")":
				depth++
			case "(":
				depth--
			}
			if depth == 0 {
				break
			}
		}
		k--
	}
	switch text(k) {
	case "map", "select", "reject", "selectattr", "rejectattr":
		return text(k-1) == "|"
	}
	return false
}

// wrapForIterable turns "for T in E [if C] [recursive]" into
// "for T in foretoken_iter(E) [if C] [recursive]". The iterable ends at the
// first "if" or "recursive" outside brackets, as in Jinja2's parser.
func wrapForIterable(body string) string {
	toks := lex(body)
	depth := 0
	iterStart, iterEnd := -1, len(body)
	for _, t := range toks {
		text := body[t.start:t.end]
		if !t.ident {
			switch text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
			continue
		}
		if depth != 0 {
			continue
		}
		if iterStart < 0 {
			if text == "in" {
				iterStart = t.end
			}
			continue
		}
		if text == "if" || text == "recursive" {
			iterEnd = t.start
			break
		}
	}
	if iterStart < 0 {
		return body
	}
	iter := body[iterStart:iterEnd]
	if strings.TrimSpace(iter) == "" {
		return body
	}
	return body[:iterStart] + " " + hookIter + "(" + iter + ") " + body[iterEnd:]
}
