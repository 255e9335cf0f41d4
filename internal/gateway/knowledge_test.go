package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/memory"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/skills"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// recordingProvider keeps the prompt of every model call: the system prompt
// and the volatile part sent after the conversation.
type recordingProvider struct {
	core.Provider
	mu      sync.Mutex
	systems []string
}

func (p *recordingProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	p.mu.Lock()
	p.systems = append(p.systems, req.System+"\n"+req.Volatile)
	p.mu.Unlock()
	return p.Provider.Complete(ctx, req, onText)
}

func (p *recordingProvider) system(t *testing.T, call int) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if call >= len(p.systems) {
		t.Fatalf("model call %d never happened (%d calls)", call, len(p.systems))
	}
	return p.systems[call]
}

// knowledge joins the two layers, as cmd/miniclaw does.
type knowledge struct {
	*memory.Store
	*skills.Index
}

// withKnowledge wires the file tools, the memory tools, memory and skills
// into the prompt, and the daily log, as the gateway command does, on the
// runtime's workspace, and sets *mem to its memory store.
func withKnowledge(t *testing.T, mem **memory.Store) func(*gateway.Options) {
	return func(o *gateway.Options) {
		ws := o.Runtime.Workspace
		*mem = &memory.Store{Workspace: ws, Dir: filepath.Join(ws, ".mini-openclaw", "memory")}
		root, err := tools.OpenWorkspace(ws)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { root.Close() })
		o.Runtime.Tools = tools.NewSet(append(root.FileTools(), (*mem).Tools()...)...)
		o.Runtime.Knowledge = knowledge{*mem, skills.New(filepath.Join(ws, ".openclaw", "skills"), ws, nil)}
		o.Runtime.AfterTurn = (*mem).RecordTurn
	}
}

// turnEvents sends content and returns the events of its turn, which must
// end with message_done.
func turnEvents(t *testing.T, c *client, content string) []event {
	t.Helper()
	c.message(content)
	var evs []event
	for {
		ev := c.next()
		evs = append(evs, ev)
		switch ev.Type {
		case "message_done":
			return evs
		case "error":
			t.Fatalf("turn %q failed: %s", content, ev.Raw)
		}
	}
}

// A fact stored with memory_write in one session is in the system prompt of
// the next session's turn; a skill's location from the index loads the
// skill with read_file; every turn leaves a daily log line.
func TestKnowledgeEndToEnd(t *testing.T) {
	t.Parallel()
	const fact = "The user's cat is called Mo."
	const skillLoc = ".openclaw/skills/pdf/SKILL.md"
	script := fmt.Sprintf(`[
		{"toolCalls": [{"name": "memory_write", "input": {"fact": %q}}]},
		{"text": "Noted."},
		{"text": "Your cat is Mo."},
		{"toolCalls": [{"name": "read_file", "input": {"path": %q}}]},
		{"text": "Loaded the pdf skill."}
	]`, fact, skillLoc)
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := scripted.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingProvider{Provider: p}
	var mem *memory.Store
	ts := startServer(t, rec, withKnowledge(t, &mem))
	skillFile := filepath.Join(mem.Workspace, filepath.FromSlash(skillLoc))
	if err := os.MkdirAll(filepath.Dir(skillFile), 0o755); err != nil {
		t.Fatal(err)
	}
	skillBody := "---\nname: pdf\ndescription: Fill PDF forms & read them.\n---\n# PDF\nUse pdftotext first.\n"
	if err := os.WriteFile(skillFile, []byte(skillBody), 0o644); err != nil {
		t.Fatal(err)
	}

	// Session one stores the fact.
	a := ts.dial(t, "/ws?sessionId=one")
	evs := turnEvents(t, a, "remember that my cat is Mo")
	var stored string
	for _, ev := range evs {
		if ev.Type == "tool_done" {
			stored = fmt.Sprint(ev.fields(t)["output"])
		}
	}
	if !strings.Contains(stored, "remembered in .mini-openclaw/memory/MEMORY.md") {
		t.Fatalf("memory_write output %q", stored)
	}
	if strings.Contains(rec.system(t, 0), fact) {
		t.Fatalf("the fact was in the prompt before it was stored")
	}

	// A new session: the model sees the fact in its system prompt.
	b := ts.dial(t, "/ws?sessionId=two")
	turnEvents(t, b, "what is my cat called?")
	sys := rec.system(t, 2)
	if !strings.Contains(sys, "## Memory\n") || !strings.Contains(sys, "- "+fact) {
		t.Fatalf("the new session's system prompt lacks the fact:\n%s", sys)
	}

	// The skills index gives the location; read_file on it loads the skill.
	m := regexp.MustCompile(`<location>([^<]*)</location>`).FindStringSubmatch(sys)
	if m == nil || m[1] != skillLoc {
		t.Fatalf("skill location in the prompt = %v, want %s:\n%s", m, skillLoc, sys)
	}
	evs = turnEvents(t, b, "fill in this pdf")
	var loaded string
	for _, ev := range evs {
		if ev.Type == "tool_done" {
			f := ev.fields(t)
			if f["isError"] == true {
				t.Fatalf("read_file of the skill failed: %s", ev.Raw)
			}
			loaded = fmt.Sprint(f["output"])
		}
	}
	if !strings.Contains(loaded, "Use pdftotext first.") || !strings.Contains(loaded, "name: pdf") {
		t.Fatalf("read_file of %s gave %q", skillLoc, loaded)
	}

	// One daily log line per turn, written after the turn was persisted.
	logs, err := filepath.Glob(filepath.Join(mem.Dir, "daily-logs", "*.md"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("daily logs %v, %v", logs, err)
	}
	data, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	want := []string{`asked "remember that my cat is Mo"; tools: memory_write`, `asked "what is my cat called?"`, `asked "fill in this pdf"; tools: read_file`}
	if len(lines) != len(want) {
		t.Fatalf("daily log:\n%s\nwant %d lines", data, len(want))
	}
	lineRE := regexp.MustCompile(`^- \[\d\d:\d\d:\d\d\] (.*)$`)
	for i, l := range lines {
		if m := lineRE.FindStringSubmatch(l); m == nil || m[1] != want[i] {
			t.Errorf("daily log line %d = %q, want %q", i+1, l, "- [HH:MM:SS] "+want[i])
		}
	}
}
