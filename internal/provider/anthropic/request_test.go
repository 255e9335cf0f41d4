package anthropic

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

// wireBlock is a content block of a request message, the fields the
// validity check reads.
type wireBlock struct {
	Type      string      `json:"type"`
	Text      *string     `json:"text"`
	ID        string      `json:"id"`
	ToolUseID string      `json:"tool_use_id"`
	Content   []wireBlock `json:"content"`
}

type wireMessage struct {
	Role    string      `json:"role"`
	Content []wireBlock `json:"content"`
}

// validMessages checks the messages of a request body against what the
// Messages API refuses with a 400: a conversation that does not start with
// a user message or does not alternate roles, a message without content, a
// text block (also one inside a tool_result) without non-whitespace text,
// and a tool_use not answered by a tool_result at the start of the next
// message (or a tool_result answering nothing).
func validMessages(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var msgs []wireMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatalf("messages: %v in %s", err, raw)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("invalid request (the API answers 400): %s\nmessages: %s", fmt.Sprintf(format, args...), raw)
	}
	if len(msgs) == 0 || msgs[0].Role != "user" || msgs[len(msgs)-1].Role != "user" {
		fail("the conversation must start and end with a user message")
	}
	var open map[string]bool // tool_use IDs of the previous message, unanswered
	for i, m := range msgs {
		if i > 0 && m.Role == msgs[i-1].Role {
			fail("messages %d and %d are both %s messages", i-1, i, m.Role)
		}
		if len(m.Content) == 0 {
			fail("message %d (%s) has no content", i, m.Role)
		}
		results := true // still in the leading tool_result blocks
		for j, b := range m.Content {
			if b.Type != "tool_result" {
				results = false
			}
			switch b.Type {
			case "text":
				blankText(fail, i, j, b)
			case "tool_result":
				if !results || !open[b.ToolUseID] {
					fail("message %d block %d: tool_result %s answers no tool_use of the message before, or follows other blocks", i, j, b.ToolUseID)
				}
				delete(open, b.ToolUseID)
				for _, c := range b.Content {
					blankText(fail, i, j, c)
				}
			}
		}
		for id := range open {
			fail("tool_use %s of message %d has no tool_result in message %d", id, i-1, i)
		}
		open = map[string]bool{}
		for _, b := range m.Content {
			if b.Type == "tool_use" {
				open[b.ID] = true
			}
		}
	}
}

func blankText(fail func(string, ...any), i, j int, b wireBlock) {
	if b.Text == nil || strings.TrimSpace(*b.Text) == "" {
		fail("message %d block %d: text block %q must contain non-whitespace text", i, j, *b.Text)
	}
}

// A reply of "\n\n" (or an abort right after one), or an empty one, is not
// sent as a text block: the API refuses whitespace-only text, and a session
// that replays one fails on every later turn.
func TestBlankTextIsNeverSent(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	pt.MustComplete(t, newProvider(api, 1), pt.BlankTexts("claude-sonnet-4-20250514", "toolu_"))
	sent := pt.JSONFields(t, api.Only(t).Body)["messages"]
	validMessages(t, sent)
	// Nothing else is left out: the user's texts, the tool pair and the
	// reply that had text all reach the model.
	pt.JSONEqual(t, "messages", sent, `[
		{"role":"user","content":[
			{"type":"text","text":"Hi"},
			{"type":"text","text":"Are you there?"},
			{"type":"text","text":"Hello?"},
			{"type":"text","text":"Read empty.txt"}
		]},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"read_file","input":{"path":"empty.txt"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","is_error":false,"cache_control":{"type":"ephemeral"}}]},
		{"role":"assistant","content":[{"type":"text","text":"It is blank."}]},
		{"role":"user","content":[{"type":"text","text":"Thanks","cache_control":{"type":"ephemeral"}}]}
	]`)
}
