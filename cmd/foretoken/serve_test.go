package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/internal/testdata"
	"github.com/foretoken/foretoken/server"
)

// TestServeMatchesRun: a greedy completion from the server is the text
// `foretoken run --temp 0` prints for the same prompt.
func TestServeMatchesRun(t *testing.T) {
	path := testdata.Path(t, "models", "stories260K.gguf")
	for _, prompt := range []string{"Once upon a time", "Lily and Tom went to the park."} {
		run := newRunCmd()
		var out bytes.Buffer
		run.SetOut(&out)
		run.SetErr(io.Discard)
		run.SetArgs([]string{"-m", path, "-p", prompt, "-n", "40", "--temp", "0", "--echo=false"})
		if err := run.Execute(); err != nil {
			t.Fatal(err)
		}

		cfg := config.Default()
		cfg.Models = []config.ModelSpec{{Path: path, Alias: "tiny"}}
		cfg.OllamaDir = "-"
		srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"model": "tiny", "max_tokens": 40, "temperature": 0, "prompt": prompt})
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/completions", bytes.NewReader(body)))
		var got struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Choices) != 1 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		runText := strings.TrimRight(out.String(), "\n")
		if got.Choices[0].Text != runText {
			t.Errorf("prompt %q:\nserver %q\nrun    %q", prompt, got.Choices[0].Text, runText)
		}
	}
}

func TestServeFlags(t *testing.T) {
	cmd := newServeCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--models", "--model", "--host", "--port", "--ctx-size", "--parallel", "--threads",
		"--api-key", "--config", "--keep-alive", "--max-loaded", "--cors-origin", "FORETOKEN_"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("serve --help does not mention %s", flag)
		}
	}
	for _, args := range [][]string{{"--port", "70000"}, {"--parallel", "0"}, {"--models", "/nonexistent/dir"}, {"extra-arg"}} {
		cmd := newServeCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(append(args, "--ollama-models", "-"))
		if err := cmd.Execute(); err == nil {
			t.Errorf("serve %v: no error", args)
		}
	}
}
