package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/openclaw"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

// firstEventDelay holds back the first event of a run started by an
// OpenClaw client (chat.send, agent) until this long after its
// acknowledgement was queued. OpenClaw's TUI registers the run ID from the
// chat.send response only some 20–50 ms after it arrives; chat events of a
// run it does not know yet are taken for another client's run, and the TUI
// then stays on "agent is busy" forever. OpenClaw's own gateway is slow
// enough never to hit this; miniclaw answers in a few milliseconds, so it
// waits. Later events are not delayed, and a run started from /ws is not
// delayed at all. On a loaded machine the TUI can take longer than that;
// then the chat.send ack, which names a run ID of the gateway's and not the
// TUI's own key, lets it see that the run already ended.
const firstEventDelay = 50 * time.Millisecond

// maxIdempotencyKeys bounds the remembered chat.send/agent keys; the oldest
// is forgotten first.
const maxIdempotencyKeys = 1024

// ocDeltaEvery spaces the reports of a streaming reply. Each chat delta
// carries the whole message so far, as OpenClaw's protocol has it, so one
// per model chunk would send a long reply's text over and over (thousands of
// chunks fill a client's send queue); chunks arriving within this interval
// go out together instead, and the rest before a tool call or the end.
const ocDeltaEvery = 100 * time.Millisecond

// ocRun is one turn as OpenClaw's clients see it: a run ID, the session
// key, a per-run event sequence and the reply so far. It lives on the
// turn's goroutine (no locking); the hub hands it over in the job.
type ocRun struct {
	id        string
	key       string
	idemKey   string    // the client's idempotencyKey; "" for a run from /ws
	session   string    // the miniclaw session ID
	notBefore time.Time // when the first event may go out (zero: at once)
	// replyTo and reqID, for a run started by the agent method, are where
	// its final response goes.
	replyTo *ocConn
	reqID   string

	chatSeq, agentSeq int // per-run sequences of chat and agent events
	text              strings.Builder
	sent              int       // bytes of text already reported
	lastDelta         time.Time // when text was last reported
}

// ocHub is the OpenClaw side of the gateway: its connections, which all
// receive the chat and agent events of every session (OpenClaw's clients
// filter them by sessionKey and runId, as they do with OpenClaw's own
// gateway), and the idempotency keys of the runs they started.
type ocHub struct {
	mu    sync.Mutex
	conns map[*ocConn]struct{}
	runs  map[string]*ocRunState // idempotency key → run
	order []string               // keys of runs, oldest first
	// active is the run ID of each session's running turn.
	active map[string]string
}

// ocRunState is what a repeated idempotency key is answered from.
type ocRunState struct {
	runID   string
	session string
	done    bool
}

func newOCHub() *ocHub {
	return &ocHub{conns: map[*ocConn]struct{}{}, runs: map[string]*ocRunState{}, active: map[string]string{}}
}

func (h *ocHub) add(c *ocConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c] = struct{}{}
}

func (h *ocHub) remove(c *ocConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// broadcast queues an event on every OpenClaw connection. Without any, the
// event is not even encoded: a turn of a gateway nobody reaches through
// /openclaw does no work for it (a chat event carries the whole reply).
func (h *ocHub) broadcast(name string, payload any) {
	if !h.listening() {
		return
	}
	frame := openclaw.Event(name, payload)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.enqueue(frame)
	}
}

// listening reports whether any OpenClaw client is connected.
func (h *ocHub) listening() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns) > 0
}

// claim records a new run under an idempotency key. It returns the
// existing run and false when the key was seen before: that run is not
// started again.
func (h *ocHub) claim(key, runID, session string) (*ocRunState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.runs[key]; ok {
		return r, false
	}
	if len(h.order) >= maxIdempotencyKeys {
		delete(h.runs, h.order[0])
		h.order = h.order[1:]
	}
	r := &ocRunState{runID: runID, session: session}
	h.runs[key] = r
	h.order = append(h.order, key)
	return r, true
}

// forget drops a key whose run was refused, so a retry can run.
func (h *ocHub) forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.runs, key)
}

// setActive records (runID != "") or clears the running run of a session.
func (h *ocHub) setActive(session, runID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if runID == "" {
		delete(h.active, session)
	} else {
		h.active[session] = runID
	}
}

// activeRun is the run ID of session's running turn, or "".
func (h *ocHub) activeRun(session string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active[session]
}

// finish marks the run of key done.
func (h *ocHub) finish(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.runs[key]; ok {
		r.done = true
	}
}

// status is how a repeated key's run is reported.
func (r *ocRunState) status(h *ocHub) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.done {
		return "ok"
	}
	return "in_flight"
}

// ocRunOf is the run a job reports under: the one an OpenClaw client
// started, or a new one for a message from /ws.
func ocRunOf(id string, j job) *ocRun {
	if j.ocRun != nil {
		return j.ocRun
	}
	return &ocRun{id: uuid.NewString(), key: openclaw.SessionKey(id), session: id}
}

// ocStart sends the run's lifecycle start, once its pacing delay is over.
func (s *Server) ocStart(ctx context.Context, r *ocRun) {
	s.oc.setActive(r.session, r.id)
	if wait := time.Until(r.notBefore); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	s.ocAgentEvent(r, "lifecycle", map[string]any{"phase": "start", "startedAt": time.Now().UnixMilli()})
}

// ocText takes a chunk of the reply, reported at most every ocDeltaEvery.
// Without OpenClaw clients it is dropped (a client connecting mid-reply
// gets the rest of it in deltas, and all of it in the final event).
func (s *Server) ocText(r *ocRun, text string) {
	if !s.oc.listening() {
		return
	}
	r.text.WriteString(text)
	if time.Since(r.lastDelta) >= ocDeltaEvery {
		s.ocFlush(r)
	}
}

// ocFlush reports the reply's text not reported yet: a chat delta with the
// cumulative message, and the agent assistant stream.
func (s *Server) ocFlush(r *ocRun) {
	all := r.text.String()
	if len(all) == r.sent {
		return
	}
	delta := all[r.sent:]
	r.sent, r.lastDelta = len(all), time.Now()
	s.ocChatEvent(r, map[string]any{"state": "delta", "deltaText": delta, "message": ocAssistantMessage(all)})
	s.ocAgentEvent(r, "assistant", map[string]any{"text": all, "delta": delta})
}

// ocTool reports a tool call starting (done == nil) or done, on the agent
// tool stream.
func (s *Server) ocTool(r *ocRun, call core.ToolCall, done *core.ToolCallRecord) {
	s.ocFlush(r)
	data := map[string]any{"phase": "start", "name": call.Name, "toolCallId": call.ID, "args": call.Input}
	if done != nil {
		data = map[string]any{"phase": "result", "name": done.Name, "toolCallId": done.ID, "result": done.Output, "isError": done.IsError}
	}
	s.ocAgentEvent(r, "tool", data)
}

// ocEnd reports the end of the turn from the event that ended it
// (message_done or error), and answers an agent request.
func (s *Server) ocEnd(r *ocRun, final []byte) {
	var end struct {
		Type       string        `json:"type"`
		Content    string        `json:"content"`
		StopReason string        `json:"stopReason"`
		Usage      *core.Usage   `json:"usage"`
		Code       protocol.Code `json:"code"`
		Message    string        `json:"message"`
	}
	// Not running any more for chat.abort and sessions.list once a client
	// can have seen the end.
	s.oc.setActive(r.session, "")
	if r.idemKey != "" {
		s.oc.finish(r.idemKey)
	}
	if r.replyTo == nil && !s.oc.listening() {
		return // nobody to tell: the final event, a whole reply, is not even read
	}
	json.Unmarshal(final, &end) // our own encoding; a zero end reads as an error
	s.ocFlush(r)
	chat := map[string]any{}
	var agentResult func() []byte // the agent method's final response
	switch {
	case end.Type == protocol.TypeMessageDone:
		chat["state"], chat["message"], chat["stopReason"] = "final", ocAssistantMessage(end.Content), end.StopReason
		if end.Usage != nil {
			chat["usage"] = ocUsage(*end.Usage)
		}
		s.ocChatEvent(r, chat)
		s.ocAgentEvent(r, "lifecycle", map[string]any{"phase": "end", "endedAt": time.Now().UnixMilli()})
		agentResult = func() []byte {
			return openclaw.OK(r.reqID, map[string]any{"runId": r.id, "status": "ok", "summary": "completed",
				"result": map[string]any{"payloads": []any{map[string]any{"text": end.Content}}, "meta": map[string]any{"stopReason": end.StopReason}}})
		}
	case end.Code == protocol.CodeAborted:
		chat["state"], chat["stopReason"] = "aborted", "aborted"
		if r.text.Len() > 0 {
			chat["message"] = ocAssistantMessage(r.text.String())
		}
		s.ocChatEvent(r, chat)
		s.ocAgentEvent(r, "lifecycle", map[string]any{"phase": "end", "aborted": true, "endedAt": time.Now().UnixMilli()})
		agentResult = func() []byte {
			return openclaw.OK(r.reqID, map[string]any{"runId": r.id, "status": "aborted", "summary": "aborted"})
		}
	default:
		msg := end.Message
		if msg == "" {
			msg = "the turn failed"
		}
		chat["state"], chat["errorMessage"] = "error", msg
		s.ocChatEvent(r, chat)
		s.ocAgentEvent(r, "lifecycle", map[string]any{"phase": "error", "error": msg, "endedAt": time.Now().UnixMilli()})
		agentResult = func() []byte {
			return openclaw.Fail(r.reqID, &openclaw.ErrorShape{Code: openclaw.CodeUnavailable, Message: msg})
		}
	}
	if r.replyTo != nil {
		r.replyTo.enqueue(agentResult())
	}
}

func (s *Server) ocChatEvent(r *ocRun, payload map[string]any) {
	r.chatSeq++
	payload["runId"], payload["sessionKey"], payload["seq"] = r.id, r.key, r.chatSeq
	s.oc.broadcast("chat", payload)
}

func (s *Server) ocAgentEvent(r *ocRun, stream string, data map[string]any) {
	r.agentSeq++
	s.oc.broadcast("agent", map[string]any{
		"runId": r.id, "seq": r.agentSeq, "stream": stream, "ts": time.Now().UnixMilli(), "data": data,
		"sessionKey": r.key,
	})
}

// ocAssistantMessage is a reply in OpenClaw's message shape.
func ocAssistantMessage(text string) map[string]any {
	return ocMessage(core.RoleAssistant, text, time.Now().UnixMilli())
}

func ocMessage(role, text string, ts int64) map[string]any {
	return map[string]any{"role": role, "content": []any{map[string]any{"type": "text", "text": text}}, "timestamp": ts}
}

func ocUsage(u core.Usage) map[string]any {
	return map[string]any{"input": u.InputTokens, "output": u.OutputTokens, "cacheRead": u.CacheReadTokens,
		"cacheWrite": u.CacheWriteTokens, "totalTokens": u.InputTokens + u.OutputTokens}
}
