package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

// compactResult is the outcome of a /compact job: the event sent to the
// session's clients, or the error code and message.
type compactResult struct {
	ev   protocol.Compaction
	code protocol.Code
	msg  string
}

// runCompact summarises a session's older messages on demand. It runs on
// the session's lane like a turn (and takes the turn lock), so it never
// races one. The compaction event goes to every client of the session; an
// error only to whoever asked (a WebSocket client, or the HTTP handler
// through j.result).
func (s *Server) runCompact(ctx context.Context, id string, j job) []byte {
	res := s.compactNow(ctx, id)
	if j.result != nil {
		j.result <- res
	} else if res.code != "" && j.from != nil {
		j.from.reply(errorEvent(res.code, res.msg, id))
	}
	return nil
}

func (s *Server) compactNow(ctx context.Context, id string) compactResult {
	log := s.log.With("session", id)
	fail := func(ev []byte) compactResult {
		var e protocol.Error
		json.Unmarshal(ev, &e) // encoded by errorEvent
		return compactResult{code: e.Code, msg: e.Message}
	}
	lock, failed := s.turns.Lock(ctx, id, log, s.statusTo(id))
	if failed != nil {
		return fail(failed)
	}
	defer lock.Unlock()
	recent, failed := s.turns.Recent(id, log)
	if failed != nil {
		return fail(failed)
	}
	c, err := s.opt.Runtime.Compact(ctx, id, recent.Messages)
	switch {
	case errors.Is(err, agent.ErrNothingToCompact):
		return compactResult{code: protocol.CodeConflict, msg: err.Error()}
	case err != nil:
		code, level := s.turns.EndCode(ctx, protocol.CodeProvider)
		level("compaction failed", "session", id, "code", code, "err", err)
		return compactResult{code: code, msg: err.Error()}
	}
	ev := s.turns.SaveCompaction(id, recent, c, log)
	s.hub.broadcast(id, protocol.Encode(ev))
	return compactResult{ev: ev}
}

// handleCompact queues a /compact of the client's session (or the one the
// event names, which the connection then follows, as for a message) on its
// lane.
func (s *Server) handleCompact(c *conn, ev protocol.ClientEvent) {
	id := ev.SessionID
	if id == "" {
		id = s.hub.sessionOf(c)
	}
	m, err := s.store.Get(id)
	if err != nil {
		c.reply(errorEvent(codeOf(err), err.Error(), id))
		return
	}
	if ev.SessionID != "" {
		s.hub.attach(c, m)
	}
	if r := s.hub.enqueue(id, job{compact: true, from: c}); r != enqueued {
		code, msg := refusal(r, s.hub.maxBytes)
		c.reply(errorEvent(code, msg, id))
	}
}

// compactSession is POST /api/sessions/{id}/compact: the same as the
// WebSocket's compact event, answered with the compaction's figures (200),
// 409 when there is nothing to compact.
func (s *Server) compactSession(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if !decodeBody(w, r, &body) {
		return
	}
	id := r.PathValue("id")
	if _, err := s.store.Get(id); err != nil {
		s.storeError(w, r, err)
		return
	}
	result := make(chan compactResult, 1) // the lane never blocks on a gone client
	if q := s.hub.enqueue(id, job{compact: true, result: result}); q != enqueued {
		code, msg := refusal(q, s.hub.maxBytes)
		writeError(w, httpStatus(code), code, msg)
		return
	}
	select {
	case res := <-result:
		if res.code != "" {
			writeError(w, httpStatus(res.code), res.code, res.msg)
			return
		}
		writeJSON(w, http.StatusOK, res.ev)
	case <-r.Context().Done():
	}
}

// httpStatus is the HTTP status of an error code a compaction can end with.
func httpStatus(code protocol.Code) int {
	switch code {
	case protocol.CodeConflict, protocol.CodeAborted:
		return http.StatusConflict
	case protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeQueueFull:
		return http.StatusTooManyRequests
	case protocol.CodeShuttingDown:
		return http.StatusServiceUnavailable
	case protocol.CodeProvider:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}
