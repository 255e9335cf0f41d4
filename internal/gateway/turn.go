package gateway

import (
	"context"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/tools"
	"github.com/miniclaw/miniclaw/internal/turn"
)

// runTurn plays one user message on its session's lane (see turn.Player:
// the turn lock, the user message persisted, the agent run, what it
// produced persisted in one append before message_done), its events fanned
// out to the session and, as chat and agent events, to OpenClaw's clients
// (see openclaw_run.go). A client that saw message_done can rely on both lines
// being on disk. It returns the event that ends the turn, message_done or
// error, for the lane to broadcast.
func (s *Server) runTurn(ctx context.Context, id string, j job) []byte {
	if j.compact {
		final := s.runCompact(ctx, id, j)
		s.hub.publish(id, relayEvent, final)
		return final
	}
	run := ocRunOf(id, j)
	s.ocStart(ctx, run)
	published := false
	final := s.turns.Play(ctx, id, j.content, turn.Events{
		End: func(final []byte) {
			s.hub.publishEnd(id, final)
			published = true
		},
		User: func(m core.Message) {
			// The sender shows its own copy since it sent it.
			s.hub.broadcastExcept(id, j.from, protocol.Encode(protocol.UserMessage{Type: protocol.TypeUserMessage, SessionID: id, Content: m.Content, Timestamp: m.Timestamp, Channel: j.channel}))
		},
		Text: func(text string) {
			s.hub.broadcastChunk(id, text)
			s.ocText(run, text)
		},
		ToolStart: func(c core.ToolCall) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolStart{Type: protocol.TypeToolStart, SessionID: id, ToolName: c.Name, ToolCallID: c.ID, Input: c.Input}))
			s.ocTool(run, c, nil)
		},
		ToolDone: func(r core.ToolCallRecord) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolDone{Type: protocol.TypeToolDone, SessionID: id, ToolName: r.Name, Output: r.Output, ToolCallID: r.ID, IsError: r.IsError}))
			s.ocTool(run, core.ToolCall{}, &r)
		},
		ToolProgress: func(c core.ToolCall, p tools.Progress) {
			s.hub.broadcast(id, protocol.Encode(protocol.ToolProgress{Type: protocol.TypeToolProgress, SessionID: id, ToolName: c.Name, ToolCallID: c.ID, Progress: p.Progress, Total: p.Total, Message: p.Message}))
		},
		Compacted: func(ev protocol.Compaction) {
			s.hub.broadcast(id, protocol.Encode(ev))
		},
		Status: s.statusTo(id),
	})
	if !published { // the turn ended before it held the session's lease
		s.hub.publish(id, relayEvent, final)
	}
	s.ocEnd(run, final)
	return final
}

// TurnInterrupted tells the clients of session id, on every gateway, that
// its turn ended with its gateway (which died) and was saved as m: the
// interrupted reply with the text that gateway had streamed
// (pgstore.Options.OnInterrupted).
func (s *Server) TurnInterrupted(id string, m core.Message) {
	s.hub.broadcast(id, turn.ErrorEvent(protocol.CodeShuttingDown,
		"the gateway running this turn stopped before it finished; the reply so far is saved, marked interrupted", id))
}

// statusTo tells the clients of session id what its turn waits for.
func (s *Server) statusTo(id string) func(state, message string) {
	return func(state, message string) {
		s.hub.broadcast(id, protocol.Encode(protocol.Status{Type: protocol.TypeStatus, SessionID: id, State: state, Message: message}))
	}
}
