// Package agent runs one turn of a conversation: it builds the system
// prompt, sends the history to the model through a core.Provider, relays the
// text as it streams, and returns the assistant messages to persist. It does
// not know which provider it runs, nor who listens to its events.
package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Events receive a turn's progress. Callbacks run on the turn's goroutine,
// in order; they must not block for long.
type Events struct {
	OnText func(text string)
}

// Runtime runs turns against one provider.
type Runtime struct {
	Provider  core.Provider
	Model     string
	Workspace string
	Now       func() time.Time // nil means time.Now
}

// Result is what a turn produced. Messages are the assistant messages to
// append to the transcript (also when the turn failed: what was produced is
// kept and marked). Text is the final reply shown to the user.
type Result struct {
	Messages   []core.Message
	Text       string
	Usage      core.Usage
	StopReason string
}

// Run plays one turn. history is the transcript's tail including the user
// message that started the turn. On error the Result still holds what was
// produced, with the last message marked by Status and Error.
func (r *Runtime) Run(ctx context.Context, history []core.Message, ev Events) (Result, error) {
	now := r.now()
	req := core.Request{Model: r.Model, System: r.systemPrompt(now), Messages: modelHistory(history)}
	var text strings.Builder
	resp, err := r.Provider.Complete(ctx, req, func(s string) {
		text.WriteString(s)
		if ev.OnText != nil {
			ev.OnText(s)
		}
	})
	msg := core.Message{Role: core.RoleAssistant, Content: text.String(), Timestamp: r.now().UnixMilli()}
	res := Result{Text: msg.Content, Usage: resp.Usage, StopReason: resp.StopReason}
	if err != nil {
		msg.Status, msg.Error = failureStatus(ctx, err), err.Error()
		res.Messages = []core.Message{msg}
		return res, err
	}
	res.Messages = []core.Message{msg}
	return res, nil
}

// failureStatus tells an abort (the turn's context was cancelled by a user)
// from any other failure.
func failureStatus(ctx context.Context, err error) string {
	switch {
	case ctx.Err() == nil:
		return core.StatusError
	case errors.Is(context.Cause(ctx), core.ErrInterrupted):
		return core.StatusInterrupted
	default:
		return core.StatusAborted
	}
}

func (r *Runtime) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// modelHistory turns a transcript tail into what the model may see: system
// lines and failed empty replies are dropped, and the history starts at a
// user message, as model APIs require.
func modelHistory(history []core.Message) []core.Message {
	out := make([]core.Message, 0, len(history))
	for _, m := range history {
		if m.Role == core.RoleSystem || m.Role == core.RoleAssistant && m.Content == "" && len(m.ToolCalls) == 0 {
			continue
		}
		if len(out) == 0 && m.Role != core.RoleUser {
			continue
		}
		out = append(out, m)
	}
	return out
}

// systemPrompt assembles the prompt in SPEC §6's order. Sections whose source
// is missing are left out.
func (r *Runtime) systemPrompt(now time.Time) string {
	var b strings.Builder
	b.WriteString("You are a personal AI assistant running inside miniclaw, a self-hosted agent gateway.\n")
	fmt.Fprintf(&b, "\n## Runtime Information\n- Time: %s\n- Working directory: %s\n- Platform: %s/%s\n",
		now.Format(time.RFC3339), r.Workspace, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
