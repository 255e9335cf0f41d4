package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
)

// runTurn plays one user message on its session's lane: take the session's
// turn lock (see waitTurn), persist the user message, run the agent with
// its events fanned out to the session, then persist what the agent
// produced, in one append, before message_done. A
// client that saw message_done can rely on both lines being on disk. It
// returns the event that ends the turn, message_done or error, for the lane
// to broadcast.
func (s *Server) runTurn(ctx context.Context, id string, j job) []byte {
	if j.compact {
		return s.runCompact(ctx, id, j)
	}
	log := s.log.With("session", id)
	lock, failed := s.waitTurn(ctx, id, log)
	if failed != nil {
		return failed
	}
	defer lock.Unlock()
	started := time.Now()
	user := core.Message{Role: core.RoleUser, Content: j.content, Timestamp: started.UnixMilli()}
	if _, err := s.store.Append(id, user); err != nil {
		log.Error("user message not persisted", "err", err)
		return errorEvent(protocol.CodeInternal, "the message could not be saved: "+err.Error(), id)
	}
	recent, failed := s.recent(id, log)
	if failed != nil {
		return failed
	}

	res, runErr := s.opt.Runtime.Run(ctx, id, recent.Messages, agent.Events{
		OnText: func(text string) {
			s.hub.broadcastChunk(id, text)
		},
		OnToolStart: func(c core.ToolCall) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolStart{Type: protocol.TypeToolStart, SessionID: id, ToolName: c.Name, ToolCallID: c.ID, Input: c.Input}))
		},
		OnToolDone: func(r core.ToolCallRecord) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolDone{Type: protocol.TypeToolDone, SessionID: id, ToolName: r.Name, Output: r.Output, ToolCallID: r.ID, IsError: r.IsError}))
		},
		OnCompaction: func(c agent.Compaction) {
			s.saveCompaction(id, recent, c, log)
		},
	})
	if _, err := s.store.Append(id, res.Messages...); err != nil {
		log.Error("assistant reply not persisted", "err", err)
		return errorEvent(protocol.CodeInternal, "the reply could not be saved: "+err.Error(), id)
	}
	// The knowledge layer's hook (the daily log), once the turn is on disk.
	if after := s.opt.Runtime.AfterTurn; after != nil {
		if err := after(user, res.Messages); err != nil {
			log.Warn("after-turn hook failed (daily log)", "err", err)
		}
	}
	if runErr != nil {
		code, level := s.endCode(ctx, protocol.CodeProvider)
		level("turn ended early", "session", id, "code", code, "err", runErr, "ms", time.Since(started).Milliseconds())
		return errorEvent(code, runErr.Error(), id)
	}
	done := protocol.MessageDone{Type: protocol.TypeMessageDone, SessionID: id, Content: res.Text, StopReason: res.StopReason}
	if res.Usage != (core.Usage{}) {
		done.Usage = &res.Usage
	}
	done.Context = contextUse(res.Messages, s.opt.Runtime.ContextWindow)
	log.Debug("turn done", "ms", time.Since(started).Milliseconds())
	return protocol.Encode(done)
}

// recent loads what a turn of id sends to the model (see session.Recent),
// or returns the error event that ends the turn.
func (s *Server) recent(id string, log *slog.Logger) (session.Recent, []byte) {
	recent, err := s.store.Recent(id, s.opt.MaxContext)
	if err != nil {
		log.Error("history not readable", "err", err)
		return recent, errorEvent(protocol.CodeInternal, "the session history could not be read: "+err.Error(), id)
	}
	for _, le := range recent.Corrupt {
		log.Warn("corrupt transcript line left out of the model's history", "where", le.String())
	}
	return recent, nil
}

// saveCompaction appends a compaction's summary record to the transcript,
// one line after the others (none is changed), covering the lines before
// the first message the compaction kept, and tells the session's clients.
// A record that could not be saved is logged: the running turn still uses
// the summary, and a later turn compacts again.
func (s *Server) saveCompaction(id string, recent session.Recent, c agent.Compaction, log *slog.Logger) protocol.Compaction {
	rec := core.Message{Role: core.RoleSummary, Content: c.Summary, Covers: recent.Lines[c.Covers], Timestamp: time.Now().UnixMilli()}
	if _, err := s.store.Append(id, rec); err != nil {
		log.Error("compaction summary not persisted", "err", err)
	}
	ev := protocol.Compaction{Type: protocol.TypeCompaction, SessionID: id, CoveredMessages: rec.Covers, TokensBefore: c.TokensBefore, TokensAfter: c.TokensAfter}
	log.Info("compacted", "covered", rec.Covers, "tokensBefore", c.TokensBefore, "tokensAfter", c.TokensAfter)
	s.hub.broadcast(id, protocol.Encode(ev))
	return ev
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
