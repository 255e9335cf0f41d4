package gateway

import (
	"context"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

// runTurn plays one user message on its session's lane: take the session's
// turn lock (see waitTurn), persist the user message, run the agent with
// its events fanned out to the session, then persist what the agent
// produced, in one append, before message_done. A
// client that saw message_done can rely on both lines being on disk. It
// returns the event that ends the turn, message_done or error, for the lane
// to broadcast.
func (s *Server) runTurn(ctx context.Context, id string, j job) []byte {
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
	history, corrupt, err := s.store.Tail(id, s.opt.MaxContext)
	if err != nil {
		log.Error("history not readable", "err", err)
		return errorEvent(protocol.CodeInternal, "the session history could not be read: "+err.Error(), id)
	}
	for _, le := range corrupt {
		log.Warn("corrupt transcript line left out of the model's history", "where", le.String())
	}

	res, runErr := s.opt.Runtime.Run(ctx, history, agent.Events{
		OnText: func(text string) {
			s.hub.broadcastChunk(id, text)
		},
		OnToolStart: func(c core.ToolCall) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolStart{Type: protocol.TypeToolStart, SessionID: id, ToolName: c.Name, ToolCallID: c.ID, Input: c.Input}))
		},
		OnToolDone: func(r core.ToolCallRecord) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolDone{Type: protocol.TypeToolDone, SessionID: id, ToolName: r.Name, Output: r.Output, ToolCallID: r.ID, IsError: r.IsError}))
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
	log.Debug("turn done", "ms", time.Since(started).Milliseconds())
	return protocol.Encode(done)
}
