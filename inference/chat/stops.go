package chat

import "strings"

// StopStrings returns the end-of-turn markers the template writes, which
// a server adds to a request's stop strings: a model that writes one has
// finished its reply even when its vocabulary has no special token for the
// marker (then the tokenizer's end-of-generation set cannot catch it; the
// synthetic qwen2 models in the test data are such a case). The model's
// own end-of-sequence token is the tokenizer's business.
func (t *Template) StopStrings() []string {
	if t.tmpl == nil {
		return []string{"<|im_end|>"}
	}
	endOfTurnMarkers := [...]string{
		"<|im_end|>",            // ChatML: Qwen, Hermes, and the fallback
		"<|eot_id|>",            // Llama 3
		"<|eom_id|>",            // Llama 3.1 after a tool call
		"<|end|>",               // Phi-3
		"<end_of_turn>",         // Gemma
		"<|END_OF_TURN_TOKEN|>", // Command-R
		"<｜end▁of▁sentence｜>",   // DeepSeek R1
		"<|endoftext|>",
	}
	var stops []string
	for _, m := range endOfTurnMarkers {
		if strings.Contains(t.src, m) {
			stops = append(stops, m)
		}
	}
	return stops
}
