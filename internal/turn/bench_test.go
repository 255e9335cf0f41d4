package turn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/memory"
	"github.com/miniclaw/miniclaw/internal/provider/anthropic"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/skills"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// knowledge is the gateway's knowledge layer (memory and skills sections).
type knowledge struct {
	mem    *memory.Store
	skills *skills.Index
}

func (k knowledge) MemorySection() string { return k.mem.MemorySection() }
func (k knowledge) SkillsSection() string { return k.skills.SkillsSection() }

// benchSessionLen is the transcript length a benchmarked turn starts from:
// a long session, as the bench harness's agent run reaches.
const benchSessionLen = 300

// BenchmarkPlay measures the gateway's own cost of one text turn on a
// session of benchSessionLen messages, built as `miniclaw gateway` builds
// its engine (the Anthropic provider, file tools, memory and skills, the
// token budget and MaxContext at its default of 1000), against a local
// Messages API that answers at once: the turn lock, the appends, the
// history read back, the prompt, the request's encoding and the stream's
// parsing. The session grows by a turn per iteration; every 50 iterations
// a fresh one of benchSessionLen messages takes its place (untimed).
// max-context=50 is the setting's old default: a turn reads back at most 50
// lines and compacts every few turns.
func BenchmarkPlay(b *testing.B) {
	for _, maxContext := range []int{1000, 50} {
		b.Run(fmt.Sprintf("max-context=%d", maxContext), func(b *testing.B) { benchPlay(b, maxContext) })
	}
}

func benchPlay(b *testing.B, maxContext int) {
	sse, err := os.ReadFile(filepath.Join("..", "provider", "anthropic", "testdata", "text.sse"))
	if err != nil {
		b.Fatal(err)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(sse)
	}))
	defer api.Close()

	dir := b.TempDir()
	wsDir, dataDir := filepath.Join(dir, "ws"), filepath.Join(dir, "data")
	if err := os.MkdirAll(wsDir, 0o700); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws, err := tools.OpenWorkspace(wsDir)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	store, err := session.Open(filepath.Join(dataDir, "sessions"), session.Options{Logger: log, Workspace: wsDir})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	mem := &memory.Store{Workspace: wsDir, Dir: filepath.Join(dataDir, "memory"), Log: log}
	toolSet := tools.NewSet(ws.FileTools()...)
	toolSet.Add(mem.Tools()...)
	p := &Player{
		Store: store, Log: log, MaxContext: maxContext,
		Runtime: &agent.Runtime{
			Provider: anthropic.New(anthropic.Options{APIKey: "k", BaseURL: api.URL}), Model: "claude-sonnet-4-20250514",
			Workspace: wsDir, Tools: toolSet,
			Knowledge: knowledge{mem, skills.New(filepath.Join(dataDir, "skills"), wsDir, log)},
			AfterTurn: mem.RecordTurn, ContextWindow: 200_000, ReplyTokens: anthropic.DefaultMaxTokens,
			Sizes: budget.NewCalibration(), MaxHistory: maxContext * 3 / 4,
		},
	}
	ctx := context.Background()
	var cpu time.Duration // the process's, the fake API's included
	var id string
	sessions := 0
	for i := 0; b.Loop(); i++ {
		if i%50 == 0 {
			b.StopTimer()
			sessions++
			id = fmt.Sprintf("bench%d", sessions)
			if _, _, err := store.Create(id, session.DefaultChannel); err != nil {
				b.Fatal(err)
			}
			if _, err := store.Append(id, benchHistory(benchSessionLen)...); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		before := cpuTime(b)
		done := p.Play(ctx, id, fmt.Sprintf("question %d: what did the file say?", i), Events{Text: func(string) {}})
		cpu += cpuTime(b) - before
		if !strings.Contains(string(done), `"message_done"`) {
			b.Fatalf("turn %d ended with %s", i, done)
		}
	}
	// The machine may be shared: CPU time per turn is the figure to
	// compare, wall time waits for other work too.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchHistory is n messages of past turns, as a gateway stores them: a
// question, and either a text reply or a read_file round and its answer,
// with the provider's usage on each assistant message.
func benchHistory(n int) []core.Message {
	ts := time.Now().UnixMilli()
	out := make([]core.Message, 0, n)
	usage := &core.Usage{InputTokens: 4000, OutputTokens: 60}
	for i := 0; len(out) < n; i++ {
		out = append(out, core.Message{Role: core.RoleUser, Content: fmt.Sprintf("question %d: what does line %d of notes.txt say, and why?", i, i), Timestamp: ts})
		if i%3 == 2 && len(out)+2 <= n {
			out = append(out, core.Message{Role: core.RoleAssistant, Content: "Let me look.", Timestamp: ts, Usage: usage,
				ToolCalls: []core.ToolCallRecord{{ID: fmt.Sprintf("toolu_%d", i), Name: "read_file", Input: []byte(`{"path":"notes.txt"}`),
					Output: strings.Repeat(fmt.Sprintf("     %d\tsome line of the notes file, long enough to look real\n", i), 10)}}})
		}
		out = append(out, core.Message{Role: core.RoleAssistant, Content: fmt.Sprintf("Turn %d: the fake model streams this answer in ten deltas, more or less.", i), Timestamp: ts, Usage: usage})
	}
	return out[:n]
}
