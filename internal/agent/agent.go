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

	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// MaxToolCalls caps the tool calls of one turn.
const MaxToolCalls = 20

// Events receive a turn's progress. Callbacks run on the turn's goroutine
// (OnToolStart/OnToolDone of parallel tools too: they are called in order),
// and must not block for long.
type Events struct {
	OnText      func(text string)
	OnToolStart func(call core.ToolCall)
	OnToolDone  func(rec core.ToolCallRecord)
	// OnToolProgress is how far a running call got (see
	// tools.WithProgress), between its OnToolStart and its OnToolDone, at
	// most one per progressEvery per call. Unlike the others it runs on
	// whatever goroutine the tool reports from, so it must not block.
	OnToolProgress func(call core.ToolCall, p tools.Progress)
	// OnCompaction is called when the turn summarised the older part of
	// the history to fit the context window, before the model call that
	// needed it. Whoever persists the transcript appends the summary
	// record here; an error is the caller's to log (the turn goes on with
	// the summary in the model's view either way).
	OnCompaction func(c Compaction)
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
	// ContextWindow is the model's context window in tokens. Every
	// request is fitted to it, less ReplyTokens, by eliding old tool
	// outputs and then compacting (see docs/long-sessions.md). 0 sends
	// requests as they are.
	ContextWindow int64
	// ReplyTokens is the room kept in the window for the reply: the
	// provider's max_tokens.
	ReplyTokens int64
	// Sizes calibrates the token estimate per session from what the
	// provider counted, and remembers which turns a session's requests
	// elide; nil leaves the estimate uncalibrated and elides all but the
	// last two turns of every request over the budget.
	Sizes *budget.Calibration
	// MaxHistory, when set, compacts a history that holds that many
	// messages after its latest summary, whatever their size: whoever
	// loads histories reads a bounded number of lines back to the summary
	// (the gateway's MaxContext), and nothing must fall off that bound
	// unsummarised. 0: only the token budget compacts.
	MaxHistory int
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

// Run plays one turn of session. history is the transcript's tail ending
// with the user message that started the turn; it may begin with the
// session's latest summary record (core.RoleSummary), which then stands for
// everything before the messages that follow it.
func (r *Runtime) Run(ctx context.Context, session string, history []core.Message, ev Events) (Result, error) {
	t := r.newTurn(session, history, ev)
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
