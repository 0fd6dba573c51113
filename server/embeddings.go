package server

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/foretoken/foretoken/inference/model"
)

type embeddingObject struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32 or a base64 string
}

func (s *Server) handleEmbeddings(c *gin.Context) {
	req := embeddingRequest{Input: promptInput{field: "input"}}
	if err := bindJSON(c, &req); err != nil {
		abortErr(c, err)
		return
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		abortErr(c, errInvalid("encoding_format", "encoding_format %q is not float or base64", req.EncodingFormat))
		return
	}
	for i, text := range req.Input.Texts {
		if text == "" {
			// Only BOS would be left to embed; OpenAI refuses it too.
			abortErr(c, errInvalid("input", "input %d is an empty string", i))
			return
		}
	}
	ctx := c.Request.Context()
	lm, err := s.acquireModel(ctx, req.Model)
	if err != nil {
		abortErr(c, err)
		return
	}
	defer s.models.release(lm)
	info := lm.eng.Info()
	if d := req.Dimensions; d != nil && (*d < 1 || *d > info.EmbeddingDim) {
		abortErr(c, errInvalid("dimensions", "dimensions %d is outside [1, %d]", *d, info.EmbeddingDim))
		return
	}
	pooling := info.Pooling
	switch req.Pooling {
	case "":
	case "mean", "last":
		pooling = req.Pooling
	default:
		abortErr(c, errInvalid("pooling", "pooling %q is not mean or last", req.Pooling))
		return
	}
	inputs, err := promptTokens(lm.eng, req.Input, "input")
	if err != nil {
		abortErr(c, err)
		return
	}
	for i, in := range inputs {
		if len(in) == 0 {
			abortErr(c, errInvalid("input", "input %d is empty", i))
			return
		}
		if len(in) > lm.sched.ctxLen {
			abortErr(c, errInvalid("input", "input %d has %d tokens, more than the context of %d", i, len(in), lm.sched.ctxLen))
			return
		}
	}
	data := make([]embeddingObject, len(inputs))
	total := 0
	for i, in := range inputs {
		vec, err := embed(ctx, lm, in, pooling)
		if err != nil {
			abortErr(c, err)
			return
		}
		if d := req.Dimensions; d != nil && *d < len(vec) {
			vec = vec[:*d]
			normalize(vec)
		}
		data[i] = embeddingObject{Object: "embedding", Index: i, Embedding: vec}
		if req.EncodingFormat == "base64" {
			data[i].Embedding = encodeFloats(vec)
		}
		total += len(in)
	}
	s.metrics.promptTokens.WithLabelValues(req.Model).Add(float64(total))
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": data, "model": req.Model,
		"usage": gin.H{"prompt_tokens": total, "total_tokens": total}})
}

// embed runs tokens through the model on a free slot and pools the final
// hidden states ("last": the last position, else the mean), L2-normalized.
func embed(ctx context.Context, lm *loadedModel, tokens []int32, pooling string) ([]float32, error) {
	sl, err := lm.sched.acquire(ctx, tokens)
	if err != nil {
		return nil, err
	}
	defer lm.sched.release(sl)
	seq := lm.sched.sequence(sl)
	seq.Truncate(0)
	sl.tokens = sl.tokens[:0]
	res, err := seq.Forward(ctx, tokens, Want{Hidden: true})
	if err != nil {
		seq.Truncate(0)
		return nil, fmt.Errorf("embed: %w", err)
	}
	sl.tokens = append(sl.tokens, tokens...)
	pool := model.PoolMean
	if pooling == "last" {
		pool = model.PoolLast
	}
	dim := lm.eng.Info().EmbeddingDim
	return model.Pool(make([]float32, dim), res.Hidden, dim, pool), nil
}

// normalize scales v to unit L2 length (a zero vector stays zero).
func normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(ss))
	for i := range v {
		v[i] *= inv
	}
}

// encodeFloats is OpenAI's base64 form: little-endian float32s.
func encodeFloats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
