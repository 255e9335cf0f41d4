package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

// Relay carries the events of every session between the gateways that
// share one session store (pgstore.Relay, over PostgreSQL's LISTEN/NOTIFY),
// so that a client sees the turns of its session whichever gateway runs
// them. The gateway publishes each broadcast of its hub and delivers what
// the others publish to its own clients of that session, never publishing
// it again.
type Relay interface {
	// Publish hands the other gateways a notice of session: kind is
	// relayEvent (data: an encoded event), relayChunk (data: reply text)
	// or relayAbort (data: nil). It must never block a turn.
	Publish(session, kind string, data []byte)
	// Listen calls deliver with the other gateways' notices until ctx is
	// done, and with ("", relayResync, nil) when notices may have been lost
	// (its connection broke), or (session, relayResync, nil) when those of
	// one session were. deliver does not block.
	Listen(ctx context.Context, deliver func(session, kind string, data []byte))
	// Flush returns once what was published before it is on its way to
	// the other gateways, in order before anything published later by
	// any gateway (or ctx is done).
	Flush(ctx context.Context) error
}

// endFlushTimeout bounds how long a turn's end waits for the relay before
// the session's lease is released anyway (the database is slow or away).
const endFlushTimeout = 2 * time.Second

// publishEnd publishes the event that ends a turn of session id and waits
// for it to be sent, while the turn still holds the session's lease: a
// watcher on another gateway then sees this turn's end before the next
// turn's user_message, whichever gateway runs it.
func (h *hub) publishEnd(id string, final []byte) {
	if h.relay == nil || final == nil {
		return
	}
	h.relay.Publish(id, relayEvent, final)
	ctx, cancel := context.WithTimeout(context.Background(), endFlushTimeout)
	defer cancel()
	h.relay.Flush(ctx)
}

// Kinds of relay notices; the names are those on the wire (pgstore.RelayEvent...).
const (
	relayEvent  = "event"
	relayChunk  = "chunk"
	relayAbort  = "abort"
	relayResync = "resync"
)

// publish hands a broadcast of session id to the relay, if any; nil data
// is nothing to send.
func (h *hub) publish(id, kind string, data []byte) {
	if h.relay != nil && data != nil {
		h.relay.Publish(id, kind, data)
	}
}

// deliver is the relay's deliver: another gateway's notice for the local
// clients of a session. Sessions without local clients have no lane and
// are skipped.
func (h *hub) deliver(id, kind string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id == "" && kind == relayResync {
		for _, l := range h.lanes {
			resyncLocked(l)
		}
		return
	}
	l, ok := h.lanes[id]
	if !ok {
		return
	}
	switch kind {
	case relayEvent:
		l.remote = !endsTurn(data)
		h.sendLocked(l, data, nil)
	case relayChunk:
		l.remote = true
		sendChunkLocked(l, string(data))
	case relayAbort:
		if l.cancel != nil {
			l.cancel(core.ErrAborted)
		}
	case relayResync:
		resyncLocked(l)
	}
}

// resyncLocked tells l's clients that events of their session may have
// been lost, so they reload its history. Caller holds h.mu.
func resyncLocked(l *lane) {
	l.remote = false // its end may be what was lost
	payload := protocol.Encode(protocol.Resync{Type: protocol.TypeResync, SessionID: l.id,
		Message: "events of this session relayed from another gateway may have been lost"})
	for c := range l.subs {
		c.enqueue(payload)
	}
}

// endsTurn reports whether an encoded event ends a turn: message_done, or
// the error (or the compaction, for /compact) a lane sends last.
func endsTurn(payload []byte) bool {
	var ev struct {
		Type string `json:"type"`
	}
	json.Unmarshal(payload, &ev) // encoded by a gateway
	switch ev.Type {
	case protocol.TypeMessageDone, protocol.TypeError, protocol.TypeCompaction:
		return true
	}
	return false
}

// abortElsewhere forwards an abort of session id to the gateway running its
// turn, when the relay showed one running; false when none is known.
func (h *hub) abortElsewhere(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.lanes[id]
	if !ok || !l.remote || h.relay == nil {
		return false
	}
	h.relay.Publish(id, relayAbort, nil)
	return true
}

// deliverRemote is the relay's deliver: another gateway's notice goes to
// this gateway's clients of the session, and its turn, as OpenClaw's
// clients see turns, to the /openclaw connections (ocRemote).
func (s *Server) deliverRemote(id, kind string, data []byte) {
	s.hub.deliver(id, kind, data)
	s.ocRemote(id, kind, data)
}

// ocRemote reports a turn another gateway runs to this gateway's OpenClaw
// clients, as a run of its own (a run ID minted here): it starts with the
// turn's user_message, takes its chunks and tool events, and ends with its
// message_done or error. A resync drops what was being followed: its end
// may be what was lost. Only the relay's listener calls it, one notice at
// a time.
func (s *Server) ocRemote(id, kind string, data []byte) {
	if kind == relayResync {
		clear(s.ocRemoteRuns)
		return
	}
	if !s.oc.listening() && len(s.ocRemoteRuns) == 0 {
		return
	}
	run := s.ocRemoteRuns[id]
	if kind == relayChunk {
		if run != nil {
			s.ocText(run, string(data))
		}
		return
	}
	if kind != relayEvent {
		return
	}
	var ev struct {
		Type       string          `json:"type"`
		ToolName   string          `json:"toolName"`
		ToolCallID string          `json:"toolCallId"`
		Input      json.RawMessage `json:"input"`
		Output     string          `json:"output"`
		IsError    bool            `json:"isError"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	switch {
	case ev.Type == protocol.TypeUserMessage:
		run = ocRunOf(id, job{})
		s.ocRemoteRuns[id] = run
		s.ocStart(context.Background(), run)
	case run == nil:
	case ev.Type == protocol.TypeToolStart:
		s.ocTool(run, core.ToolCall{ID: ev.ToolCallID, Name: ev.ToolName, Input: ev.Input}, nil)
	case ev.Type == protocol.TypeToolDone:
		s.ocTool(run, core.ToolCall{}, &core.ToolCallRecord{ID: ev.ToolCallID, Name: ev.ToolName, Output: ev.Output, IsError: ev.IsError})
	case endsTurn(data) && ev.Type != protocol.TypeCompaction:
		delete(s.ocRemoteRuns, id)
		s.ocEnd(run, data)
	}
}
