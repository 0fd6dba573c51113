package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/internal/testdata"
)

func runTokenize(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newTokenizeCmd()
	var out bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// The expected ids are llama.cpp's, from ../shared/vocab/*.out ("Hello
// world" is a case of every vocabulary's test file).
func TestTokenizeCmd(t *testing.T) {
	spm := testdata.Path(t, "vocab", "ggml-vocab-llama-spm.gguf")
	qwen := testdata.Path(t, "vocab", "ggml-vocab-qwen2.gguf")
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"spm", "Hello world", []string{"-m", spm}, "15043 3186\n"},
		{"spm add special", "Hello world", []string{"-m", spm, "--add-special"}, "1 15043 3186\n"},
		{"spm pieces", "Hello world", []string{"-m", spm, "--pieces"}, "15043\t\" Hello\"\n3186\t\" world\"\n"},
		{"spm decode", "15043 3186\n", []string{"-m", spm, "--decode"}, "Hello world\n"},
		{"spm decode drops BOS", "1 15043 3186", []string{"-m", spm, "--decode"}, "Hello world\n"},
		// As llama.cpp's detokenize with unparse_special: the prefix space
		// is only removed from the first token, here the visible <s>.
		{"spm decode special", "1 15043", []string{"-m", spm, "--decode", "--special"}, "<s> Hello\n"},
		{"qwen plain", "Hello world", []string{"-m", qwen}, "9707 1879\n"},
		// <|im_start|> is 151644 in Qwen2's vocabulary and "user" 872 (Qwen's
		// published chat-format ids); unparsed, it is the text "<" "|" "im"
		// "_start" "|" ">".
		{"qwen parse special", "<|im_start|>user", []string{"-m", qwen, "--parse-special"}, "151644 872\n"},
		{"qwen no parse special", "<|im_start|>", []string{"-m", qwen}, "27 91 318 4906 91 29\n"},
		{"qwen no BOS", "Hello world", []string{"-m", qwen, "--add-special"}, "9707 1879\n"},
		{"empty", "", []string{"-m", spm}, "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runTokenize(t, tt.stdin, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTokenizeCmdErrors(t *testing.T) {
	spm := testdata.Path(t, "vocab", "ggml-vocab-llama-spm.gguf")
	for _, args := range [][]string{
		{},                              // no model
		{"-m", "/nonexistent.gguf"},     // missing file
		{"-m", spm, "--decode", "junk"}, // positional argument
	} {
		if _, err := runTokenize(t, "", args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	for _, stdin := range []string{"abc", "-1", "32000"} {
		if _, err := runTokenize(t, stdin, "-m", spm, "--decode"); err == nil {
			t.Errorf("decode %q: no error", stdin)
		}
	}
}
