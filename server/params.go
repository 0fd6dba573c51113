package server

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/foretoken/foretoken/inference/sample"
)

const (
	maxTopLogprobs = 20
	maxN           = 16
	maxStops       = 4
	// maxInputs bounds the prompts of a completion and the inputs of an
	// embeddings request, as OpenAI does: a body within the size limit
	// must not be able to queue a million generations.
	maxInputs = 2048
)

// samplingParams checks the sampling options and turns them into
// sample.Params. OpenAI's defaults apply: temperature 1, no penalties.
func (f *samplingFields) samplingParams(vocab int) (sample.Params, error) {
	p := sample.Params{Temperature: 1, RepeatLastN: 64}
	if v := f.Temperature; v != nil {
		if *v < 0 || *v > 2 || math.IsNaN(*v) {
			return p, errInvalid("temperature", "temperature %g is outside [0, 2]", *v)
		}
		p.Temperature = float32(*v)
	}
	if v := f.TopP; v != nil {
		if *v < 0 || *v > 1 || math.IsNaN(*v) {
			return p, errInvalid("top_p", "top_p %g is outside [0, 1]", *v)
		}
		p.TopP = float32(*v)
	}
	if v := f.TopK; v != nil {
		if *v < 0 {
			return p, errInvalid("top_k", "top_k %d is negative", *v)
		}
		p.TopK = *v
	}
	if v := f.MinP; v != nil {
		if *v < 0 || *v > 1 || math.IsNaN(*v) {
			return p, errInvalid("min_p", "min_p %g is outside [0, 1]", *v)
		}
		p.MinP = float32(*v)
	}
	if v := f.RepeatPenalty; v != nil {
		if *v < 0 || *v > 10 || math.IsNaN(*v) {
			return p, errInvalid("repeat_penalty", "repeat_penalty %g is outside [0, 10]", *v)
		}
		p.RepeatPenalty = float32(*v)
	}
	if v := f.PresencePenalty; v != nil {
		if *v < -2 || *v > 2 || math.IsNaN(*v) {
			return p, errInvalid("presence_penalty", "presence_penalty %g is outside [-2, 2]", *v)
		}
		p.PresencePenalty = float32(*v)
	}
	if v := f.FrequencyPenalty; v != nil {
		if *v < -2 || *v > 2 || math.IsNaN(*v) {
			return p, errInvalid("frequency_penalty", "frequency_penalty %g is outside [-2, 2]", *v)
		}
		p.FrequencyPenalty = float32(*v)
	}
	if len(f.LogitBias) > 0 {
		p.LogitBias = make(map[int32]float32, len(f.LogitBias))
		for k, b := range f.LogitBias {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 || id >= vocab {
				return p, errInvalid("logit_bias", "logit_bias key %q is not a token id in [0, %d)", k, vocab)
			}
			if b < -100 || b > 100 || math.IsNaN(b) {
				return p, errInvalid("logit_bias", "logit_bias value %g for token %d is outside [-100, 100]", b, id)
			}
			p.LogitBias[int32(id)] = float32(b)
		}
	}
	if f.Seed != nil {
		p.Seed = uint64(*f.Seed)
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		p.Seed = binary.LittleEndian.Uint64(b[:])
	}
	if err := p.Validate(); err != nil {
		return p, errInvalid("", "%v", err)
	}
	return p, nil
}

// checkCommon validates the options completions and chat share.
func checkCommon(n *int, stop stopList, maxTokensField string, maxTokens *int) (int, error) {
	nn := 1
	if n != nil {
		if *n < 1 || *n > maxN {
			return 0, errInvalid("n", "n %d is outside [1, %d]", *n, maxN)
		}
		nn = *n
	}
	if len(stop) > maxStops {
		return 0, errInvalid("stop", "at most %d stop strings are allowed, got %d", maxStops, len(stop))
	}
	if maxTokens != nil && *maxTokens < 0 {
		return 0, errInvalid(maxTokensField, "%s %d is negative", maxTokensField, *maxTokens)
	}
	return nn, nil
}

// withSeed offsets the seed of choice i so that n choices differ but stay
// reproducible.
func withSeed(p sample.Params, i int) sample.Params {
	p.Seed += uint64(i)
	return p
}
