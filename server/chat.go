package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/foretoken/foretoken/inference/chat"
	"github.com/foretoken/foretoken/inference/sample"
)

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatOut        `json:"delta,omitempty"`
	Logprobs     *chatLogprobs   `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// chatOut is a streamed delta.
type chatOut struct {
	Role      string        `json:"role,omitempty"`
	Content   *string       `json:"content,omitempty"`
	ToolCalls []toolCallOut `json:"tool_calls,omitempty"`
}

// chatMessageOut is the assistant message of a whole answer: content is
// null when the answer is only tool calls, as OpenAI sends it.
type chatMessageOut struct {
	Role      string        `json:"role"`
	Content   *string       `json:"content"`
	ToolCalls []toolCallOut `json:"tool_calls,omitempty"`
	Refusal   *string       `json:"refusal"`
}

type chatLogprobs struct {
	Content []chatTokenLogprob `json:"content"`
}

type chatTokenLogprob struct {
	Token       string           `json:"token"`
	Logprob     jsonFloat        `json:"logprob"`
	Bytes       []int            `json:"bytes"`
	TopLogprobs []chatTopLogprob `json:"top_logprobs"`
}

type chatTopLogprob struct {
	Token   string    `json:"token"`
	Logprob jsonFloat `json:"logprob"`
	Bytes   []int     `json:"bytes"`
}

type chatResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
	// nullUsage writes "usage": null when Usage is nil: a stream whose
	// client asked for usage has the field in every chunk, null but in
	// the last.
	nullUsage bool
}

func (r chatResponse) MarshalJSON() ([]byte, error) {
	type plain chatResponse
	if r.Usage != nil || !r.nullUsage {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		Usage *usage `json:"usage"`
	}{plain: plain(r)})
}

var validRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true}

func (s *Server) handleChat(c *gin.Context) {
	var req chatRequest
	if err := bindJSON(c, &req); err != nil {
		abortErr(c, err)
		return
	}
	maxTokens, maxField := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		maxTokens, maxField = req.MaxCompletionTokens, "max_completion_tokens"
	}
	n, err := checkCommon(req.N, req.Stop, maxField, maxTokens)
	if err != nil {
		abortErr(c, err)
		return
	}
	if err := req.checkUnsupported(); err != nil {
		abortErr(c, err)
		return
	}
	tools, err := parseTools(req.Tools, req.ToolChoice, req.ParallelToolCalls)
	if err != nil {
		abortErr(c, err)
		return
	}
	jsonMode, err := req.jsonMode()
	if err != nil {
		abortErr(c, err)
		return
	}
	if len(req.Messages) == 0 {
		abortErr(c, errInvalid("messages", "messages must hold at least one message"))
		return
	}
	for i, m := range req.Messages {
		if !validRoles[m.Role] {
			abortErr(c, errInvalid("messages", "messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role))
			return
		}
		if _, err := m.Content.String(); err != nil {
			abortErr(c, errInvalid("messages", "messages[%d].content: %v", i, err))
			return
		}
	}
	topN := -1
	if req.Logprobs {
		topN = 0
		if req.TopLogprobs != nil {
			topN = *req.TopLogprobs
		}
	} else if req.TopLogprobs != nil {
		abortErr(c, errInvalid("top_logprobs", "top_logprobs needs logprobs set to true"))
		return
	}
	if topN < -1 || topN > maxTopLogprobs {
		abortErr(c, errInvalid("top_logprobs", "top_logprobs %d is outside [0, %d]", topN, maxTopLogprobs))
		return
	}

	ctx := c.Request.Context()
	lm, err := s.acquireModel(ctx, req.Model)
	if err != nil {
		abortErr(c, err)
		return
	}
	defer s.models.release(lm)
	sp, err := req.samplingFields.samplingParams(lm.eng.Info().VocabSize)
	if err != nil {
		abortErr(c, err)
		return
	}
	var toolDefs []any
	if tools != nil {
		toolDefs = tools.defs
	}
	text, err := lm.eng.RenderChat(ctx, req.Messages, toolDefs)
	if err != nil {
		abortErr(c, renderError(ctx, err))
		return
	}
	prompt, err := tokenizePrompt(lm.eng, "messages", text, true)
	if err != nil {
		abortErr(c, err)
		return
	}
	budget := lm.sched.ctxLen - len(prompt)
	if maxTokens != nil {
		if *maxTokens > lm.sched.ctxLen-len(prompt) { // not len+max: max_tokens may be near MaxInt
			abortErr(c, contextError(lm.sched.ctxLen, len(prompt), *maxTokens))
			return
		}
		budget = *maxTokens
	} else if budget < 1 {
		abortErr(c, contextError(lm.sched.ctxLen, len(prompt), 1))
		return
	}

	stops := append(append([]string(nil), req.Stop...), lm.eng.ChatStops()...)
	id, created := newID("chatcmpl-"), time.Now().Unix()
	var sse *sseWriter
	if req.Stream {
		sse = &sseWriter{c: c}
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	chunk := func(ch chatChoice) error {
		return sse.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			SystemFingerprint: systemFingerprint, Choices: []chatChoice{ch}, nullUsage: includeUsage})
	}
	resp := chatResponse{ID: id, Object: "chat.completion", Created: created, Model: req.Model, SystemFingerprint: systemFingerprint}
	var u usage
	for k := range n {
		gp := genParams{prompt: prompt, maxTokens: budget, sampling: withSeed(sp, k), stop: stops, topN: topN, json: jsonMode}
		if sse != nil {
			// The first chunk goes out once the request holds a slot, so
			// that a full queue is still answered 429 with Retry-After.
			gp.onPrompt = func([]tokenInfo) error {
				empty := ""
				return chunk(chatChoice{Index: k, Delta: &chatOut{Role: "assistant", Content: &empty}})
			}
			if tools == nil {
				gp.onDelta = func(text string, toks []tokenInfo) error {
					ch := chatChoice{Index: k, Delta: &chatOut{Content: &text}}
					if topN >= 0 {
						ch.Logprobs = chatLogprobsOf(lm.eng, toks)
					}
					return chunk(ch)
				}
			}
			// With tools the answer is held until it is complete: only
			// then can it be told apart from a tool call.
		}
		out := s.generateChoice(ctx, c, sse, lm, req.Model, gp, &u)
		if out == nil {
			return
		}
		finish, content := out.Finish, &out.Text
		var calls []toolCall
		if tools != nil {
			var rest string
			rest, calls = parseToolCalls(out.Text, tools.names)
			if len(calls) > 0 {
				if !tools.parallel {
					calls = calls[:1]
				}
				finish, content = "tool_calls", nil
				if rest != "" {
					content = &rest
				}
			}
		}
		var lp *chatLogprobs // of the whole answer, unless streamed with the deltas
		if topN >= 0 && (sse == nil || tools != nil) {
			lp = chatLogprobsOf(lm.eng, out.Tokens)
		}
		if sse != nil {
			if tools != nil {
				delta := chatChoice{Index: k, Delta: &chatOut{Content: content, ToolCalls: toolCallsOut(calls, true)}, Logprobs: lp}
				if (content != nil && *content != "") || len(calls) > 0 {
					if err := chunk(delta); err != nil {
						return
					}
				}
			}
			if err := chunk(chatChoice{Index: k, Delta: &chatOut{}, FinishReason: &finish}); err != nil {
				return
			}
			continue
		}
		ch := chatChoice{Index: k, FinishReason: &finish, Logprobs: lp,
			Message: &chatMessageOut{Role: "assistant", Content: content}}
		if len(calls) > 0 {
			ch.Message.ToolCalls = toolCallsOut(calls, false)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	if sse != nil {
		if includeUsage {
			if err := sse.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
				SystemFingerprint: systemFingerprint, Choices: []chatChoice{}, Usage: &u}); err != nil {
				return
			}
		}
		_ = sse.done()
		return
	}
	resp.Usage = &u
	c.JSON(http.StatusOK, resp)
}

// renderError classifies a chat template failure. The template's own
// raise_exception, and a render that hits the time or size limit (which
// grow with the conversation), are the request's fault: 400. A client
// that left gets its cancellation; an engine panic stays a server error.
func renderError(ctx context.Context, err error) error {
	var te *chat.Error
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case !errors.As(err, &te):
		return err
	case te.Raised:
		return errInvalid("messages", "%s", te.Msg)
	case errors.Is(err, context.DeadlineExceeded):
		return errInvalid("messages", "rendering the conversation with the chat template took too long: %s", te.Msg)
	case strings.HasPrefix(te.Msg, "engine panic"):
		return err
	}
	return errInvalid("messages", "the chat template cannot render these messages: %s", te.Msg)
}

func chatLogprobsOf(eng Engine, toks []tokenInfo) *chatLogprobs {
	lp := &chatLogprobs{Content: make([]chatTokenLogprob, 0, len(toks))}
	for _, t := range toks {
		b := eng.TokenBytes(t.ID)
		e := chatTokenLogprob{Token: string(b), Logprob: jsonFloat(t.Logprob), Bytes: byteInts(b),
			TopLogprobs: topList(eng, t.Top)}
		lp.Content = append(lp.Content, e)
	}
	return lp
}

func topList(eng Engine, top []sample.Candidate) []chatTopLogprob {
	out := make([]chatTopLogprob, 0, len(top))
	for _, c := range top {
		b := eng.TokenBytes(c.ID)
		out = append(out, chatTopLogprob{Token: string(b), Logprob: jsonFloat(c.Score), Bytes: byteInts(b)})
	}
	return out
}

func byteInts(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}
