package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// jsonToValue decodes one JSON document into a template value, keeping the
// order of object keys: tool schemas are printed back with tojson and the
// model was trained on the key order its authors wrote.
func jsonToValue(data []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return jinja.Undefined(), err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jinja.Undefined(), errors.New("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (jinja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return jinja.Undefined(), err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return jinja.Undefined(), err
				}
				key, _ := k.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Undefined(), err
				}
				d.AsDict().Set(key, v)
			}
			_, err := dec.Token() // '}'
			return d, err
		case '[':
			items := []jinja.Value{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Undefined(), err
				}
				items = append(items, v)
			}
			_, err := dec.Token() // ']'
			return jinja.NewList(items), err
		}
		return jinja.Undefined(), fmt.Errorf("unexpected JSON delimiter %q", t)
	case nil:
		return jinja.None(), nil
	case bool:
		return jinja.NewBool(t), nil
	case string:
		return jinja.NewString(t), nil
	case json.Number:
		return jinja.FromGoValue(t), nil
	}
	return jinja.Undefined(), fmt.Errorf("unexpected JSON token %v", tok)
}

// anyToValue converts a JSON-able Go value. json.RawMessage (and anything
// that marshals to JSON) keeps its key order; a plain map is ordered by
// encoding/json's sorted keys, since Go maps have no order to keep.
func anyToValue(v any) (jinja.Value, error) {
	switch x := v.(type) {
	case nil:
		return jinja.None(), nil
	case jinja.Value:
		return x, nil
	case string:
		return jinja.NewString(x), nil
	case bool:
		return jinja.NewBool(x), nil
	case int:
		return jinja.NewInt(int64(x)), nil
	case int64:
		return jinja.NewInt(x), nil
	case float64:
		// encoding/json would write 1.0 as 1, an int to the template.
		return jinja.NewFloat(x), nil
	case json.RawMessage:
		return jsonToValue(x)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return jinja.Undefined(), err
	}
	return jsonToValue(data)
}

// pyStr formats a value the way Python's str() does, which is what Jinja2
// prints for {{ x }}: None prints as "None" and containers print as their
// repr (strings quoted inside them).
func pyStr(v jinja.Value) string {
	switch {
	case v.IsUndefined():
		return ""
	case v.IsString():
		return v.AsString()
	}
	var sb strings.Builder
	writeRepr(&sb, v)
	return sb.String()
}

// writeRepr writes Python's repr() of v.
func writeRepr(sb *strings.Builder, v jinja.Value) {
	switch {
	case v.IsUndefined():
		// Undefined inside a container is an edge Jinja2 itself renders
		// oddly; an empty string keeps the output readable.
	case v.IsNone():
		sb.WriteString("None")
	case v.IsBool():
		if v.AsBool() {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case v.IsInt():
		sb.WriteString(strconv.FormatInt(v.AsInt(), 10))
	case v.IsFloat():
		sb.WriteString(pyFloat(v.AsFloat()))
	case v.IsString():
		writeStrRepr(sb, v.AsString())
	case v.IsList():
		sb.WriteByte('[')
		for i, it := range v.AsList().Items {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, it)
		}
		sb.WriteByte(']')
	case v.IsDict():
		d := v.AsDict()
		sb.WriteByte('{')
		for i, k := range d.Keys {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeStrRepr(sb, k)
			sb.WriteString(": ")
			val, _ := d.Get(k)
			writeRepr(sb, val)
		}
		sb.WriteByte('}')
	default:
		sb.WriteString(v.String())
	}
}

// writeStrRepr quotes s as Python does: single quotes unless s holds a
// single quote and no double quote.
func writeStrRepr(sb *strings.Builder, s string) {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	sb.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(sb, `\x%02x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte(q)
}

// pyFloat formats f like Python's repr(float): the shortest digits that
// round-trip, always with a decimal point or exponent, exponent form
// outside [1e-4, 1e16).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		// Both Go and Python write at least two exponent digits.
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// jsonOptions mirror the arguments of Python's json.dumps that Hugging
// Face's tojson filter passes through.
type jsonOptions struct {
	indent   int // <0: compact single line
	itemSep  string
	keySep   string
	sortKeys bool
}

// pythonJSON is json.dumps's default layout.
var pythonJSON = jsonOptions{indent: -1, itemSep: ", ", keySep: ": "}

// toJSON encodes v as Python's json.dumps(v, ensure_ascii=False, ...) does,
// which is what the reference renderer's tojson produces.
func toJSON(v jinja.Value, opt jsonOptions) (string, error) {
	var sb strings.Builder
	if err := writeJSON(&sb, v, opt, 0); err != nil {
		return "", err
	}
	return sb.String(), nil
}

func writeJSON(sb *strings.Builder, v jinja.Value, opt jsonOptions, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("tojson: value nested too deeply")
	}
	newline := func(level int) {
		if opt.indent >= 0 {
			sb.WriteByte('\n')
			sb.WriteString(strings.Repeat(" ", opt.indent*level))
		}
	}
	switch {
	case v.IsUndefined():
		return errors.New("TypeError: Object of type Undefined is not JSON serializable")
	case v.IsNone():
		sb.WriteString("null")
	case v.IsBool():
		if v.AsBool() {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case v.IsInt():
		sb.WriteString(strconv.FormatInt(v.AsInt(), 10))
	case v.IsFloat():
		f := v.AsFloat()
		switch {
		case math.IsNaN(f):
			sb.WriteString("NaN")
		case math.IsInf(f, 1):
			sb.WriteString("Infinity")
		case math.IsInf(f, -1):
			sb.WriteString("-Infinity")
		default:
			sb.WriteString(pyFloat(f))
		}
	case v.IsString():
		writeJSONString(sb, v.AsString())
	case v.IsList():
		items := v.AsList().Items
		if len(items) == 0 {
			sb.WriteString("[]")
			return nil
		}
		sb.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				sb.WriteString(opt.itemSep)
			}
			newline(depth + 1)
			if err := writeJSON(sb, it, opt, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		sb.WriteByte(']')
	case v.IsDict():
		d := v.AsDict()
		if d.Len() == 0 {
			sb.WriteString("{}")
			return nil
		}
		keys := d.Keys
		if opt.sortKeys {
			keys = append([]string(nil), keys...)
			// Python orders str keys by code point: the byte order of
			// valid UTF-8.
			slices.Sort(keys)
		}
		sb.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				sb.WriteString(opt.itemSep)
			}
			newline(depth + 1)
			writeJSONString(sb, k)
			sb.WriteString(opt.keySep)
			val, _ := d.Get(k)
			if err := writeJSON(sb, val, opt, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		sb.WriteByte('}')
	default:
		return fmt.Errorf("TypeError: Object of type %s is not JSON serializable", v.String())
	}
	return nil
}

const maxJSONDepth = 200

// writeJSONString escapes like Python's json with ensure_ascii=False: only
// the quote, the backslash and control characters; '<', '&' and U+2028
// stay as they are (Go's encoding/json would escape them).
func writeJSONString(sb *strings.Builder, s string) {
	sb.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Invalid UTF-8 cannot reach Python as a str; write the
			// replacement character rather than a broken byte.
			sb.WriteString("\ufffd")
			i++
			continue
		}
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(sb, `\u%04x`, r)
			} else {
				sb.WriteString(s[i : i+size])
			}
		}
		i += size
	}
	sb.WriteByte('"')
}
