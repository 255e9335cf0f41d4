package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestOpenClawNodeClient runs OpenClaw's own Node client, openclaw-node
// 0.14.0 (testdata/openclaw-client.mjs), against a real gateway with a
// token at /openclaw: a wrong token refused, connect with the token and a
// signed device (the client always signs, payload v2), health, streaming
// chat and chatSync (the agent method), sessions.list, chat.history,
// chat.send and an abort mid-reply. It checks what the client printed, the
// transcripts on disk and that GET /api/sessions lists the sessions.
func TestOpenClawNodeClient(t *testing.T) {
	t.Parallel()
	in := testutil.NeedInterop(t)
	g, data := interopGateway(t, `[{"text":"Hello from miniclaw."},{"text":"Once more."},{"text":"Sent and answered."},`+
		`{"text":"one two three four five six seven eight nine ten","chunkDelayMs":150}]`)

	steps := runClient(t, in, "openclaw-client.mjs", map[string]string{
		"OPENCLAW_NODE": filepath.Join(in.Modules, "openclaw-node", "dist", "index.mjs"),
		"URL":           "ws://" + g.addr + "/openclaw",
		"TOKEN":         "interop-key",
		"ID_PATH":       filepath.Join(t.TempDir(), "device-identity.json"),
	})
	steps.want(t, "wrongtoken", map[string]any{"connected": false})
	steps.want(t, "hello", map[string]any{"protocol": 4.0, "chat": true, "agent": true})
	steps.want(t, "health", map[string]any{"ok": true})
	steps.want(t, "chat", map[string]any{"text": "Hello from miniclaw."})
	steps.want(t, "chatsync", map[string]any{"text": "Once more."})
	steps.want(t, "sessions", map[string]any{"keys": []any{"agent:main:main"}})
	steps.want(t, "history", map[string]any{
		"roles": []any{"user", "assistant", "user", "assistant"},
		"texts": []any{"hello from node", "Hello from miniclaw.", "and again", "Once more."},
	})
	steps.want(t, "send", map[string]any{"status": "started", "hasRunId": true})
	steps.want(t, "abort", map[string]any{"aborted": true})
	if chunks, _ := steps["chat"]["chunks"].([]any); len(chunks) < 2 || chunks[0] != "[agent_start]" {
		t.Errorf("chat: chunks %v, want agent_start then streamed text", chunks)
	}
	if first, _ := steps["abort"]["first"].(string); first == "" || !strings.HasPrefix("one two three four five six seven eight nine ten", first) {
		t.Errorf("abort: first chunk %q", first)
	}
	states, _ := steps["abort"]["states"].([]any)
	if !reflect.DeepEqual(states, []any{"agent:main:main:final", "agent:main:slow:aborted"}) {
		t.Errorf("chat end states seen by the client: %v", states)
	}

	wantLines(t, filepath.Join(data, "sessions", "main.jsonl"),
		"user", "hello from node", "assistant", "Hello from miniclaw.", "user", "and again", "assistant", "Once more.",
		"user", "sent via chat.send", "assistant", "Sent and answered.")
	slow, err := readTranscript(filepath.Join(data, "sessions", "slow.jsonl"))
	if err != nil || len(slow.msgs) == 0 || slow.msgs[0].Content != "go slowly" {
		t.Errorf("slow.jsonl: %+v, %v", slow.msgs, err)
	}

	req, _ := http.NewRequest("GET", g.url("/api/sessions"), nil)
	req.Header.Set("Authorization", "Bearer interop-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Sessions []struct {
			SessionID string `json:"sessionId"`
			Channel   string `json:"channel"`
		} `json:"sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, s := range list.Sessions {
		ids[s.SessionID] = s.Channel
	}
	if ids["main"] != "openclaw" || ids["slow"] != "openclaw" {
		t.Errorf("GET /api/sessions: %+v, want main and slow on channel openclaw", list.Sessions)
	}
}
