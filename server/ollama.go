package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ollama/ollama/api"
	ollamamodel "github.com/ollama/ollama/types/model"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/inference/chat"
	"github.com/foretoken/foretoken/inference/sample"
)

// The Ollama API, for clients written against Ollama (its CLI, its Go and
// Python libraries, Open WebUI...). Requests and responses are Ollama's
// own types (github.com/ollama/ollama/api), so the wire format is theirs.
// What foretoken does not do is refused with a clear error rather than
// ignored: images, format as a JSON schema (format "json" is honoured:
// see jsonmode.go), template and suffix overrides, thinking, the sampling options mirostat, typical_p and tfs_z,
// and model management (pull, push, create, copy, delete: models are GGUF
// files in the configured folders). Tools go to the chat template and tool
// calls are read back from the answer, as for OpenAI's chat (tools.go).

// ollamaVersion is the Ollama release whose API these handlers follow;
// clients compare it to decide which fields they may send.
const ollamaVersion = "0.17.4"

// ollamaRoutes registers the Ollama API on r.
func (s *Server) ollamaRoutes(r gin.IRoutes) {
	r.GET("/", s.handleOllamaRoot)
	r.HEAD("/", s.handleOllamaRoot)
	r.GET("/api/version", s.handleOllamaVersion)
	r.HEAD("/api/version", s.handleOllamaVersion)
	r.GET("/api/tags", s.handleOllamaTags)
	r.GET("/api/ps", s.handleOllamaPS)
	r.POST("/api/show", s.handleOllamaShow)
	r.POST("/api/generate", s.handleOllamaGenerate)
	r.POST("/api/chat", s.handleOllamaChat)
	r.POST("/api/embed", s.handleOllamaEmbed)
	r.POST("/api/embeddings", s.handleOllamaEmbeddings)
	for _, p := range []string{"/api/pull", "/api/push", "/api/create", "/api/copy", "/api/blobs/:digest"} {
		r.POST(p, s.handleOllamaManage)
	}
	r.DELETE("/api/delete", s.handleOllamaManage)
}

// ollamaAbort answers err as Ollama does: {"error": "..."} with the
// status the error carries (500 for unexpected ones).
func ollamaAbort(c *gin.Context, err error) {
	status := http.StatusInternalServerError
	msg := err.Error()
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.Status
		msg = ae.Message
	}
	var te *chat.Error
	if errors.As(err, &te) {
		if re := renderError(context.Background(), err); errors.As(re, &ae) {
			status, msg = ae.Status, ae.Message
		}
	}
	_ = c.Error(err)
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

func (s *Server) handleOllamaRoot(c *gin.Context) {
	c.String(http.StatusOK, "Ollama is running")
}

func (s *Server) handleOllamaVersion(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"version": ollamaVersion})
}

func (s *Server) handleOllamaManage(c *gin.Context) {
	ollamaAbort(c, &apiError{Status: http.StatusNotImplemented,
		Message: "foretoken does not manage models: put GGUF files in a model folder (or Ollama's store) and restart"})
}

// ollamaModelDetails reads what Ollama reports of a model from its GGUF
// header, without loading the weights.
func ollamaModelDetails(path string) (api.ModelDetails, *gguf.File, error) {
	d := api.ModelDetails{Format: "gguf"}
	f, err := gguf.Open(path)
	if err != nil {
		return d, nil, err
	}
	arch := f.Architecture()
	d.Family = arch
	if arch != "" {
		d.Families = []string{arch}
	}
	var params uint64
	counts := map[string]uint64{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		n := t.Elements()
		params += n
		if len(t.Dims) >= 2 { // weight matrices say how the model is quantized
			counts[t.Type.String()] += n
		}
	}
	d.ParameterSize = humanCount(params)
	best := uint64(0)
	for typ, n := range counts {
		if n > best || (n == best && typ < d.QuantizationLevel) {
			d.QuantizationLevel, best = typ, n
		}
	}
	return d, f, nil
}

// humanCount writes a parameter count as Ollama does: 260K, 7.6B.
func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e9)) + "B"
	case n >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e6)) + "M"
	case n >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e3)) + "K"
	}
	return fmt.Sprint(n)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

func (s *Server) handleOllamaTags(c *gin.Context) {
	resp := api.ListResponse{Models: []api.ListModelResponse{}}
	for _, f := range s.models.list() {
		m := api.ListModelResponse{Name: f.ID, Model: f.ID, ModifiedAt: time.Unix(f.Created, 0).UTC(), Size: f.Size,
			Details: api.ModelDetails{Format: "gguf"}}
		if d, gf, err := ollamaModelDetails(f.Path); err == nil {
			m.Details = d
			gf.Close()
		}
		resp.Models = append(resp.Models, m)
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) handleOllamaPS(c *gin.Context) {
	resp := api.ProcessResponse{Models: []api.ProcessModelResponse{}}
	for _, st := range s.models.status() {
		f, ok := s.models.lookup(st.id)
		if !ok {
			continue
		}
		m := api.ProcessModelResponse{Name: st.id, Model: st.id, Size: f.Size, Details: api.ModelDetails{Format: "gguf"},
			ContextLength: st.ctxLen, ExpiresAt: st.expiresAt.UTC()}
		if st.expiresAt.IsZero() {
			// Ollama's way to say "never" (keep_alive < 0).
			m.ExpiresAt = time.Now().Add(100 * 365 * 24 * time.Hour).UTC()
		}
		if d, gf, err := ollamaModelDetails(f.Path); err == nil {
			m.Details = d
			gf.Close()
		}
		resp.Models = append(resp.Models, m)
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) handleOllamaShow(c *gin.Context) {
	var req api.ShowRequest
	if err := bindJSON(c, &req); err != nil {
		ollamaAbort(c, err)
		return
	}
	id := req.Model
	if id == "" {
		id = req.Name
	}
	f, ok := s.models.lookup(id)
	if !ok {
		ollamaAbort(c, errModelNotFound(id))
		return
	}
	d, gf, err := ollamaModelDetails(f.Path)
	if err != nil {
		ollamaAbort(c, fmt.Errorf("read %s: %w", f.Path, err))
		return
	}
	defer gf.Close()
	info := make(map[string]any, len(gf.Metadata))
	for _, kv := range gf.Metadata {
		if kv.Value.Type == gguf.Array && !req.Verbose {
			// Vocabularies run to 100k entries; Ollama leaves arrays out
			// unless asked.
			info[kv.Key] = nil
			continue
		}
		info[kv.Key] = kv.Value.Any()
	}
	tmpl, _ := gf.String("tokenizer.chat_template")
	resp := api.ShowResponse{
		Details:      d,
		ModelInfo:    info,
		Template:     tmpl,
		Modelfile:    fmt.Sprintf("# served by foretoken\nFROM %s\n", f.Path),
		ModifiedAt:   time.Unix(f.Created, 0).UTC(),
		Capabilities: []ollamamodel.Capability{ollamamodel.CapabilityCompletion, ollamamodel.CapabilityEmbedding},
	}
	if strings.Contains(tmpl, "tools") {
		// The template shows tool definitions to the model.
		resp.Capabilities = append(resp.Capabilities, ollamamodel.CapabilityTools)
	}
	c.JSON(http.StatusOK, resp)
}

// ollamaOptions are the options of Ollama's requests that foretoken acts
// on; the rest (num_gpu, num_thread, num_batch, use_mmap...) concern how
// Ollama runs a model, which the server's configuration decides here.
// Sampling options that foretoken does not implement are refused.
type ollamaOptions struct {
	// NumCtx narrows the context window of the request; it cannot widen
	// it past the server's --ctx-size (Ollama, likewise, caps it at what
	// the model can take).
	NumCtx *int `json:"num_ctx"`
	// Refused unless neutral.
	Mirostat *int     `json:"mirostat"`
	TypicalP *float64 `json:"typical_p"`
	TFSZ     *float64 `json:"tfs_z"`

	Temperature      *float64 `json:"temperature"`
	TopK             *int     `json:"top_k"`
	TopP             *float64 `json:"top_p"`
	MinP             *float64 `json:"min_p"`
	RepeatPenalty    *float64 `json:"repeat_penalty"`
	RepeatLastN      *int     `json:"repeat_last_n"`
	PresencePenalty  *float64 `json:"presence_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	Seed             *int64   `json:"seed"`
	NumPredict       *int     `json:"num_predict"`
	Stop             []string `json:"stop"`
}

// parseOllamaOptions decodes a request's options with Ollama's defaults
// (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the last
// 64 tokens, a random seed unless one >= 0 is given).
func parseOllamaOptions(raw map[string]any, vocab int) (sample.Params, *ollamaOptions, error) {
	var o ollamaOptions
	if len(raw) > 0 {
		b, err := json.Marshal(raw)
		if err != nil {
			return sample.Params{}, nil, errInvalid("options", "options: %v", err)
		}
		if err := json.Unmarshal(b, &o); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) && typ.Field != "" {
				return sample.Params{}, nil, errInvalid("options", "option %q: expected %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
			}
			return sample.Params{}, nil, errInvalid("options", "options: %v", err)
		}
	}
	switch {
	case o.NumCtx != nil && *o.NumCtx < 1:
		return sample.Params{}, nil, errInvalid("options", "option num_ctx %d is not positive", *o.NumCtx)
	case o.Mirostat != nil && *o.Mirostat != 0:
		return sample.Params{}, nil, errInvalid("options", "option mirostat is not supported; use temperature, top_k, top_p or min_p")
	case o.TypicalP != nil && *o.TypicalP != 1 && *o.TypicalP != 0:
		return sample.Params{}, nil, errInvalid("options", "option typical_p is not supported; use top_p or min_p")
	case o.TFSZ != nil && *o.TFSZ != 1 && *o.TFSZ != 0:
		return sample.Params{}, nil, errInvalid("options", "option tfs_z is not supported; use top_p or min_p")
	}
	f := samplingFields{
		Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP, MinP: o.MinP,
		RepeatPenalty: o.RepeatPenalty, PresencePenalty: o.PresencePenalty, FrequencyPenalty: o.FrequencyPenalty,
	}
	def := func(p **float64, v float64) {
		if *p == nil {
			*p = &v
		}
	}
	def(&f.Temperature, 0.8)
	def(&f.TopP, 0.9)
	def(&f.RepeatPenalty, 1.1)
	if f.TopK == nil {
		k := 40
		f.TopK = &k
	}
	if o.Seed != nil && *o.Seed >= 0 {
		f.Seed = o.Seed
	}
	p, err := f.samplingParams(vocab)
	if err != nil {
		return p, nil, err
	}
	p.RepeatLastN = 64
	if o.RepeatLastN != nil {
		switch n := *o.RepeatLastN; {
		case n < -1:
			return p, nil, errInvalid("options", "repeat_last_n %d is below -1", n)
		case n == 0:
			p.RepeatPenalty = 1 // Ollama: 0 disables the penalty window
		default:
			p.RepeatLastN = n
		}
	}
	if len(o.Stop) > maxStops*4 {
		return p, nil, errInvalid("options", "at most %d stop strings are allowed", maxStops*4)
	}
	return p, &o, nil
}

// ollamaBudget is how many tokens to generate: num_predict, or (when it is
// absent or negative, Ollama's "until done") what the context has left.
// The context is the server's, or num_ctx when that is smaller.
func ollamaBudget(o *ollamaOptions, ctxLen, promptLen int) (int, error) {
	if o.NumCtx != nil && *o.NumCtx < ctxLen {
		ctxLen = *o.NumCtx
	}
	if promptLen >= ctxLen {
		return 0, contextError(ctxLen, promptLen, 1)
	}
	left := ctxLen - promptLen
	if o.NumPredict == nil || *o.NumPredict < 0 {
		return left, nil
	}
	return min(*o.NumPredict, left), nil
}

// tokenizePrompt encodes a rendered prompt with the tokenizer's BOS, once:
// a template that writes BOS itself must not get a second.
// field names the request field that errors blame.
func tokenizePrompt(eng Engine, field, text string, addSpecial bool) ([]int32, error) {
	prompt, err := eng.Tokenize(text, addSpecial)
	if err != nil {
		return nil, errInvalid(field, "tokenize: %v", err)
	}
	if len(prompt) >= 2 && prompt[0] == prompt[1] && eng.IsSpecial(prompt[0]) {
		prompt = prompt[1:]
	}
	return prompt, nil
}

// ndjson writes Ollama's streaming form: one JSON object a line.
type ndjson struct {
	c       *gin.Context
	started bool
}

func (w *ndjson) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode chunk: %w", err)
	}
	if !w.started {
		w.started = true
		w.c.Header("Content-Type", "application/x-ndjson")
		w.c.Status(http.StatusOK)
	}
	if _, err := w.c.Writer.Write(append(b, '\n')); err != nil {
		return err
	}
	w.c.Writer.Flush()
	return nil
}

// fail reports err as an HTTP error before the stream started, else as a
// last line {"error": ...}, which Ollama's clients raise.
func (w *ndjson) fail(err error) {
	if !w.started {
		ollamaAbort(w.c, err)
		return
	}
	_ = w.c.Error(err)
	_ = w.send(gin.H{"error": err.Error()})
}

// ollamaRun is one generation for /api/generate or /api/chat.
type ollamaRun struct {
	model   string
	lm      *loadedModel
	prompt  []int32
	params  sample.Params
	opts    *ollamaOptions
	stream  bool
	hold    bool      // stream no deltas: done carries the whole answer
	json    bool      // JSON mode
	started time.Time // when the request arrived
	loaded  time.Time // when the model was ready
	// chunk wraps a piece of text (or the final empty one) in the
	// endpoint's response type; done adds the final fields.
	chunk func(text string) any
	done  func(out *genOutput, m api.Metrics) any
}

func (s *Server) runOllama(c *gin.Context, r *ollamaRun) {
	ctx := c.Request.Context()
	budget, err := ollamaBudget(r.opts, r.lm.sched.ctxLen, len(r.prompt))
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	gp := genParams{prompt: r.prompt, maxTokens: budget, sampling: r.params, stop: r.opts.Stop, topN: -1, json: r.json}
	var promptDone time.Time
	gp.onPrompt = func([]tokenInfo) error {
		promptDone = time.Now()
		return nil
	}
	w := &ndjson{c: c}
	if r.stream && !r.hold {
		gp.onDelta = func(text string, _ []tokenInfo) error {
			if text == "" {
				return nil
			}
			return w.send(r.chunk(text))
		}
	}
	out, err := generate(ctx, r.lm, gp)
	if err != nil {
		w.fail(err)
		return
	}
	end := time.Now()
	if promptDone.IsZero() {
		promptDone = end
	}
	s.observe(r.model, len(r.prompt), out, end.Sub(r.loaded))
	m := api.Metrics{
		TotalDuration:      end.Sub(r.started),
		LoadDuration:       r.loaded.Sub(r.started),
		PromptEvalCount:    len(r.prompt) - out.Cached,
		PromptEvalDuration: promptDone.Sub(r.loaded),
		EvalCount:          out.Generated,
		EvalDuration:       end.Sub(promptDone),
	}
	if !r.stream {
		c.JSON(http.StatusOK, r.done(out, m))
		return
	}
	if err := w.send(r.done(out, m)); err != nil {
		_ = c.Error(err)
	}
}

// acquireOllama loads the request's model and rejects what foretoken does
// not do. It reports whether format asks for JSON mode.
func (s *Server) acquireOllama(ctx context.Context, model string, format json.RawMessage, think *api.ThinkValue) (*loadedModel, bool, error) {
	jsonMode := false
	switch f := strings.TrimSpace(string(format)); f {
	case "", "null", `""`:
	case `"json"`:
		jsonMode = true
	default:
		return nil, false, errInvalid("format", "format %.40s is not supported: foretoken can constrain an answer to JSON syntax (\"json\") but not to a schema", f)
	}
	if think != nil {
		if on, ok := think.Value.(bool); !ok || on {
			return nil, false, errInvalid("think", "%q does not support thinking", model)
		}
	}
	lm, err := s.acquireModel(ctx, model)
	return lm, jsonMode, err
}

func streamOn(p *bool) bool { return p == nil || *p }

// keepAlive applies a request's keep_alive (nil: unchanged) to lm.
func (s *Server) keepAlive(lm *loadedModel, d *api.Duration) {
	if d != nil {
		s.models.setKeepAlive(lm, d.Duration)
	}
}

func (s *Server) handleOllamaGenerate(c *gin.Context) {
	started := time.Now()
	var req api.GenerateRequest
	if err := bindJSON(c, &req); err != nil {
		ollamaAbort(c, err)
		return
	}
	switch {
	case len(req.Images) > 0:
		ollamaAbort(c, errInvalid("images", "images are not supported: foretoken serves text models"))
		return
	case req.Suffix != "":
		ollamaAbort(c, errInvalid("suffix", "suffix (fill-in-the-middle) is not supported"))
		return
	case req.Template != "":
		ollamaAbort(c, errInvalid("template", "template overrides are not supported; the model's chat template is used"))
		return
	}
	ctx := c.Request.Context()
	lm, jsonMode, err := s.acquireOllama(ctx, req.Model, req.Format, req.Think)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	defer s.models.release(lm)
	s.keepAlive(lm, req.KeepAlive)
	loaded := time.Now()
	if req.Prompt == "" && req.System == "" {
		// Ollama's way to load a model ahead of use, or with keep_alive 0
		// to unload it (which release then does).
		reason := "load"
		if req.KeepAlive != nil && req.KeepAlive.Duration == 0 {
			reason = "unload"
		}
		c.JSON(http.StatusOK, api.GenerateResponse{Model: req.Model, CreatedAt: time.Now().UTC(), Done: true, DoneReason: reason})
		return
	}
	params, opts, err := parseOllamaOptions(req.Options, lm.eng.Info().VocabSize)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	vocab := lm.eng.Info().VocabSize
	prompt := make([]int32, 0, len(req.Context))
	for _, id := range req.Context {
		if id < 0 || id >= vocab {
			ollamaAbort(c, errInvalid("context", "context token %d is outside the vocabulary of %d", id, vocab))
			return
		}
		prompt = append(prompt, int32(id))
	}
	text := req.Prompt
	if !req.Raw {
		var msgs []chat.Message
		if req.System != "" {
			msgs = append(msgs, chat.Message{Role: "system", Content: chat.Text(req.System)})
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: chat.Text(req.Prompt)})
		text, err = lm.eng.RenderChat(ctx, msgs, nil)
		if err != nil {
			ollamaAbort(c, err)
			return
		}
	}
	// The conversation so far (context) already starts with BOS.
	toks, err := tokenizePrompt(lm.eng, "prompt", text, len(prompt) == 0)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	prompt = append(prompt, toks...)

	s.runOllama(c, &ollamaRun{
		model: req.Model, lm: lm, prompt: prompt, params: params, opts: opts, stream: streamOn(req.Stream),
		json: jsonMode, started: started, loaded: loaded,
		chunk: func(text string) any {
			return api.GenerateResponse{Model: req.Model, CreatedAt: time.Now().UTC(), Response: text}
		},
		done: func(out *genOutput, m api.Metrics) any {
			ctxToks := make([]int, 0, len(prompt)+len(out.Tokens))
			for _, id := range prompt {
				ctxToks = append(ctxToks, int(id))
			}
			for _, t := range out.Tokens {
				ctxToks = append(ctxToks, int(t.ID))
			}
			resp := api.GenerateResponse{Model: req.Model, CreatedAt: time.Now().UTC(), Done: true,
				DoneReason: out.Finish, Context: ctxToks, Metrics: m}
			if !streamOn(req.Stream) {
				resp.Response = out.Text
			}
			return resp
		},
	})
}

var ollamaRoles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true}

func (s *Server) handleOllamaChat(c *gin.Context) {
	started := time.Now()
	var req api.ChatRequest
	if err := bindJSON(c, &req); err != nil {
		ollamaAbort(c, err)
		return
	}
	rawTools := make([]json.RawMessage, len(req.Tools))
	for i, tool := range req.Tools {
		b, err := json.Marshal(tool)
		if err != nil {
			ollamaAbort(c, errInvalid("tools", "tools[%d]: %v", i, err))
			return
		}
		rawTools[i] = b
	}
	tools, err := parseTools(rawTools, nil, nil)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	msgs := make([]chat.Message, 0, len(req.Messages))
	for i, m := range req.Messages {
		if !ollamaRoles[m.Role] {
			ollamaAbort(c, errInvalid("messages", "messages[%d].role %q is not one of system, user, assistant, tool", i, m.Role))
			return
		}
		if len(m.Images) > 0 {
			ollamaAbort(c, errInvalid("messages", "messages[%d] has images: foretoken serves text models", i))
			return
		}
		om := chat.OllamaMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolName: m.ToolName}
		for _, tc := range m.ToolCalls {
			args, err := json.Marshal(tc.Function.Arguments)
			if err != nil {
				ollamaAbort(c, errInvalid("messages", "messages[%d] tool call arguments: %v", i, err))
				return
			}
			var otc chat.OllamaToolCall
			otc.Function.Name = tc.Function.Name
			otc.Function.Arguments = args
			om.ToolCalls = append(om.ToolCalls, otc)
		}
		msg := chat.FromOllama(om)
		msg.ToolCallID = m.ToolCallID
		msgs = append(msgs, msg)
	}
	ctx := c.Request.Context()
	lm, jsonMode, err := s.acquireOllama(ctx, req.Model, req.Format, req.Think)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	defer s.models.release(lm)
	s.keepAlive(lm, req.KeepAlive)
	loaded := time.Now()
	if len(msgs) == 0 {
		reason := "load"
		if req.KeepAlive != nil && req.KeepAlive.Duration == 0 {
			reason = "unload"
		}
		c.JSON(http.StatusOK, api.ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
			Message: api.Message{Role: "assistant"}, Done: true, DoneReason: reason})
		return
	}
	params, opts, err := parseOllamaOptions(req.Options, lm.eng.Info().VocabSize)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	var toolDefs []any
	if tools != nil {
		toolDefs = tools.defs
	}
	text, err := lm.eng.RenderChat(ctx, msgs, toolDefs)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	prompt, err := tokenizePrompt(lm.eng, "prompt", text, true)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	// With tools the answer is held until complete, when tool calls can
	// be told from text.
	deltas := streamOn(req.Stream) && tools == nil
	s.runOllama(c, &ollamaRun{
		model: req.Model, lm: lm, prompt: prompt, params: params, opts: opts, stream: streamOn(req.Stream),
		hold: !deltas, json: jsonMode, started: started, loaded: loaded,
		chunk: func(text string) any {
			return api.ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
				Message: api.Message{Role: "assistant", Content: text}}
		},
		done: func(out *genOutput, m api.Metrics) any {
			resp := api.ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
				Message: api.Message{Role: "assistant"}, Done: true, DoneReason: out.Finish, Metrics: m}
			if deltas {
				return resp
			}
			resp.Message.Content = out.Text
			if tools != nil {
				rest, calls := parseToolCalls(out.Text, tools.names)
				for i, tc := range calls {
					var args api.ToolCallFunctionArguments
					if err := json.Unmarshal([]byte(tc.Arguments), &args); err != nil {
						// parseToolCalls returns objects only; keep the text.
						return resp
					}
					resp.Message.ToolCalls = append(resp.Message.ToolCalls, api.ToolCall{ID: newID("call_"),
						Function: api.ToolCallFunction{Index: i, Name: tc.Name, Arguments: args}})
				}
				if len(calls) > 0 {
					resp.Message.Content = rest
				}
			}
			return resp
		},
	})
}

// ollamaEmbedInput is /api/embed's input: a string or a list of strings.
func ollamaEmbedInput(in any) ([]string, error) {
	switch v := in.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, errInvalid("input", "input[%d] is not a string", i)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, errInvalid("input", "input must be a string or a list of strings")
}

// ollamaEmbed embeds each text with the model's pooling, L2-normalized.
// Texts longer than the context are cut to it when truncate is on (the
// default), else refused.
func (s *Server) ollamaEmbed(ctx context.Context, lm *loadedModel, model string, texts []string, truncate bool, dims int) ([][]float32, int, error) {
	info := lm.eng.Info()
	if dims < 0 || dims > info.EmbeddingDim {
		return nil, 0, errInvalid("dimensions", "dimensions %d is outside [1, %d]", dims, info.EmbeddingDim)
	}
	out := make([][]float32, len(texts))
	total := 0
	for i, text := range texts {
		toks, err := lm.eng.Tokenize(text, true)
		if err != nil {
			return nil, 0, errInvalid("input", "tokenize: %v", err)
		}
		if len(toks) == 0 {
			return nil, 0, errInvalid("input", "input %d is empty", i)
		}
		if n := lm.sched.ctxLen; len(toks) > n {
			if !truncate {
				return nil, 0, errInvalid("input", "input %d has %d tokens, more than the context of %d", i, len(toks), n)
			}
			toks = toks[:n]
		}
		vec, err := embed(ctx, lm, toks, info.Pooling)
		if err != nil {
			return nil, 0, err
		}
		if dims > 0 && dims < len(vec) {
			vec = vec[:dims]
			normalize(vec)
		}
		out[i] = vec
		total += len(toks)
	}
	s.metrics.promptTokens.WithLabelValues(model).Add(float64(total))
	return out, total, nil
}

func (s *Server) handleOllamaEmbed(c *gin.Context) {
	started := time.Now()
	var req api.EmbedRequest
	if err := bindJSON(c, &req); err != nil {
		ollamaAbort(c, err)
		return
	}
	texts, err := ollamaEmbedInput(req.Input)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	ctx := c.Request.Context()
	lm, err := s.acquireModel(ctx, req.Model)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	defer s.models.release(lm)
	s.keepAlive(lm, req.KeepAlive)
	loaded := time.Now()
	vecs, total, err := s.ollamaEmbed(ctx, lm, req.Model, texts, req.Truncate == nil || *req.Truncate, req.Dimensions)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	if vecs == nil {
		vecs = [][]float32{}
	}
	c.JSON(http.StatusOK, api.EmbedResponse{Model: req.Model, Embeddings: vecs,
		TotalDuration: time.Since(started), LoadDuration: loaded.Sub(started), PromptEvalCount: total})
}

// handleOllamaEmbeddings is the older single-prompt endpoint.
func (s *Server) handleOllamaEmbeddings(c *gin.Context) {
	var req api.EmbeddingRequest
	if err := bindJSON(c, &req); err != nil {
		ollamaAbort(c, err)
		return
	}
	ctx := c.Request.Context()
	lm, err := s.acquireModel(ctx, req.Model)
	if err != nil {
		ollamaAbort(c, err)
		return
	}
	defer s.models.release(lm)
	s.keepAlive(lm, req.KeepAlive)
	resp := api.EmbeddingResponse{Embedding: []float64{}}
	if req.Prompt != "" {
		vecs, _, err := s.ollamaEmbed(ctx, lm, req.Model, []string{req.Prompt}, true, 0)
		if err != nil {
			ollamaAbort(c, err)
			return
		}
		for _, x := range vecs[0] {
			resp.Embedding = append(resp.Embedding, float64(x))
		}
	}
	c.JSON(http.StatusOK, resp)
}
