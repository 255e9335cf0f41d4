package providertest

import (
	"encoding/json"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
)

// SimpleRequest is a small request for model: a system prompt and one user
// message.
func SimpleRequest(model string) core.Request {
	return core.Request{
		Model:    model,
		System:   "You are a test.",
		Messages: []core.Message{{Role: core.RoleUser, Content: "Hi"}},
	}
}

// ToolConversation is a request that walks the whole wire format: a system
// prompt, two tools (one without parameters), and a history in which the
// assistant answered with text and three tool calls (the second failed),
// then two more turns. The calls' IDs are idPrefix followed by 1, 2 and 3;
// the third call (memory_list, no input) returned thirdOutput.
func ToolConversation(model, idPrefix, thirdOutput string) core.Request {
	return core.Request{
		Model:  model,
		System: "You are miniclaw.\n\n## Runtime Information\ncwd: /tmp",
		Tools: []core.ToolSpec{
			{
				Name:        "read_file",
				Description: "Read a file from the workspace.",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","description":"File path"}},"required":["path"]}`),
			},
			{
				Name:        "memory_list",
				Description: "List memory files.",
				InputSchema: json.RawMessage(`{"type":"object","properties":{}}`),
			},
		},
		Messages: []core.Message{
			{Role: core.RoleUser, Content: "What's in the README?", Timestamp: 1},
			{Role: core.RoleAssistant, Content: "Let me look.", Timestamp: 2, ToolCalls: []core.ToolCallRecord{
				{ID: idPrefix + "1", Name: "read_file", Input: json.RawMessage(`{"path":"README.md"}`), Output: "# miniclaw"},
				{ID: idPrefix + "2", Name: "bash", Input: json.RawMessage(`{"command":"false"}`), Output: "exit status 1", IsError: true},
				{ID: idPrefix + "3", Name: "memory_list", Output: thirdOutput},
			}},
			{Role: core.RoleUser, Content: "Thanks. Summarise it.", Timestamp: 3},
			{Role: core.RoleAssistant, Content: "It is a gateway.", Timestamp: 4},
			{Role: core.RoleUser, Content: "Shorter?", Timestamp: 5},
		},
	}
}

// BlankTexts is a request whose history holds blank texts, as transcripts
// do: a reply of "\n\n", an abort right after one, an empty failed reply,
// an assistant message with blank text before its tool call (whose output
// is blank too), and a blank user message. A provider must send none of
// them as text, and keep everything else: the user texts "Hi", "Are you
// there?", "Hello?", "Read empty.txt" and "Thanks", the call (ID
// idPrefix+"1", read_file of empty.txt) with its result, and the reply "It
// is blank.".
func BlankTexts(model, idPrefix string) core.Request {
	read := core.ToolCallRecord{ID: idPrefix + "1", Name: "read_file", Input: json.RawMessage(`{"path":"empty.txt"}`), Output: "\n \n"}
	req := SimpleRequest(model)
	req.Messages = []core.Message{
		{Role: core.RoleUser, Content: "Hi"},
		{Role: core.RoleAssistant, Content: "\n\n"},
		{Role: core.RoleUser, Content: "Are you there?"},
		{Role: core.RoleAssistant, Content: "\n\n", Status: core.StatusAborted, Error: "turn aborted by the user"},
		{Role: core.RoleUser, Content: "Hello?"},
		{Role: core.RoleAssistant, Content: "", Status: core.StatusError, Error: "boom"},
		{Role: core.RoleUser, Content: "Read empty.txt"},
		{Role: core.RoleAssistant, Content: " \t\n", ToolCalls: []core.ToolCallRecord{read}},
		{Role: core.RoleAssistant, Content: "It is blank."},
		{Role: core.RoleUser, Content: " \n"},
		{Role: core.RoleUser, Content: "Thanks"},
	}
	return req
}

// HTTPError is an API error answer, and what the provider's error for it
// must say so that the user knows what to do.
type HTTPError struct {
	Name    string   // of the subtest
	Status  int      // HTTP status
	Fixture string   // JSON error body in testdata
	Want    []string // each must be in the error's message
}

// RunHTTPErrors runs a subtest per case: the fake API answers with the
// error (and with then, should the provider ask again); the provider that
// provider makes for it, sending req, must fail with an error that says
// each of the case's Want, after exactly one request (a 4xx is not
// retried) and with no text relayed.
func RunHTTPErrors(t *testing.T, provider func(*FakeAPI) core.Provider, req core.Request, then Reply, cases []HTTPError) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			api := NewFakeAPI(t, APIError(t, tc.Status, tc.Fixture), then)
			r := Complete(t, provider(api), req)
			WantErr(t, r.Err, tc.Want...)
			api.WantRequests(t, 1)
			if len(r.Relayed) != 0 {
				t.Errorf("text relayed: %q", r.Relayed)
			}
		})
	}
}
