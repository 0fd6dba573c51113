package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/internal/testdata"
)

func TestRunGreedyStory(t *testing.T) {
	o := runOptions{
		modelPath: testdata.Path(t, "models", "stories260K.gguf"),
		prompt:    "Once upon a time",
		maxTokens: 40,
		threads:   2,
		cacheType: "f16",
		echo:      true,
	}
	var out, errOut bytes.Buffer
	if err := runGenerate(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	// stories260K's greedy continuation, as the shared README gives it.
	want := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("output %q, want it to start with %q", out.String(), want)
	}
	for _, s := range []string{"stopped: 40 tokens generated", "prompt: ", "tokens/s"} {
		if !strings.Contains(errOut.String(), s) {
			t.Errorf("stderr %q lacks %q", errOut.String(), s)
		}
	}

	// A context of 8 fills up and says so.
	o.ctxSize, o.maxTokens = 8, -1
	out.Reset()
	errOut.Reset()
	if err := runGenerate(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "context of 8 tokens is full") {
		t.Errorf("stderr %q does not say the context is full", errOut.String())
	}

	// A prompt longer than the context is refused.
	o.ctxSize = 3
	if err := runGenerate(context.Background(), o, &out, &errOut); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("prompt longer than the context: %v", err)
	}
}
