package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/turn"
)

// maxFrame is the largest client frame accepted; a larger one closes the
// connection with 1009 (message too big).
const maxFrame = 1 << 20

// upgrade checks the request's Origin, counts its handler in (Shutdown
// waits for it) and accepts the WebSocket; what it refuses gets its HTTP
// error, logged under name. When it succeeds the caller must call
// s.handlers.Done once it returns.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, name string) (*websocket.Conn, bool) {
	if err := s.checkOrigin(r); err != nil {
		s.log.Warn(name+" upgrade refused: foreign Origin", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, err.Error())
		return nil, false
	}
	if !s.enter() {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "the gateway is shutting down")
		return nil, false
	}
	// Accept checks Origin again, more loosely (it trusts any Host).
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  s.opt.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.handlers.Done()
		s.log.Info(name+" upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return nil, false // Accept has written the HTTP error
	}
	return ws, true
}

// serveWS upgrades the request and runs the connection until it closes. A
// bad ?sessionId= is refused with a plain 400 before the upgrade; the
// session is opened only once the upgrade (and its Origin check) succeeded,
// so a refused request leaves nothing behind.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("sessionId")
	if id != "" {
		if err := protocol.ValidateSessionID(id); err != nil {
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "sessionId: "+err.Error())
			return
		}
	}
	ws, ok := s.upgrade(w, r, "websocket")
	if !ok {
		return
	}
	defer s.handlers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newConn(ctx, ws, cmp.Or(s.opt.Keepalive, defaultKeepalive))
	if !s.addConn(c) {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.removeConn(c)
	meta, resumed, err := s.connectSession(id)
	if err != nil {
		s.log.Error("websocket session not opened", "session", id, "err", err)
		ws.Close(websocket.StatusInternalError, "the session could not be opened")
		return
	}
	ws.SetReadLimit(maxFrame)

	// connected goes first, and the connection is attached before the
	// client can read it (see hub.join).
	s.hub.join(c, meta, protocol.Encode(protocol.Connected{Type: protocol.TypeConnected, SessionID: meta.SessionID, Resumed: resumed}))
	c.startKeepalive()
	s.readLoop(ctx, c)

	s.hub.detach(c)
	c.kill(websocket.StatusNormalClosure, "")
	c.closed()
	cancel()
	c.wait()
}

// connectSession picks the session of a new connection: the one named by
// ?sessionId= (a valid ID, created with exactly that ID when unknown), else
// the most recently active webchat session, else a new one.
func (s *Server) connectSession(id string) (session.Meta, bool, error) {
	if id != "" {
		m, created, err := s.store.Create(id, session.DefaultChannel)
		return m, !created, err
	}
	if m, ok, err := s.store.Latest(session.DefaultChannel); ok || err != nil {
		return m, true, err
	}
	m, created, err := s.store.Create(uuid.NewString(), session.DefaultChannel)
	return m, !created, err
}

// readLoop handles client frames until the connection ends. Bad frames get
// an error event and the connection stays open.
func (s *Server) readLoop(ctx context.Context, c *conn) {
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			if !isNormalClose(err) {
				s.log.Debug("websocket closed", "err", err)
			}
			return
		}
		if typ != websocket.MessageText {
			c.kill(websocket.StatusUnsupportedData, "binary frames are not supported: send JSON text frames")
			return
		}
		if !utf8.Valid(data) { // RFC 6455 §8.1: fail the connection with 1007
			c.kill(websocket.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
			return
		}
		ev, derr := protocol.DecodeClientEvent(data)
		if derr != nil {
			c.reply(errorEvent(derr.Code, derr.Message, ""))
			continue
		}
		switch ev.Type {
		case protocol.TypePing:
			c.reply(protocol.Encode(protocol.Pong{Type: protocol.TypePong}))
		case protocol.TypeAbort:
			id := ev.SessionID
			if id == "" {
				id = s.hub.sessionOf(c)
			}
			// The turn to stop is the one whose reply streams: when
			// another gateway runs it (this gateway's turn of the session,
			// if any, waits for it), it is stopped there and its end comes
			// back through the relay.
			if !s.hub.abortElsewhere(id) && !s.hub.abort(id, core.ErrAborted) {
				c.reply(errorEvent(protocol.CodeNotRunning, "no turn is running on this session", id))
			}
		case protocol.TypeMessage:
			s.handleMessage(c, ev)
		case protocol.TypeCompact:
			s.handleCompact(c, ev)
		}
	}
}

// handleMessage routes a user message to its session's lane, attaching the
// connection to that session when the message names one.
func (s *Server) handleMessage(c *conn, ev protocol.ClientEvent) {
	id := ev.SessionID
	if id == "" {
		id = s.hub.sessionOf(c)
	}
	// Also for the attached session: it may have been archived by another
	// process meanwhile, and then the ID starts a new one, of the channel
	// of the client that sends to it, sharing nothing with the archive.
	m, _, err := s.store.Create(id, s.hub.channelOf(c))
	if err != nil {
		c.reply(errorEvent(protocol.CodeInternal, "cannot open session: "+err.Error(), id))
		return
	}
	if ev.SessionID != "" {
		s.hub.attach(c, m)
	}
	if r := s.hub.enqueue(id, job{content: ev.Content, from: c, channel: s.hub.channelOf(c)}); r != enqueued {
		code, msg := refusal(r, s.hub.maxBytes)
		c.reply(errorEvent(code, msg, id))
	}
}

// refusal is the error code and message of a job enqueue did not accept.
func refusal(r enqueueResult, maxBytes int) (protocol.Code, string) {
	switch r {
	case queueFull:
		return protocol.CodeQueueFull, "too many messages are waiting on this session; wait for a reply"
	case budgetFull:
		return protocol.CodeQueueFull, fmt.Sprintf("messages waiting for their turn fill the gateway's budget of %d bytes; wait for replies", maxBytes)
	}
	return protocol.CodeShuttingDown, "the gateway is shutting down; the message was not accepted"
}

func errorEvent(code protocol.Code, msg, sessionID string) []byte {
	return turn.ErrorEvent(code, msg, sessionID)
}

// statusOf is the HTTP status of a store error.
func statusOf(err error) int {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, session.ErrInvalidID):
		return http.StatusBadRequest
	case errors.Is(err, session.ErrBusy):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// codeOf is the wire code of a store error.
func codeOf(err error) protocol.Code {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return protocol.CodeNotFound
	case errors.Is(err, session.ErrInvalidID):
		return protocol.CodeBadRequest
	case errors.Is(err, session.ErrBusy):
		return protocol.CodeConflict
	default:
		return protocol.CodeInternal
	}
}
