package openai

import (
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

const volatile = "<miniclaw-context>\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n</miniclaw-context>"

// The volatile part of the prompt comes after the conversation, so the
// system message and the history form a prefix a server can cache: at the
// end of the last user message, or as a user message after tool results.
func TestVolatileAfterTheConversation(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	p := newProvider(api, 1)
	req := pt.ToolConversation("gpt-4o", "call_", "MEMORY.md")
	req.Volatile = volatile
	pt.MustComplete(t, p, req)
	// A round after tool calls: the conversation ends with their results.
	req.Messages = req.Messages[:2]
	pt.MustComplete(t, p, req)

	reqs := api.Requests()
	pt.JSONEqual(t, "messages", pt.JSONFields(t, reqs[0].Body)["messages"], wireToolConversation+`,
		{"role":"user","content":"Thanks. Summarise it."},
		{"role":"assistant","content":"It is a gateway."},
		{"role":"user","content":"Shorter?\n\n<miniclaw-context>\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n</miniclaw-context>"}
	]`)
	pt.JSONEqual(t, "messages", pt.JSONFields(t, reqs[1].Body)["messages"], wireToolConversation+`,
		{"role":"user","content":"<miniclaw-context>\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n</miniclaw-context>"}
	]`)
}

// prompt_tokens_details.cached_tokens (OpenAI, vLLM) is counted as cache
// reads, apart from the full-price input.
func TestCachedTokensUsage(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "cached.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		Relayed:    []string{"Hello", "! How", " can I", " help you today?"},
		StopReason: "stop",
		Usage:      core.Usage{InputTokens: 86, OutputTokens: 10, CacheReadTokens: 1920},
	})
}
