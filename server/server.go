// Package server is foretoken's HTTP server: the OpenAI API (completions,
// chat, embeddings, models), /v1/explain, tokenize/detokenize, health and
// Prometheus metrics over GGUF models loaded on first use.
package server

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foretoken/foretoken/config"
	"github.com/foretoken/foretoken/inference/model"
)

// defaultCtxCap bounds the context of a sequence when neither the
// configuration nor the model asks for less: every slot allocates its
// whole KV cache up front.
const defaultCtxCap = 4096

// Server serves the API over a set of models.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	models  *registry
	metrics *metrics
	handler http.Handler

	draining atomic.Bool
	inflight atomic.Int64 // requests being handled
	// base is the parent context of every request; cancelling it aborts
	// generations still running when the shutdown grace period ends.
	base   context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	scheds map[*scheduler]struct{} // of loaded models, for metrics
}

// Options are what New needs besides the configuration.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// Load opens a model; nil loads it with inference/model.
	Load LoadFunc
}

// New discovers the models cfg names and builds the server. No model is
// loaded until a request needs it.
func New(cfg config.Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	files, err := discoverModels(cfg.ModelDirs, cfg.Models, cfg.OllamaDir)
	if err != nil {
		return nil, err
	}
	load := opts.Load
	if load == nil {
		ct, err := model.ParseCacheType(cfg.CacheType)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", config.KeyCacheType, err)
		}
		mo := model.Options{Threads: cfg.Threads, CacheType: ct}
		load = func(ctx context.Context, path string) (Engine, error) { return LoadModelOptions(path, mo) }
	}
	s := &Server{cfg: cfg, log: log, scheds: map[*scheduler]struct{}{}}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.models = newRegistry(files, load, cfg.KeepAlive, cfg.MaxLoaded, s.newScheduler, log)
	s.models.dropSched = s.forgetScheduler
	s.metrics = newMetrics(s)
	s.handler = s.routes()
	log.Info("models found", "count", len(files))
	return s, nil
}

func (s *Server) newScheduler(e Engine) *scheduler {
	ctxLen := s.cfg.CtxSize
	if ctxLen == 0 {
		ctxLen = min(e.Info().ContextLength, defaultCtxCap)
	}
	var observe func(float64) // batch sizes, when batching
	if s.cfg.Batch {
		observe = s.metrics.batchSize.Observe
	}
	sc := newScheduler(s.cfg.Parallel, s.cfg.Queue, ctxLen, observe, e)
	s.mu.Lock()
	s.scheds[sc] = struct{}{}
	s.mu.Unlock()
	return sc
}

func (s *Server) forgetScheduler(sc *scheduler) {
	s.mu.Lock()
	delete(s.scheds, sc)
	s.mu.Unlock()
	sc.close()
}

func (s *Server) queueDepth() int64 {
	return s.sumSchedulers(func(sc *scheduler) int64 { return sc.waiting.Load() })
}

func (s *Server) activeSlots() int64 {
	return s.sumSchedulers(func(sc *scheduler) int64 { return sc.active.Load() })
}

// sumSchedulers adds up f over the schedulers of the loaded models.
func (s *Server) sumSchedulers(f func(*scheduler) int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for sc := range s.scheds {
		n += f(sc)
	}
	return n
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.HandleMethodNotAllowed = true
	r.Use(s.trackMiddleware, s.writeDeadlineMiddleware, s.recoverMiddleware, s.logMiddleware, s.corsMiddleware, s.bodyLimitMiddleware)

	r.GET("/health", s.handleHealth)
	auth := r.Group("/", s.authMiddleware, s.drainMiddleware)
	auth.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	auth.GET("/v1/models", s.handleModels)
	auth.GET("/v1/models/*id", s.handleModel)
	auth.POST("/v1/completions", s.handleCompletions)
	auth.POST("/v1/chat/completions", s.handleChat)
	auth.POST("/v1/embeddings", s.handleEmbeddings)
	auth.POST("/v1/explain", s.handleExplain)
	auth.POST("/tokenize", s.handleTokenize)
	auth.POST("/detokenize", s.handleDetokenize)
	s.ollamaRoutes(auth) // server/ollama.go

	r.NoRoute(func(c *gin.Context) {
		abortErr(c, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
			Message: fmt.Sprintf("no route %s %s", c.Request.Method, c.Request.URL.Path)})
	})
	r.NoMethod(func(c *gin.Context) {
		abortErr(c, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: fmt.Sprintf("method %s not allowed on %s", c.Request.Method, c.Request.URL.Path)})
	})
	return r
}

// recoverMiddleware turns a panic in a handler into a 500 so that no
// request can bring the server down.
func (s *Server) recoverMiddleware(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic in handler", "path", c.Request.URL.Path, "panic", p, "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				abortErr(c, fmt.Errorf("panic: %v", p))
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}

func (s *Server) logMiddleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	s.metrics.requestSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", status,
		"took", time.Since(start).Round(time.Microsecond), "remote", c.ClientIP()}
	if len(c.Errors) > 0 {
		attrs = append(attrs, "err", c.Errors.Last().Err.Error())
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(c.Request.Context(), level, "request", attrs...)
}

// corsMiddleware answers browsers from the configured origins only; with
// none configured it adds nothing, so browsers refuse cross-origin reads.
func (s *Server) corsMiddleware(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || len(s.cfg.CORSOrigins) == 0 {
		c.Next()
		return
	}
	if slices.Contains(s.cfg.CORSOrigins, "*") {
		c.Header("Access-Control-Allow-Origin", "*")
	} else if slices.Contains(s.cfg.CORSOrigins, origin) {
		c.Header("Access-Control-Allow-Origin", origin)
		c.Header("Vary", "Origin")
	} else {
		c.Next()
		return
	}
	if c.Request.Method == http.MethodOptions {
		c.Header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		c.Header("Access-Control-Allow-Headers", "Authorization, Content-Type")
		c.Header("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}

// writeDeadlineMiddleware gives each write to the client WriteTimeout to
// complete. A client that stops reading a stream then fails the next
// write, which ends its generation and frees its slot; without it the
// generation would block on a full socket for as long as the client
// stays connected.
func (s *Server) writeDeadlineMiddleware(c *gin.Context) {
	w := &deadlineWriter{ResponseWriter: c.Writer, rc: http.NewResponseController(c.Writer), timeout: s.cfg.WriteTimeout}
	c.Writer = w
	c.Next()
	// net/http flushes what is buffered after the handler returns.
	w.extend()
}

// deadlineWriter moves the connection's write deadline before each write
// (and flush), so that only a stalled write times out, however long the
// gaps between writes.
type deadlineWriter struct {
	gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *deadlineWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(b)
}

func (w *deadlineWriter) WriteString(str string) (int, error) {
	w.extend()
	return w.ResponseWriter.WriteString(str)
}

func (w *deadlineWriter) Flush() {
	w.extend()
	w.ResponseWriter.Flush()
}

func (s *Server) bodyLimitMiddleware(c *gin.Context) {
	if c.Request.ContentLength > s.cfg.MaxBody {
		abortErr(c, &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "body_too_large",
			Message: fmt.Sprintf("request body of %d bytes is larger than the limit of %d", c.Request.ContentLength, s.cfg.MaxBody)})
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBody)
	c.Next()
}

func (s *Server) authMiddleware(c *gin.Context) {
	if s.cfg.APIKey == "" {
		c.Next()
		return
	}
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.cfg.APIKey)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="foretoken"`)
		abortErr(c, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: "Missing or invalid API key; send 'Authorization: Bearer KEY'"})
		return
	}
	c.Next()
}

func (s *Server) drainMiddleware(c *gin.Context) {
	if s.draining.Load() {
		abortErr(c, errShuttingDown)
		return
	}
	c.Next()
}

func (s *Server) handleHealth(c *gin.Context) {
	switch {
	case s.draining.Load():
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "shutting down"})
	case len(s.models.ids) == 0:
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "no models"})
	default:
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
}

// Serve answers requests on ln until ctx is cancelled, then shuts down:
// it stops accepting, lets in-flight requests finish for the grace period,
// cancels those still running, and unloads the models.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		// Bounds a slow upload; answers (streams) have no time limit.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return s.base },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		s.cancel()
		s.models.close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.Grace)
	s.draining.Store(true)
	// Shutdown stops accepting at once; it would also wait up to 5 s for
	// connections that were opened but never sent a request, so we wait
	// for our own requests instead and then close what is left.
	go func() { _ = hs.Shutdown(context.Background()) }()
	if !s.waitIdle(s.cfg.Grace) {
		s.log.Warn("grace period over; cancelling in-flight requests", "requests", s.inflight.Load())
		s.cancel()
		// A cancelled generation returns within one forward step.
		s.waitIdle(5 * time.Second)
	}
	s.cancel()
	err := hs.Close()
	<-errc
	s.models.close()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}

// waitIdle waits up to d for the requests in flight to end.
func (s *Server) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (s *Server) trackMiddleware(c *gin.Context) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	c.Next()
}

// ListenAndServe listens on the configured address and serves until ctx
// is cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr(), err)
	}
	return s.Serve(ctx, ln)
}
