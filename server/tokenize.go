package server

import (
	"context"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// /tokenize and /detokenize follow llama-server's shapes, with a model
// field to pick the model (optional when only one is available).

type tokenizeRequest struct {
	Model      string `json:"model"`
	Content    string `json:"content"`
	AddSpecial bool   `json:"add_special"`
	WithPieces bool   `json:"with_pieces"`
}

type tokenPiece struct {
	ID    int32 `json:"id"`
	Piece any   `json:"piece"` // string, or the bytes when not valid UTF-8
}

type detokenizeRequest struct {
	Model  string  `json:"model"`
	Tokens []int32 `json:"tokens"`
}

// acquireDefault loads the model of a llama-server style request, whose
// clients do not send one: the only model, when there is only one.
func (s *Server) acquireDefault(ctx context.Context, id string) (*loadedModel, error) {
	if id == "" {
		if len(s.models.ids) != 1 {
			return nil, errInvalid("model", "the model field is required when several models are available")
		}
		id = s.models.ids[0]
	}
	return s.acquireModel(ctx, id)
}

func (s *Server) handleTokenize(c *gin.Context) {
	var req tokenizeRequest
	if err := bindJSON(c, &req); err != nil {
		abortErr(c, err)
		return
	}
	lm, err := s.acquireDefault(c.Request.Context(), req.Model)
	if err != nil {
		abortErr(c, err)
		return
	}
	defer s.models.release(lm)
	ids, err := lm.eng.Tokenize(req.Content, req.AddSpecial)
	if err != nil {
		abortErr(c, errInvalid("content", "tokenize: %v", err))
		return
	}
	if !req.WithPieces {
		if ids == nil {
			ids = []int32{}
		}
		c.JSON(http.StatusOK, gin.H{"tokens": ids})
		return
	}
	out := make([]tokenPiece, len(ids))
	for i, t := range ids {
		b := lm.eng.TokenBytes(t)
		out[i] = tokenPiece{ID: t, Piece: string(b)}
		if !utf8.Valid(b) {
			out[i].Piece = byteInts(b)
		}
	}
	c.JSON(http.StatusOK, gin.H{"tokens": out})
}

func (s *Server) handleDetokenize(c *gin.Context) {
	var req detokenizeRequest
	if err := bindJSON(c, &req); err != nil {
		abortErr(c, err)
		return
	}
	lm, err := s.acquireDefault(c.Request.Context(), req.Model)
	if err != nil {
		abortErr(c, err)
		return
	}
	defer s.models.release(lm)
	vocab := lm.eng.Info().VocabSize
	for _, t := range req.Tokens {
		if t < 0 || int(t) >= vocab {
			abortErr(c, errInvalid("tokens", "token id %d is outside the vocabulary of %d", t, vocab))
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"content": lm.eng.Detokenize(req.Tokens)})
}
