package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// sseWriter writes OpenAI-style server-sent events: "data: JSON\n\n"
// lines, ended by "data: [DONE]". Headers are sent with the first event,
// so an error before it can still be answered with a status code.
type sseWriter struct {
	c       *gin.Context
	started bool
}

func (w *sseWriter) start() {
	if w.started {
		return
	}
	w.started = true
	h := w.c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.c.Status(http.StatusOK)
}

// send writes one event and flushes it; a write error means the client is
// gone.
func (w *sseWriter) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return w.raw(b)
}

func (w *sseWriter) raw(b []byte) error {
	w.start()
	if _, err := fmt.Fprintf(w.c.Writer, "data: %s\n\n", b); err != nil {
		return err
	}
	w.c.Writer.Flush()
	return nil
}

func (w *sseWriter) done() error { return w.raw([]byte("[DONE]")) }

// fail reports err: as an HTTP error before the stream started, else as a
// final error event (OpenAI's clients raise it).
func (w *sseWriter) fail(err error) {
	if !w.started {
		abortErr(w.c, err)
		return
	}
	_ = w.c.Error(err)
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Type: "server_error", Message: err.Error()}
	}
	_ = w.send(gin.H{"error": ae})
}
