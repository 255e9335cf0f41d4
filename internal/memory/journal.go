package memory

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Limits of what memory writes.
const (
	maxAskedChars = 120  // of the user's message in a daily log line
	MaxFactChars  = 2000 // of one memory_write fact
)

// RecordTurn appends the daily log line of a persisted turn:
// "- [HH:MM:SS] asked "…"; tools: a, b×2", plus how it ended when it
// failed. It has the signature of agent.Runtime.AfterTurn.
func (s *Store) RecordTurn(user core.Message, produced []core.Message) error {
	now := s.now()
	line := fmt.Sprintf("- [%s] %s", now.Format(time.TimeOnly), Summary(user, produced))
	return s.appendLine(s.DayFile(now), line)
}

// Summary is one line about a turn: what was asked (cut), which tools ran
// in order (repeats counted), and the status of a turn that did not end
// normally.
func Summary(user core.Message, produced []core.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "asked %q", cut(oneLine(user.Content), maxAskedChars))
	var names []string
	count := map[string]int{}
	status := ""
	for _, m := range produced {
		for _, c := range m.ToolCalls {
			if count[c.Name] == 0 {
				names = append(names, c.Name)
			}
			count[c.Name]++
		}
		if m.Status != "" {
			status = m.Status
		}
	}
	for i, n := range names {
		if i == 0 {
			b.WriteString("; tools: ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(oneLine(n))
		if count[n] > 1 {
			fmt.Fprintf(&b, "×%d", count[n])
		}
	}
	if status != "" {
		b.WriteString("; " + status)
	}
	return b.String()
}

// Remember appends fact to the data directory's MEMORY.md as a list item
// and returns the line written.
func (s *Store) Remember(fact string) (string, error) {
	fact = strings.TrimPrefix(oneLine(fact), "- ")
	if fact == "" {
		return "", errors.New("the fact is empty")
	}
	if n := utf8.RuneCountInString(fact); n > MaxFactChars {
		return "", fmt.Errorf("the fact is %d characters, over the limit of %d: store a shorter summary", n, MaxFactChars)
	}
	line := "- " + fact
	return line, s.appendLine(s.File(), line)
}

// oneLine collapses all whitespace, newlines included, to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cut shortens s to n characters, ending in "…" when it was cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
