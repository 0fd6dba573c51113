package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/server"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve GGUF models over an OpenAI-compatible HTTP API",
		Long: `serve answers the OpenAI API (/v1/completions, /v1/chat/completions,
/v1/embeddings, /v1/models), the Ollama API (/api/generate, /api/chat,
/api/embed, /api/tags, /api/show, /api/ps...), /v1/explain, /tokenize,
/detokenize, /health and /metrics for the GGUF models it finds:

  - every *.gguf below each --models folder (id: the file name without .gguf),
  - each --model PATH[=ALIAS],
  - Ollama's local store ($OLLAMA_MODELS or ~/.ollama/models; ids like llama3:latest).

A model is loaded when a request first names it and unloaded after --keep-alive
without use, or when --max-loaded would be exceeded. Up to --parallel requests
generate at once per model; up to --queue more wait, the rest get 429.

Every flag can also be set in the YAML file given by --config (keys are the
flag names, e.g. "ctx-size: 2048") and in the environment as FORETOKEN_ plus the
flag name in upper case with '-' as '_' (FORETOKEN_CTX_SIZE=2048). Flags beat
the environment, which beats the file, which beats the defaults.

The server listens on 127.0.0.1 unless --host says otherwise. SIGINT or
SIGTERM stops it: no new requests, in-flight ones get --shutdown-grace to
finish, then are cancelled.`,
		Example: `  foretoken serve --models ~/models
  foretoken serve -m ./stories260K.gguf=tiny --port 9000 --api-key secret
  curl http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \
    -d '{"model":"tiny","prompt":"Once upon a time","max_tokens":32}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			srv, err := server.New(cfg, server.Options{Logger: log})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return srv.ListenAndServe(ctx)
		},
	}
	config.AddFlags(cmd.Flags())
	return cmd
}
