package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/core"
)

// ErrNothingToCompact is Compact's answer when the history has no older
// part to summarise: at most one exchange since the latest summary.
var ErrNothingToCompact = errors.New("nothing to compact: the session has no older messages to summarise (at most one exchange since the last summary)")

// Compaction is a summary of a history's older part. Covers counts the
// history's first messages (as given to Run or Compact, the summary it
// began with included) that Summary stands for; the request keeps
// history[Covers:], which starts with a user message, so no cut separates
// a tool call from its result (they live in one assistant message).
// TokensBefore and TokensAfter are the calibrated estimates of the request
// before and after.
type Compaction struct {
	Summary      string
	Covers       int
	TokensBefore int64
	TokensAfter  int64
}

// summarySystem is the system prompt of the summarising call.
const summarySystem = `You compact the history of a conversation between a user and miniclaw, an AI agent with tools (bash, files, memory). The conversation goes on after this point with only your summary and the latest messages, so write what the agent needs to continue the work, in this order, under these headings:

## What the user wants
## Decisions made
## Files touched (paths, and what was done to each)
## Open threads (what is unfinished or was promised)
## Facts to keep (names, numbers, commands, errors, preferences)

Be specific and brief: plain Markdown, no preamble, no tool calls. Fold in the earlier summary, if there is one.`

// summaryToolKeep is how much of each tool output the summarising call
// sees: enough to know what a tool returned, not the whole file again.
const summaryToolKeep = 1000

// Compact summarises the older part of session's history now (the
// /compact command): everything before the latest exchange. history is as
// Run takes it, without a new message. It returns ErrNothingToCompact when
// there is no older part.
func (r *Runtime) Compact(ctx context.Context, session string, history []core.Message) (Compaction, error) {
	t := r.newTurn(session, history, Events{})
	var specs []core.ToolSpec
	if r.Tools != nil {
		specs = r.Tools.Specs()
	}
	var system string
	system, t.volatile = r.systemPrompt(r.now())
	return t.compact(ctx, system, specs, true)
}

// compact summarises hist[from:cut] (with the summary before it) for the
// cut chosen by cutFor, and moves the model's view to start at the cut.
// The summary reaches the listener (OnCompaction) before compact returns.
func (t *turn) compact(ctx context.Context, system string, tools []core.ToolSpec, latest bool) (Compaction, error) {
	cut := t.cutFor(system, tools, latest)
	if cut <= t.from {
		return Compaction{}, ErrNothingToCompact
	}
	before := t.tokens(core.Request{System: system, Volatile: t.volatile, Tools: tools, Messages: t.elided(keepTurns)})
	text, err := t.summarise(ctx, t.hist[t.from:cut])
	if err != nil {
		return Compaction{}, err
	}
	t.summary, t.from = text, cut
	// The view starts afresh at the summary: nothing of it is elided yet.
	t.r.Sizes.SetElided(t.id, 0)
	c := Compaction{Summary: text, Covers: cut, TokensBefore: before,
		TokensAfter: t.tokens(core.Request{System: system, Volatile: t.volatile, Tools: tools, Messages: t.elided(keepTurns)})}
	if t.ev.OnCompaction != nil {
		t.ev.OnCompaction(c)
	}
	return c, nil
}

// cutFor picks where the history is cut: at a user message after from and
// at or before the latest one (this turn's message, which the view must
// keep). With latest, that is the latest user message; else the earliest
// cut whose kept part, elided, fits half the window, leaving the other
// half for the turns to come; or the latest when none does. It returns
// from when there is no user message to cut at.
func (t *turn) cutFor(system string, tools []core.ToolSpec, latest bool) int {
	var cuts []int
	for i := t.from + 1; i < len(t.hist); i++ {
		if t.hist[i].Role == core.RoleUser {
			cuts = append(cuts, i)
		}
	}
	if len(cuts) == 0 {
		return t.from
	}
	if !latest && t.window > 0 {
		// The kept part shrinks as the cut moves later: search, rather
		// than estimate the history once per cut.
		i := sort.Search(len(cuts), func(i int) bool {
			kept := &turn{r: t.r, id: t.id, hist: t.hist, from: cuts[i], summary: "(summary)", rounds: t.rounds}
			req := core.Request{System: system, Volatile: t.volatile, Tools: tools, Messages: kept.elided(keepTurns)}
			return t.tokens(req)+t.r.ReplyTokens <= t.limit()/2
		})
		if i < len(cuts) {
			return cuts[i]
		}
	}
	return cuts[len(cuts)-1]
}

// summarise asks the model for a summary of msgs, following the current
// summary. The messages are sent as one text (tool outputs elided), which
// is cut in its middle when even that does not fit the window.
func (t *turn) summarise(ctx context.Context, msgs []core.Message) (string, error) {
	var b strings.Builder
	if t.summary != "" {
		b.WriteString("Earlier summary:\n\n" + t.summary + "\n\n---\n\n")
	}
	b.WriteString("Conversation to summarise:\n\n")
	for _, m := range budget.Elide(msgs, summaryToolKeep) {
		writeTranscript(&b, m)
	}
	text := b.String()
	req := core.Request{Model: t.r.Model, System: summarySystem, Messages: []core.Message{{Role: core.RoleUser, Content: text}}}
	if t.window > 0 {
		if over := t.tokens(req) - t.limit(); over > 0 {
			// Drop the middle: the earlier summary and the latest messages
			// matter most. Bytes per calibrated token, with room to spare.
			drop := int(over)*budget.BytesPerToken*2 + len(text)/10
			req.Messages[0].Content = cutMiddle(text, drop)
		}
	}
	resp, err := t.r.Provider.Complete(ctx, req, func(string) {})
	t.usage.Add(resp.Usage)
	if err != nil {
		return "", fmt.Errorf("compaction: the summary call failed: %w", err)
	}
	if core.Blank(resp.Text) {
		return "", errors.New("compaction: the model returned an empty summary")
	}
	return strings.TrimSpace(resp.Text), nil
}

// writeTranscript renders one message for the summarising call.
func writeTranscript(b *strings.Builder, m core.Message) {
	switch m.Role {
	case core.RoleUser:
		b.WriteString("User: ")
	case core.RoleAssistant:
		b.WriteString("Assistant: ")
	default:
		return
	}
	b.WriteString(m.Content)
	b.WriteString("\n")
	for _, tc := range m.ToolCalls {
		fmt.Fprintf(b, "[tool %s %s]\n%s\n", tc.Name, tc.Input, tc.Output)
	}
	b.WriteString("\n")
}

// cutMiddle removes drop bytes from the middle of s, on line boundaries
// where it can, and says so in their place.
func cutMiddle(s string, drop int) string {
	if drop >= len(s) {
		drop = len(s) - len(s)/4
	}
	start := (len(s) - drop) / 2
	end := start + drop
	if i := strings.LastIndexByte(s[:start], '\n'); i > 0 {
		start = i + 1
	}
	if i := strings.IndexByte(s[end:], '\n'); i >= 0 {
		end += i + 1
	}
	return s[:start] + fmt.Sprintf("[… %d bytes of the conversation left out of this summary …]\n", end-start) + s[end:]
}
