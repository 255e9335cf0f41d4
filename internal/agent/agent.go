// Package agent runs one turn of a conversation: it builds the system
// prompt, streams the model's reply through a core.Provider, runs the tools
// the model calls, feeds their results back, and returns the assistant
// messages to persist. It does not know which provider it runs, nor who
// listens to its events.
package agent

import (
	"context"
	"errors"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// MaxToolCalls caps the tool calls of one turn (SPEC §6).
const MaxToolCalls = 20

// Events receive a turn's progress. Callbacks run on the turn's goroutine
// (OnToolStart/OnToolDone of parallel tools too: they are called in order),
// and must not block for long.
type Events struct {
	OnText      func(text string)
	OnToolStart func(call core.ToolCall)
	OnToolDone  func(rec core.ToolCallRecord)
}

// Knowledge fills the prompt's memory and skills sections (the knowledge
// layer). Either may be "" to leave the section out.
type Knowledge interface {
	MemorySection() string
	SkillsSection() string
}

// Runtime runs turns against one provider with one tool set. It holds no
// per-turn state and is safe for concurrent use.
type Runtime struct {
	Provider      core.Provider
	Model         string
	Workspace     string
	Tools         *tools.Set // nil: no tools
	Knowledge     Knowledge  // nil: no memory or skills sections
	MaxToolRounds int        // 0 means 10
	Now           func() time.Time
	// AfterTurn, when set, is called by whoever persists a turn (the
	// gateway's lane) once its messages are on disk, with the user message
	// and what Run produced: the memory layer's daily log line is written
	// here. It may run for several sessions at once; its error is logged.
	AfterTurn func(user core.Message, produced []core.Message) error
}

// Result is what a turn produced. Messages are the assistant messages to
// append to the transcript, one per model round, each with its tool records
// (also when the turn failed: what was produced is kept, and the last
// message is marked with Status and Error). Text is the final reply.
type Result struct {
	Messages   []core.Message
	Text       string
	Usage      core.Usage
	StopReason string
}

// Run plays one turn. history is the transcript's tail ending with the user
// message that started the turn.
func (r *Runtime) Run(ctx context.Context, history []core.Message, ev Events) (Result, error) {
	t := turn{r: r, ev: ev, convo: modelHistory(history)}
	return t.run(ctx)
}

func (r *Runtime) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runtime) maxRounds() int {
	if r.MaxToolRounds > 0 {
		return r.MaxToolRounds
	}
	return 10
}

// failureStatus tells an abort (the turn's context was cancelled by a user)
// and a shutdown from any other failure.
func failureStatus(ctx context.Context) string {
	switch {
	case ctx.Err() == nil:
		return core.StatusError
	case errors.Is(context.Cause(ctx), core.ErrInterrupted):
		return core.StatusInterrupted
	default:
		return core.StatusAborted
	}
}
