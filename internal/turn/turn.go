// Package turn plays one user message of a session against the store and
// the agent runtime: take the session's cross-process turn lock, append the
// user message, read the history back, run the runtime, append what it
// produced in one append, call the after-turn hook. The gateway's lanes and
// `miniclaw agent` both play turns through it, so a turn is the same
// whoever asked for it; only where its events go differs.
package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// Player plays turns. It holds no per-turn state: one Player serves every
// session of a process. Its fields must be set.
type Player struct {
	Store   session.Backend
	Runtime *agent.Runtime
	Log     *slog.Logger
	// MaxContext bounds how many transcript lines a turn reads back (see
	// session.Store.Recent).
	MaxContext int
	// LockTimeout bounds the wait for another process's turn on the
	// session.
	LockTimeout time.Duration
}

// Events receive a turn's progress; any may be nil. They run on the turn's
// goroutine and must not block for long.
type Events struct {
	Text      func(text string)
	ToolStart func(call core.ToolCall)
	ToolDone  func(rec core.ToolCallRecord)
	// ToolProgress is a running call's progress (agent.Events.OnToolProgress:
	// it runs on the tool's goroutine).
	ToolProgress func(call core.ToolCall, p tools.Progress)
	// User is called with the user message once it is saved, before the
	// model is called: the turn starts.
	User func(m core.Message)
	// Compacted is called once the turn's compaction record is saved.
	Compacted func(ev protocol.Compaction)
	// Status is called with protocol.StatusWaiting when another process
	// holds the session's turn, and with protocol.StatusRunning once that
	// wait is over; message is a sentence for people.
	Status func(state, message string)
	// End is called with the event that ends a turn that held the
	// session's lease (the value Play returns), while it still holds it:
	// what it sends reaches other gateways before their next turn of the
	// session can start.
	End func(final []byte)
}

// Play plays the user message content on session id and returns the event
// that ends the turn, encoded: message_done, or an error event (code
// aborted or shutting_down when ctx was cancelled with core.ErrAborted or
// core.ErrInterrupted). Whatever the runtime produced, also on failure, is
// appended before Play returns: a caller that got message_done can rely on
// both the user message and the reply being on disk.
//
// A turn whose lease is lost (session.Lease.Lost: the store can no longer
// vouch that no other gateway runs a turn of the session) is stopped, its
// context cancelled with core.ErrLeaseLost, and writes nothing more; it
// ends with an internal error (the server lost its database connection),
// and whoever takes the session's turn next marks it interrupted.
func (p *Player) Play(ctx context.Context, id, content string, ev Events) (final []byte) {
	log := p.Log.With("session", id)
	lock, failed := p.Lock(ctx, id, log, ev.Status)
	if failed != nil {
		return failed
	}
	defer func() {
		if ev.End != nil {
			ev.End(final)
		}
		lock.Unlock()
	}()
	ctx, unwatch := watchLease(ctx, lock)
	defer unwatch()
	started := time.Now()
	user := core.Message{Role: core.RoleUser, Content: content, Timestamp: started.UnixMilli()}
	if _, err := p.Store.Append(id, user); err != nil {
		log.Error("user message not persisted", "err", err)
		return ErrorEvent(protocol.CodeInternal, "the message could not be saved: "+err.Error(), id)
	}
	if ev.User != nil {
		ev.User(user)
	}
	recent, failed := p.Recent(id, log)
	if failed != nil {
		return failed
	}

	res, runErr := p.Runtime.Run(ctx, id, recent.Messages, agent.Events{
		OnText:         saveText(lock, ev.Text),
		OnToolStart:    ev.ToolStart,
		OnToolDone:     ev.ToolDone,
		OnToolProgress: ev.ToolProgress,
		OnCompaction: func(c agent.Compaction) {
			done := p.SaveCompaction(id, recent, c, log)
			if ev.Compacted != nil {
				ev.Compacted(done)
			}
		},
	})
	if errors.Is(context.Cause(ctx), core.ErrLeaseLost) {
		log.Warn("turn stopped: its lease was lost, its reply is not saved", "ms", time.Since(started).Milliseconds())
		return ErrorEvent(protocol.CodeInternal, core.ErrLeaseLost.Error()+": the turn stopped, and its reply was not saved", id)
	}
	if _, err := p.Store.Append(id, res.Messages...); err != nil {
		log.Error("assistant reply not persisted", "err", err)
		return ErrorEvent(protocol.CodeInternal, "the reply could not be saved: "+err.Error(), id)
	}
	// The knowledge layer's hook (the daily log), once the turn is on disk.
	if after := p.Runtime.AfterTurn; after != nil {
		if err := after(user, res.Messages); err != nil {
			log.Warn("after-turn hook failed (daily log)", "err", err)
		}
	}
	if runErr != nil {
		code, level := p.EndCode(ctx, protocol.CodeProvider)
		level("turn ended early", "session", id, "code", code, "err", runErr, "ms", time.Since(started).Milliseconds())
		return ErrorEvent(code, runErr.Error(), id)
	}
	done := protocol.MessageDone{Type: protocol.TypeMessageDone, SessionID: id, Content: res.Text, StopReason: res.StopReason}
	if res.Usage != (core.Usage{}) {
		done.Usage = &res.Usage
	}
	done.Context = contextUse(res.Messages, p.Runtime.ContextWindow)
	log.Debug("turn done", "ms", time.Since(started).Milliseconds())
	return protocol.Encode(done)
}

// textSaver is a lease that keeps the reply text streamed so far
// (pgstore's), so that the interrupted marker of a turn its gateway leaves
// unfinished holds what the session's clients saw.
type textSaver interface{ SaveText(chunk string) }

// saveText is the turn's text event: text, after lease keeps the chunk
// when it can.
func saveText(lease session.Lease, text func(string)) func(string) {
	saver, ok := lease.(textSaver)
	switch {
	case !ok:
		return text
	case text == nil:
		return saver.SaveText
	}
	return func(chunk string) {
		saver.SaveText(chunk)
		text(chunk)
	}
}

// watchLease is ctx, cancelled with core.ErrLeaseLost when lease is lost,
// and the function that stops watching.
func watchLease(ctx context.Context, lease session.Lease) (context.Context, func()) {
	lost := lease.Lost()
	if lost == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-lost:
			cancel(core.ErrLeaseLost)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-watched
	}
}

// Lock takes the session's cross-process turn lock (see session.TurnLock)
// before the turn touches the transcript, so a turn of the same session in
// another process on the data dir never interleaves with this one. While
// it waits, status (when set) is told. On failure it returns the error
// event that ends the turn; nothing was saved.
func (p *Player) Lock(ctx context.Context, id string, log *slog.Logger, status func(state, message string)) (session.Lease, []byte) {
	if status == nil {
		status = func(string, string) {}
	}
	waited := false
	lock, err := p.Store.LockTurn(ctx, id, p.LockTimeout, func() {
		waited = true
		log.Info("turn waits for another process's turn on the session")
		status(protocol.StatusWaiting, "waiting for another process's turn on this session")
	})
	if err == nil {
		if waited {
			status(protocol.StatusRunning, "another process's turn on this session is over: this one runs")
		}
		return lock, nil
	}
	code, level := p.EndCode(ctx, protocol.CodeInternal)
	msg := "stopped while waiting for another process's turn on this session; the message was not saved"
	switch {
	case errors.Is(err, session.ErrTurnLockTimeout):
		code, level = protocol.CodeConflict, p.Log.Warn
		msg = fmt.Sprintf("another process has been running a turn of this session for over %s; the message was not saved, try again later", p.LockTimeout)
	case code == protocol.CodeInternal:
		msg = "the turn could not start: " + err.Error()
	}
	level("turn not run: no turn lock", "session", id, "code", code, "err", err)
	return nil, ErrorEvent(code, msg, id)
}

// EndCode is the error code of a turn that failed, and the level to log it
// at: aborted or shutting_down when its context was cancelled, else
// otherwise.
func (p *Player) EndCode(ctx context.Context, otherwise protocol.Code) (protocol.Code, func(string, ...any)) {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, core.ErrInterrupted):
		return protocol.CodeShuttingDown, p.Log.Warn
	case errors.Is(cause, core.ErrAborted):
		return protocol.CodeAborted, p.Log.Info
	}
	return otherwise, p.Log.Warn
}

// Recent loads what a turn of id sends to the model (see session.Recent),
// or returns the error event that ends the turn.
func (p *Player) Recent(id string, log *slog.Logger) (session.Recent, []byte) {
	recent, err := p.Store.Recent(id, p.MaxContext)
	if err != nil {
		log.Error("history not readable", "err", err)
		return recent, ErrorEvent(protocol.CodeInternal, "the session history could not be read: "+err.Error(), id)
	}
	for _, le := range recent.Corrupt {
		log.Warn("corrupt transcript line left out of the model's history", "where", le.String())
	}
	return recent, nil
}

// SaveCompaction appends a compaction's summary record to the transcript,
// one line after the others (none is changed), covering the lines before
// the first message the compaction kept, and returns the event that tells
// the session's clients. A record that could not be saved is logged: the
// running turn still uses the summary, and a later turn compacts again.
func (p *Player) SaveCompaction(id string, recent session.Recent, c agent.Compaction, log *slog.Logger) protocol.Compaction {
	rec := core.Message{Role: core.RoleSummary, Content: c.Summary, Covers: recent.Lines[c.Covers], Timestamp: time.Now().UnixMilli()}
	if _, err := p.Store.Append(id, rec); err != nil {
		log.Error("compaction summary not persisted", "err", err)
	}
	log.Info("compacted", "covered", rec.Covers, "tokensBefore", c.TokensBefore, "tokensAfter", c.TokensAfter)
	return protocol.Compaction{Type: protocol.TypeCompaction, SessionID: id, CoveredMessages: rec.Covers, TokensBefore: c.TokensBefore, TokensAfter: c.TokensAfter}
}

// ErrorEvent is the encoded error event of a turn (or request) of sessionID.
func ErrorEvent(code protocol.Code, msg, sessionID string) []byte {
	return protocol.Encode(protocol.Error{Type: protocol.TypeError, Message: msg, Code: code, SessionID: sessionID})
}

// contextUse is how full the window was on the turn's last model call, as
// the provider counted it; nil when the provider reported no usage or no
// window is set.
func contextUse(produced []core.Message, window int64) *protocol.Context {
	if len(produced) == 0 || window <= 0 {
		return nil
	}
	u := produced[len(produced)-1].Usage
	if u == nil || u.Prompt() == 0 {
		return nil
	}
	return &protocol.Context{Tokens: u.Prompt(), Window: window}
}
