package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/foretoken/foretoken/inference/chat"
	"github.com/foretoken/foretoken/inference/sample"
)

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatOut      `json:"message,omitempty"`
	Delta        *chatOut      `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatOut struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
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
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
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
	text, err := lm.eng.RenderChat(ctx, req.Messages)
	if err != nil {
		var te *chat.Error
		if errors.As(err, &te) && te.Raised {
			abortErr(c, errInvalid("messages", "%s", te.Msg))
		} else {
			abortErr(c, err)
		}
		return
	}
	prompt, err := lm.eng.Tokenize(text, true)
	if err != nil {
		abortErr(c, errInvalid("messages", "tokenize: %v", err))
		return
	}
	if len(prompt) >= 2 && prompt[0] == prompt[1] && lm.eng.IsSpecial(prompt[0]) {
		// The template wrote BOS itself and the tokenizer added another.
		prompt = prompt[1:]
	}
	budget := lm.sched.ctxLen - len(prompt)
	if maxTokens != nil {
		if len(prompt)+*maxTokens > lm.sched.ctxLen {
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
	chunk := func(ch chatChoice) error {
		return sse.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model, Choices: []chatChoice{ch}})
	}
	resp := chatResponse{ID: id, Object: "chat.completion", Created: created, Model: req.Model}
	var u usage
	for k := range n {
		gp := genParams{prompt: prompt, maxTokens: budget, sampling: withSeed(sp, k), stop: stops, topN: topN}
		if sse != nil {
			empty := ""
			if err := chunk(chatChoice{Index: k, Delta: &chatOut{Role: "assistant", Content: &empty}}); err != nil {
				return
			}
			gp.onDelta = func(text string, toks []tokenInfo) error {
				ch := chatChoice{Index: k, Delta: &chatOut{Content: &text}}
				if topN >= 0 {
					ch.Logprobs = chatLogprobsOf(lm.eng, toks)
				}
				return chunk(ch)
			}
		}
		start := time.Now()
		out, err := generate(ctx, lm, gp)
		if err != nil {
			if sse != nil {
				sse.fail(err)
			} else {
				abortErr(c, err)
			}
			return
		}
		s.observe(req.Model, len(prompt), out, time.Since(start))
		u.add(len(prompt), out)
		finish := out.Finish
		if sse != nil {
			if err := chunk(chatChoice{Index: k, Delta: &chatOut{}, FinishReason: &finish}); err != nil {
				return
			}
			continue
		}
		ch := chatChoice{Index: k, Message: &chatOut{Role: "assistant", Content: &out.Text}, FinishReason: &finish}
		if topN >= 0 {
			ch.Logprobs = chatLogprobsOf(lm.eng, out.Tokens)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	if sse != nil {
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			if err := sse.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
				Choices: []chatChoice{}, Usage: &u}); err != nil {
				return
			}
		}
		_ = sse.done()
		return
	}
	resp.Usage = &u
	c.JSON(http.StatusOK, resp)
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
