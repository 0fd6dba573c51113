package chat

import (
	"fmt"
	"strings"
)

// renderChatML formats a conversation as ChatML, the format llama.cpp uses
// when a model has no template of its own:
//
//	<|im_start|>user
//	Hello<|im_end|>
//	<|im_start|>assistant
//
// Tool calls and tools are not part of ChatML; an assistant turn that only
// calls tools is written with its calls as JSON, so the history stays
// readable to the model.
func renderChatML(req Request) (string, error) {
	var sb strings.Builder
	for i := range req.Messages {
		m := &req.Messages[i]
		text, err := m.Content.String()
		if err != nil {
			return "", fmt.Errorf("message %d: %w", i, err)
		}
		if text == "" && len(m.ToolCalls) > 0 {
			calls, err := m.value(false)
			if err != nil {
				return "", fmt.Errorf("message %d: %w", i, err)
			}
			tc, _ := calls.AsDict().Get("tool_calls")
			text, err = toJSON(tc, pythonJSON)
			if err != nil {
				return "", fmt.Errorf("message %d: %w", i, err)
			}
		}
		sb.WriteString("<|im_start|>")
		sb.WriteString(m.Role)
		sb.WriteByte('\n')
		sb.WriteString(text)
		sb.WriteString("<|im_end|>\n")
	}
	if req.AddGenerationPrompt {
		sb.WriteString("<|im_start|>assistant\n")
	}
	return sb.String(), nil
}
