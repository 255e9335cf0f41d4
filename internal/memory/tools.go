package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// Search limits of memory_search.
const (
	DefaultSearchLimit = 10
	MaxSearchLimit     = 50
)

// Tools returns memory_write and memory_search bound to s.
func (s *Store) Tools() []tools.Tool { return []tools.Tool{writeTool{s}, searchTool{s}} }

type writeTool struct{ s *Store }

func (writeTool) ReadOnly() bool { return false }
func (t writeTool) Spec() core.ToolSpec {
	return core.ToolSpec{
		Name: "memory_write",
		Description: fmt.Sprintf("Remember a fact for future conversations: it is appended as one line to %s (the memory file of miniclaw's data directory, not the workspace's own MEMORY.md), which you are shown in the context block of every turn from the next one on. Store durable facts (preferences, decisions, names), one per call, in at most %d characters.",
			t.s.Display(t.s.File()), MaxFactChars),
		InputSchema: json.RawMessage(`{"type":"object","properties":{"fact":{"type":"string","description":"the fact, one line"}},"required":["fact"]}`),
	}
}

func (t writeTool) Run(_ context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Fact *string `json:"fact"`
	}
	if err := tools.DecodeInput("memory_write", input, &in); err != nil {
		return "", err
	}
	if in.Fact == nil {
		return "", errors.New(`memory_write: "fact" is required`)
	}
	line, err := t.s.Remember(*in.Fact)
	if err != nil {
		return "", fmt.Errorf("memory_write: %w", err)
	}
	return fmt.Sprintf("remembered in %s: %s", t.s.Display(t.s.File()), line), nil
}

type searchTool struct{ s *Store }

func (searchTool) ReadOnly() bool { return true }
func (searchTool) Spec() core.ToolSpec {
	return core.ToolSpec{
		Name:        "memory_search",
		Description: "Search long-term memory (both MEMORY.md files) and every daily log of past turns by keywords. Results are ranked, best first, as file:line: text.",
		InputSchema: json.RawMessage(fmt.Sprintf(`{"type":"object","properties":{"query":{"type":"string","description":"keywords"},"limit":{"type":"integer","description":"most results to return (default %d, at most %d)"}},"required":["query"]}`,
			DefaultSearchLimit, MaxSearchLimit)),
	}
}

func (t searchTool) Run(_ context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Query string `json:"query"`
		Limit *int   `json:"limit"`
	}
	if err := tools.DecodeInput("memory_search", input, &in); err != nil {
		return "", err
	}
	limit := DefaultSearchLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > MaxSearchLimit {
			return "", fmt.Errorf(`memory_search: "limit" must be from 1 to %d, got %d`, MaxSearchLimit, *in.Limit)
		}
		limit = *in.Limit
	}
	hits, err := t.s.Search(in.Query, limit)
	if err != nil {
		return "", fmt.Errorf("memory_search: %w", err)
	}
	if len(hits) == 0 {
		return fmt.Sprintf("no results for %q in MEMORY.md or the daily logs", in.Query), nil
	}
	return FormatHits(hits), nil
}

// FormatHits writes hits one per line as file:line: text.
func FormatHits(hits []Hit) string {
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "%s:%d: %s\n", h.File, h.Line, h.Text)
	}
	return b.String()
}
