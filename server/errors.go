package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// apiError is an error with the HTTP status and OpenAI error fields it is
// answered with.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"` // string or null
	Code    any    `json:"code"`  // string or null
	// RetryAfter, in seconds, is sent as the Retry-After header when > 0.
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Message }

func errInvalid(param, format string, args ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = param
	}
	return e
}

func errModelNotFound(id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model %q does not exist", id)}
}

var errQueueFull = &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "queue_full",
	Message: "Too many requests are waiting for this model; retry later", RetryAfter: 1}

var errShuttingDown = &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "shutting_down",
	Message: "The server is shutting down", RetryAfter: 5}

// statusClientClosed is nginx's status for a request whose client went away.
const statusClientClosed = 499

// abortErr answers err in the OpenAI error shape; errors that are not
// apiErrors become 500s whose message is logged but not sent.
func abortErr(c *gin.Context, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client left (or the server is stopping): nobody reads this,
		// but the log shows 499 rather than a server error.
		ae = &apiError{Status: statusClientClosed, Type: "request_cancelled", Message: "the request was cancelled: " + err.Error()}
	default:
		ae = &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "internal error: " + err.Error()}
	}
	if ae.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	_ = c.Error(err)
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": ae})
}

// bindJSON decodes the request body into dst, turning decoder errors into
// 400s that name the field, and oversized bodies into 413s.
func bindJSON(c *gin.Context, dst any) error {
	dec := json.NewDecoder(c.Request.Body)
	err := dec.Decode(dst)
	if err == nil {
		if dec.More() {
			return errInvalid("", "the request body holds more than one JSON value")
		}
		return nil
	}
	var (
		tooBig *http.MaxBytesError
		typ    *json.UnmarshalTypeError
		syn    *json.SyntaxError
		fe     *fieldError
	)
	switch {
	case errors.As(err, &tooBig):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "body_too_large",
			Message: fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)}
	case errors.As(err, &fe):
		return errInvalid(fe.field, "invalid value for %q: %s", fe.field, fe.msg)
	case errors.As(err, &typ):
		// Embedded structs show up in the path; clients know only the key.
		field := strings.TrimPrefix(typ.Field, "samplingFields.")
		if field == "" {
			return errInvalid("", "the request body must be a JSON object, not %s", typ.Value)
		}
		return errInvalid(field, "invalid type for %q: expected %s, got %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &syn):
		return errInvalid("", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, io.EOF):
		return errInvalid("", "the request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errInvalid("", "malformed JSON: unexpected end of the body")
	}
	return errInvalid("", "malformed JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "integer"
	case strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "slice" || goKind == "array":
		return "array"
	case goKind == "map" || goKind == "struct" || goKind == "ptr":
		return "object"
	}
	return goKind
}

// fieldError is returned by the custom decoders of union-typed fields so
// that the message names the field.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }
