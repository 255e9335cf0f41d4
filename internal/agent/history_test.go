package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider/anthropic"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
)

// anthropicMessages runs a turn on transcript through the Anthropic
// provider against a fake Messages API, and returns the messages of the
// request body it sent, without what the provider adds for the prompt
// cache (cache_control marks, and the volatile prompt as the last block;
// internal/provider/anthropic's cache tests check those).
func anthropicMessages(t *testing.T, transcript []core.Message) json.RawMessage {
	t.Helper()
	stream, err := os.ReadFile(filepath.Join("..", "provider", "anthropic", "testdata", "text.sse"))
	if err != nil {
		t.Fatal(err)
	}
	api := pt.NewFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(stream)
	})
	rt := &Runtime{
		Provider:  anthropic.New(anthropic.Options{APIKey: "test-key", BaseURL: api.URL(), MaxRetries: -1}),
		Model:     "claude-sonnet-4-20250514",
		Workspace: t.TempDir(),
	}
	if _, err := rt.Run(context.Background(), "s", transcript, Events{}); err != nil {
		t.Fatal(err)
	}
	var msgs []struct {
		Role    string           `json:"role"`
		Content []map[string]any `json:"content"`
	}
	if err := json.Unmarshal(pt.JSONFields(t, api.Only(t).Body)["messages"], &msgs); err != nil {
		t.Fatal(err)
	}
	last := &msgs[len(msgs)-1].Content
	if text, _ := (*last)[len(*last)-1]["text"].(string); !strings.HasPrefix(text, "<"+ContextTag+">") {
		t.Fatalf("the request does not end with the volatile prompt: %q", text)
	}
	*last = (*last)[:len(*last)-1]
	for _, m := range msgs {
		for _, b := range m.Content {
			delete(b, "cache_control")
		}
	}
	out, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A user message with no reply (the gateway crashed during its turn, or the
// reply was blank, failed or aborted before any text) is followed by the
// next user message. The model is told, between the two, that the first
// got no reply and why, on the user's side (one user message, so the roles
// still alternate, and no words put in the assistant's mouth).
func TestUnansweredMessageIsMarked(t *testing.T) {
	r1 := rec("toolu_1", "read_file", `{"path":"a"}`, "x", false)
	for _, tc := range []struct {
		name       string
		transcript []core.Message
		want       string // the request's messages
	}{
		{
			"stranded by a crash",
			[]core.Message{user("first"), user("second")},
			`[{"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"[miniclaw] The previous message got no reply: the gateway stopped before answering it."},{"type":"text","text":"second"}]}]`,
		},
		{
			"two stranded",
			[]core.Message{user("one"), user("two"), user("three")},
			`[{"role":"user","content":[{"type":"text","text":"one"},{"type":"text","text":"[miniclaw] The previous message got no reply: the gateway stopped before answering it."},{"type":"text","text":"two"},{"type":"text","text":"[miniclaw] The previous message got no reply: the gateway stopped before answering it."},{"type":"text","text":"three"}]}]`,
		},
		{
			"a blank reply",
			[]core.Message{user("Hi"), asst("\n\n"), user("Hello?")},
			`[{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"[miniclaw] The previous message got no reply: the reply was empty."},{"type":"text","text":"Hello?"}]}]`,
		},
		{
			"aborted right after a blank start",
			[]core.Message{user("Hi"), {Role: core.RoleAssistant, Content: "\n\n", Status: core.StatusAborted, Error: "turn aborted by the user"}, user("Hello?")},
			`[{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"[miniclaw] The previous message got no reply: the user aborted it."},{"type":"text","text":"Hello?"}]}]`,
		},
		{
			"failed after a tool round",
			[]core.Message{user("Read a"), asst("", r1), {Role: core.RoleAssistant, Status: core.StatusError, Error: "boom"}, user("Well?")},
			`[
				{"role":"user","content":[{"type":"text","text":"Read a"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"read_file","input":{"path":"a"}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"x"}],"is_error":false},
					{"type":"text","text":"[miniclaw] The previous message got no reply: the model call failed."},
					{"type":"text","text":"Well?"}
				]}
			]`,
		},
		{
			"interrupted with text is a reply",
			[]core.Message{user("Hi"), {Role: core.RoleAssistant, Content: "Hel", Status: core.StatusInterrupted}, user("Go on")},
			`[
				{"role":"user","content":[{"type":"text","text":"Hi"}]},
				{"role":"assistant","content":[{"type":"text","text":"Hel"}]},
				{"role":"user","content":[{"type":"text","text":"Go on"}]}
			]`,
		},
		{
			"a blank user message",
			[]core.Message{user("Hi"), asst("Hello."), user(" \n")},
			`[
				{"role":"user","content":[{"type":"text","text":"Hi"}]},
				{"role":"assistant","content":[{"type":"text","text":"Hello."}]},
				{"role":"user","content":[{"type":"text","text":"[miniclaw] The user sent a blank message."}]}
			]`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt.JSONEqual(t, "messages", anthropicMessages(t, tc.transcript), tc.want)
		})
	}
}

// The note is a message of its own: the message that started the turn is
// still the last one, whole, so the echo provider answers exactly it.
func TestNoteKeepsTheLastMessageWhole(t *testing.T) {
	rt := &Runtime{Provider: scripted.Echo(), Model: "test", Workspace: t.TempDir()}
	res, err := rt.Run(context.Background(), "s", []core.Message{user("first"), user("second")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "echo: second" {
		t.Errorf("reply %q, want %q", res.Text, "echo: second")
	}
}
