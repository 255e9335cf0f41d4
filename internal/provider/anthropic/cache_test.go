package anthropic

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/memory"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
	"github.com/miniclaw/miniclaw/internal/tools"
)

const volatile = "<miniclaw-context>\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n</miniclaw-context>"

// The request carries cache_control breakpoints on the last tool, the end
// of the system prompt, the last message and the message the previous
// round ended with: four, the API's limit. The volatile part comes after
// the last breakpoint, as the last text of the last user message.
func TestCacheBreakpoints(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	req := pt.ToolConversation("claude-sonnet-4-20250514", "toolu_", "")
	req.Volatile = volatile
	pt.MustComplete(t, newProvider(api, 1), req)
	body := api.Only(t).Body
	f := pt.JSONFields(t, body)
	pt.JSONEqual(t, "system", f["system"], `[{"type":"text","text":"You are miniclaw.\n\n## Runtime Information\ncwd: /tmp","cache_control":{"type":"ephemeral"}}]`)
	var tools []map[string]json.RawMessage
	if err := json.Unmarshal(f["tools"], &tools); err != nil || len(tools) != 2 {
		t.Fatalf("tools %s: %v", f["tools"], err)
	}
	if _, ok := tools[0]["cache_control"]; ok {
		t.Errorf("tool 0 has a breakpoint: %s", f["tools"])
	}
	pt.JSONEqual(t, "last tool's cache_control", tools[1]["cache_control"], `{"type":"ephemeral"}`)
	validMessages(t, f["messages"])
	pt.JSONEqual(t, "messages", f["messages"], wireToolConversation+`,
		{"role":"user","content":[
			{"type":"text","text":"Shorter?","cache_control":{"type":"ephemeral"}},
			{"type":"text","text":"<miniclaw-context>\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n</miniclaw-context>"}
		]}
	]`)
	if n := strings.Count(string(body), `"cache_control"`); n != 4 {
		t.Errorf("%d breakpoints, the API allows at most 4", n)
	}
}

// Usage counts what the stream reports, cache reads and writes apart.
func TestCacheUsage(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "cached.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		Relayed:    []string{"It is a gateway."},
		StopReason: "end_turn",
		Usage:      core.Usage{InputTokens: 7, OutputTokens: 9, CacheReadTokens: 40211, CacheWriteTokens: 1843},
	})
}

// stubSkills is a skills index that never changes.
type stubSkills struct{ *memory.Store }

func (stubSkills) SkillsSection() string {
	return "<available_skills>\n<skill>\n<name>pdf</name>\n<description>Read PDF forms.</description>\n<location>.openclaw/skills/pdf/SKILL.md</location>\n</skill>\n</available_skills>"
}

// A session's requests share a byte-identical prefix up to each previous
// request's last breakpoint: tools and system prompt unchanged, even when
// the clock moves on and the memory files and daily log change between
// turns, and the conversation extended only after the point the previous
// request cached. Turn 1 makes a tool call (two requests); turn 2 answers.
func TestCachePrefixStableAcrossTurns(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "tool_use.sse"), sse(t, "text.sse"), sse(t, "text.sse"))
	ws := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".openclaw/SOUL.md", "You are Claw.")
	root, err := tools.OpenWorkspace(ws)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	var now time.Time
	mem := &memory.Store{Workspace: ws, Dir: filepath.Join(ws, ".mini-openclaw", "memory"), Now: func() time.Time { return now }}
	rt := &agent.Runtime{
		Provider: newProvider(api, 1), Model: "claude-sonnet-4-20250514", Workspace: ws,
		Tools: tools.NewSet(append(root.FileTools(), mem.Tools()...)...), Knowledge: stubSkills{mem},
		Now: func() time.Time { return now },
	}
	turn := func(at time.Time, memoryLine, logLine string, history []core.Message) []core.Message {
		now = at
		write("MEMORY.md", memoryLine)
		write(".mini-openclaw/memory/daily-logs/"+at.Format(time.DateOnly)+".md", logLine)
		res, err := rt.Run(context.Background(), "cache", history, agent.Events{})
		if err != nil {
			t.Fatal(err)
		}
		return append(history, res.Messages...)
	}
	t1 := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	history := turn(t1, "- likes tea\n", "- [15:00:00] asked \"hello\"\n", []core.Message{{Role: core.RoleUser, Content: "What's the weather?"}})
	history = append(history, core.Message{Role: core.RoleUser, Content: "And tomorrow?"})
	turn(t1.Add(26*time.Hour), "- likes coffee now\n", "- [17:09:00] asked \"read big.txt\"\n", history)

	reqs := api.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var prev map[string]json.RawMessage
	for i, r := range reqs {
		f := pt.JSONFields(t, r.Body)
		validMessages(t, f["messages"])
		msgs := wireMessages(t, f["messages"])
		last := msgs[len(msgs)-1].Content
		if got := blockText(t, last[len(last)-1]); !strings.HasPrefix(got, "<miniclaw-context>") {
			t.Fatalf("request %d does not end with the volatile part: %q", i, got)
		}
		if i > 0 {
			for _, k := range []string{"system", "tools"} {
				if string(f[k]) != string(prev[k]) {
					t.Errorf("request %d: %s differs from the previous request's:\n%s\n%s", i, k, f[k], prev[k])
				}
			}
			// What the previous request cached (its messages without the
			// volatile part) is a prefix of this one, and the breakpoint
			// that reads it sits where the previous one wrote it.
			cached := wireMessages(t, prev["messages"])
			end := len(cached) - 1
			cached[end].Content = cached[end].Content[:len(cached[end].Content)-1]
			if len(msgs) <= end || canonical(t, msgs[:end+1]) != canonical(t, cached) {
				t.Errorf("request %d does not extend the previous request's conversation:\n%s\n%s", i, f["messages"], prev["messages"])
			} else if blocks := msgs[end].Content; !hasBreakpoint(t, blocks[len(blocks)-1]) {
				t.Errorf("request %d: no breakpoint where the previous request's cache ends (message %d)", i, end)
			}
		}
		prev = f
	}
	if s := string(reqs[2].Body); !strings.Contains(s, "2025-03-15 17:09:26") || !strings.Contains(s, "likes coffee now") || !strings.Contains(s, "read big.txt") {
		t.Errorf("turn 2 lacks its time or memory: %s", s)
	}
}

type rawMessage struct {
	Role    string            `json:"role"`
	Content []json.RawMessage `json:"content"`
}

func wireMessages(t *testing.T, raw json.RawMessage) []rawMessage {
	t.Helper()
	var msgs []rawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func block(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func blockText(t *testing.T, raw json.RawMessage) string {
	s, _ := block(t, raw)["text"].(string)
	return s
}

func hasBreakpoint(t *testing.T, raw json.RawMessage) bool {
	_, ok := block(t, raw)["cache_control"]
	return ok
}

// canonical is messages as JSON without their breakpoints, which mark
// where a cache is written or read but are not part of the cached prefix.
func canonical(t *testing.T, msgs []rawMessage) string {
	t.Helper()
	var out []any
	for _, m := range msgs {
		var blocks []any
		for _, raw := range m.Content {
			b := block(t, raw)
			delete(b, "cache_control")
			blocks = append(blocks, b)
		}
		out = append(out, map[string]any{"role": m.Role, "content": blocks})
	}
	s, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}
