package gateway

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/openclaw"
	"github.com/miniclaw/miniclaw/internal/session"
)

// OpenClaw's gateway protocol (version 4) at GET /openclaw, for OpenClaw's
// own clients (its CLI and TUI, the openclaw-node client). The pure
// protocol is internal/openclaw; docs/openclaw.md says what is served.

const (
	// ocHandshakeTimeout bounds the wait for the connect request.
	ocHandshakeTimeout = 10 * time.Second
	// ocPreauthFrame caps frames before the handshake, as OpenClaw does.
	ocPreauthFrame = 64 << 10
	// DefaultOpenClawTick is the interval of tick events.
	DefaultOpenClawTick = 15 * time.Second
	// ocChannel is the channel of sessions an OpenClaw client creates.
	ocChannel = "openclaw"
	// ocHistoryLimit is chat.history's default page.
	ocHistoryLimit = 200
)

// ocMethods are the methods served, as hello-ok advertises them.
func ocMethods() []string {
	return []string{"health", "sessions.list", "sessions.subscribe", "sessions.unsubscribe",
		"sessions.messages.subscribe", "sessions.messages.unsubscribe", "sessions.describe",
		"chat.history", "chat.send", "chat.abort", "agent", "agents.list", "commands.list"}
}

// ocConn is an OpenClaw client's connection, once it passed the handshake.
type ocConn struct {
	*conn
	id string
}

func (s *Server) serveOpenClaw(w http.ResponseWriter, r *http.Request) {
	ws, ok := s.upgrade(w, r, "openclaw")
	if !ok {
		return
	}
	defer s.handlers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &ocConn{id: uuid.NewString()}
	hello, ok := s.ocHandshake(ws, r, c.id)
	if !ok {
		return
	}
	c.conn = newConn(ctx, ws, cmp.Or(s.opt.Keepalive, defaultKeepalive))
	if !s.addConn(c.conn) {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.removeConn(c.conn)
	// Registered before hello-ok is queued: a client that has read it
	// misses no event.
	s.oc.add(c)
	c.enqueue(hello)
	ws.SetReadLimit(maxFrame)
	c.startKeepalive()
	var ticks sync.WaitGroup
	ticks.Add(1)
	go func() {
		defer ticks.Done()
		s.ocTicks(ctx, c)
	}()
	s.ocReadLoop(ctx, c)

	s.oc.remove(c)
	c.kill(websocket.StatusNormalClosure, "")
	c.closed()
	cancel()
	ticks.Wait()
	c.wait()
}

// ocHandshake sends connect.challenge and checks the connect request. On
// success it returns the encoded hello-ok; on failure it has answered the
// request with the error and closed the connection with 1008.
func (s *Server) ocHandshake(ws *websocket.Conn, r *http.Request, connID string) ([]byte, bool) {
	// The wait ends with the turns' context too, which Shutdown cancels
	// before it waits for handlers: a silent client does not hold it up.
	hctx, cancel := context.WithTimeout(s.hub.base, ocHandshakeTimeout)
	defer cancel()
	ws.SetReadLimit(ocPreauthFrame)
	nonce := uuid.NewString()
	if err := ws.Write(hctx, websocket.MessageText, openclaw.Event("connect.challenge", openclaw.Challenge{Nonce: nonce, TS: time.Now().UnixMilli()})); err != nil {
		ws.CloseNow()
		return nil, false
	}
	typ, data, err := ws.Read(hctx)
	if err != nil {
		s.log.Debug("openclaw: no connect request", "remote", r.RemoteAddr, "err", err)
		ws.CloseNow()
		return nil, false
	}
	var req openclaw.Request
	var p openclaw.ConnectParams
	var fail *openclaw.ErrorShape
	switch {
	case typ != websocket.MessageText || !utf8.Valid(data):
		fail = openclaw.Errorf(openclaw.CodeInvalidRequest, "frames are JSON text")
	default:
		req, fail = openclaw.DecodeRequest(data)
	}
	if fail == nil && req.Method != "connect" {
		fail = openclaw.Errorf(openclaw.CodeInvalidRequest, "the first request must be connect, not %s", req.Method)
	}
	if fail == nil {
		fail = req.Decode(&p)
	}
	if fail == nil {
		fail = openclaw.Handshake{Token: s.opt.Token, Nonce: nonce, Now: time.Now(), Loopback: loopbackPeer(r.RemoteAddr)}.Check(p)
	}
	if fail != nil {
		s.log.Info("openclaw connect refused", "remote", r.RemoteAddr, "client", p.Client.ID, "err", fail)
		ws.Write(hctx, websocket.MessageText, openclaw.Fail(req.ID, fail))
		ws.Close(websocket.StatusPolicyViolation, closeReason(fail.Message))
		return nil, false
	}
	return openclaw.OK(req.ID, s.ocHello(connID, p)), true
}

// closeReason fits a message in a close frame (123 bytes).
func closeReason(msg string) string {
	for len(msg) > 123 {
		_, size := utf8.DecodeLastRuneInString(msg)
		msg = msg[:len(msg)-size]
	}
	return msg
}

// loopbackPeer reports whether a request's remote address is loopback.
func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

func (s *Server) ocTick() time.Duration { return cmp.Or(s.opt.OpenClawTick, DefaultOpenClawTick) }

// ocHello is the hello-ok payload. Scopes are granted as asked: miniclaw
// has one operator, and the shared token (or loopback without one) is what
// admits it.
func (s *Server) ocHello(connID string, p openclaw.ConnectParams) map[string]any {
	uptime := time.Since(s.start).Milliseconds()
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{
		"type":     "hello-ok",
		"protocol": openclaw.Protocol,
		"server":   map[string]any{"version": "miniclaw", "connId": connID},
		"features": map[string]any{"methods": ocMethods(), "events": []string{"connect.challenge", "tick", "chat", "agent"}},
		"snapshot": map[string]any{
			"presence":        []any{},
			"health":          map[string]any{"ok": true, "ts": time.Now().UnixMilli()},
			"stateVersion":    map[string]any{"presence": 0, "health": 0},
			"uptimeMs":        uptime,
			"sessionDefaults": map[string]any{"defaultAgentId": "main", "mainKey": "main", "mainSessionKey": openclaw.MainKey},
		},
		"auth":   map[string]any{"role": p.Role, "scopes": scopes},
		"policy": map[string]any{"maxPayload": maxFrame, "maxBufferedBytes": sendQueueBytes, "tickIntervalMs": s.ocTick().Milliseconds()},
	}
}

// ocTicks sends a tick event every tick interval until ctx ends.
func (s *Server) ocTicks(ctx context.Context, c *ocConn) {
	t := time.NewTicker(s.ocTick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.enqueue(openclaw.Event("tick", map[string]any{"ts": now.UnixMilli()}))
		}
	}
}

// ocReadLoop answers requests until the connection ends. Every request gets
// a response; a bad one an error response, and the connection stays open.
func (s *Server) ocReadLoop(ctx context.Context, c *ocConn) {
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			if !isNormalClose(err) {
				s.log.Debug("openclaw connection closed", "err", err)
			}
			return
		}
		if typ != websocket.MessageText || !utf8.Valid(data) {
			c.kill(websocket.StatusUnsupportedData, "frames are JSON text")
			return
		}
		req, fail := openclaw.DecodeRequest(data)
		var payload any
		if fail == nil {
			payload, fail = s.ocCall(c, req)
		}
		switch {
		case fail != nil:
			c.reply(openclaw.Fail(req.ID, fail))
		case payload != nil:
			c.reply(openclaw.OK(req.ID, payload))
		}
	}
}

// ocCall runs one method. A nil payload and error means the method has
// answered itself (chat.send and agent, whose acknowledgement must be
// queued before their run starts).
func (s *Server) ocCall(c *ocConn, req openclaw.Request) (any, *openclaw.ErrorShape) {
	switch req.Method {
	case "connect":
		return nil, openclaw.Errorf(openclaw.CodeInvalidRequest, "already connected: connect is only the first request")
	case "health":
		return map[string]any{"ok": true, "ts": time.Now().UnixMilli(), "durationMs": 0,
			"uptimeMs": time.Since(s.start).Milliseconds(), "sessions": s.store.Len(), "connections": s.Connections()}, nil
	case "sessions.list":
		var p struct {
			Limit int `json:"limit"`
		}
		if fail := req.Decode(&p); fail != nil {
			return nil, fail
		}
		return s.ocSessions(p.Limit)
	case "sessions.subscribe":
		// Chat and agent events go to every connection; sessions.changed
		// is not sent. A non-empty params object asks for the list too.
		if len(req.Params) > 2 {
			list, fail := s.ocSessions(0)
			if fail != nil {
				return nil, fail
			}
			return map[string]any{"subscribed": true, "list": list}, nil
		}
		return map[string]any{"subscribed": true}, nil
	case "sessions.unsubscribe":
		return map[string]any{"subscribed": false}, nil
	case "sessions.messages.subscribe", "sessions.messages.unsubscribe", "sessions.describe":
		var p struct {
			Key string `json:"key"`
		}
		if fail := req.Decode(&p); fail != nil {
			return nil, fail
		}
		key := openclaw.CanonicalKey(p.Key)
		switch req.Method {
		case "sessions.describe":
			return s.ocDescribe(key), nil
		case "sessions.messages.subscribe":
			return map[string]any{"subscribed": true, "key": key}, nil
		}
		return map[string]any{"subscribed": false, "key": key}, nil
	case "chat.history":
		return s.ocHistory(req)
	case "chat.send", "agent":
		return nil, s.ocSend(c, req)
	case "chat.abort":
		return s.ocAbort(req)
	case "agents.list":
		return map[string]any{"defaultId": "main", "mainKey": "main", "scope": "per-sender",
			"agents": []any{map[string]any{"id": "main", "name": "miniclaw"}}}, nil
	case "commands.list":
		return map[string]any{"commands": []any{}}, nil
	}
	return nil, openclaw.Errorf(openclaw.CodeInvalidRequest, "unknown method: %s (miniclaw serves %s)", req.Method, strings.Join(ocMethods(), ", "))
}

// ocRow is a session as sessions.list shows it.
func (s *Server) ocRow(m session.Meta) map[string]any {
	key := openclaw.SessionKey(m.SessionID)
	row := map[string]any{"key": key, "sessionId": m.SessionID, "kind": "direct", "agentId": "main",
		"channel": m.Channel, "isMain": key == openclaw.MainKey, "createdAt": m.CreatedAt, "updatedAt": m.UpdatedAt,
		"hasActiveRun": s.hub.busy(m.SessionID)}
	if m.Title != "" {
		row["displayName"], row["derivedTitle"] = m.Title, m.Title
	}
	if run := s.oc.activeRun(m.SessionID); run != "" {
		row["activeRunIds"] = []string{run}
	}
	return row
}

func (s *Server) ocSessions(limit int) (map[string]any, *openclaw.ErrorShape) {
	metas, err := s.store.List()
	if err != nil {
		s.log.Error("session store error", "method", "sessions.list", "err", err)
		return nil, openclaw.Errorf(openclaw.CodeUnavailable, "the session store failed; the gateway's log says why")
	}
	if limit > 0 && limit < len(metas) {
		metas = metas[:limit]
	}
	rows := make([]any, len(metas))
	for i, m := range metas {
		rows[i] = s.ocRow(m)
	}
	return map[string]any{"ts": time.Now().UnixMilli(), "count": len(rows), "sessions": rows}, nil
}

func (s *Server) ocDescribe(key string) map[string]any {
	if id, err := openclaw.SessionID(key); err == nil {
		if m, err := s.store.Get(id); err == nil {
			return s.ocRow(m)
		}
	}
	return map[string]any{"key": key, "kind": "direct", "agentId": "main"}
}

// ocSessionID resolves a request's session key; "" is the main session.
func ocSessionID(key string) (string, *openclaw.ErrorShape) {
	id, err := openclaw.SessionID(key)
	if err != nil {
		return "", openclaw.Errorf(openclaw.CodeInvalidRequest, "sessionKey: %v", err)
	}
	return id, nil
}

func (s *Server) ocHistory(req openclaw.Request) (any, *openclaw.ErrorShape) {
	var p struct {
		SessionKey string `json:"sessionKey"`
		Limit      int    `json:"limit"`
	}
	if fail := req.Decode(&p); fail != nil {
		return nil, fail
	}
	id, fail := ocSessionID(p.SessionKey)
	if fail != nil {
		return nil, fail
	}
	limit := p.Limit
	if limit <= 0 || limit > maxPage {
		limit = ocHistoryLimit
	}
	messages := []any{}
	page, err := s.store.Page(id, -1, limit)
	switch {
	case errors.Is(err, session.ErrNotFound):
	case err != nil:
		s.log.Error("openclaw chat.history: store error", "session", id, "err", err)
		return nil, openclaw.Errorf(openclaw.CodeUnavailable, "the session store failed; the gateway's log says why")
	}
	for _, m := range page.Messages {
		if m.Role == core.RoleUser || m.Role == core.RoleAssistant {
			messages = append(messages, ocMessage(m.Role, m.Content, m.Timestamp))
		}
	}
	return map[string]any{"sessionKey": openclaw.CanonicalKey(p.SessionKey), "sessionId": id, "messages": messages}, nil
}

// ocSend starts a run (chat.send, agent): acknowledge, then queue the
// message on the session's lane like a /ws message. A repeated
// idempotencyKey is answered from its run and not run again.
func (s *Server) ocSend(c *ocConn, req openclaw.Request) *openclaw.ErrorShape {
	var p struct {
		SessionKey     string `json:"sessionKey"`
		Message        string `json:"message"`
		IdempotencyKey string `json:"idempotencyKey"`
	}
	if fail := req.Decode(&p); fail != nil {
		return fail
	}
	if strings.TrimSpace(p.Message) == "" {
		return openclaw.Errorf(openclaw.CodeInvalidRequest, "%s: message is empty", req.Method)
	}
	if p.IdempotencyKey == "" {
		// OpenClaw's schema requires it, but openclaw-node's
		// sessions.send leaves it out: such a request is simply not
		// deduplicated.
		p.IdempotencyKey = uuid.NewString()
	}
	id, fail := ocSessionID(p.SessionKey)
	if fail != nil {
		return fail
	}
	// The agent method's run is the client's key: openclaw-node matches
	// its events by it. chat.send's is the gateway's own: OpenClaw's TUI
	// copes with a chat.send ack it reads after the run's end only when
	// the ack names another run than its key (see firstEventDelay).
	runID := p.IdempotencyKey
	if req.Method == "chat.send" {
		runID = uuid.NewString()
	}
	if prev, fresh := s.oc.claim(p.IdempotencyKey, runID, id); !fresh {
		c.reply(openclaw.OK(req.ID, map[string]any{"runId": prev.runID, "status": prev.status(s.oc)}))
		return nil
	}
	if _, _, err := s.store.Create(id, ocChannel); err != nil {
		s.oc.forget(p.IdempotencyKey)
		s.log.Error("openclaw: session not opened", "session", id, "err", err)
		return openclaw.Errorf(openclaw.CodeUnavailable, "the session could not be opened; the gateway's log says why")
	}
	run := &ocRun{id: runID, key: openclaw.SessionKey(id), idemKey: p.IdempotencyKey, session: id}
	ack := map[string]any{"runId": runID, "status": "started"}
	if req.Method == "agent" {
		run.replyTo, run.reqID = c, req.ID
		ack = map[string]any{"runId": runID, "status": "accepted", "acceptedAt": time.Now().UnixMilli()}
	}
	c.reply(openclaw.OK(req.ID, ack))
	run.notBefore = time.Now().Add(firstEventDelay)
	if res := s.hub.enqueue(id, job{content: p.Message, ocRun: run}); res != enqueued {
		s.oc.forget(p.IdempotencyKey)
		_, msg := refusal(res, s.hub.maxBytes)
		s.ocChatEvent(run, map[string]any{"state": "error", "errorMessage": msg})
		if run.replyTo != nil {
			c.reply(openclaw.Fail(req.ID, &openclaw.ErrorShape{Code: openclaw.CodeUnavailable, Message: msg, Retryable: true}))
		}
	}
	return nil
}

func (s *Server) ocAbort(req openclaw.Request) (any, *openclaw.ErrorShape) {
	var p struct {
		SessionKey string `json:"sessionKey"`
		RunID      string `json:"runId"`
	}
	if fail := req.Decode(&p); fail != nil {
		return nil, fail
	}
	id, fail := ocSessionID(p.SessionKey)
	if fail != nil {
		return nil, fail
	}
	run := s.oc.activeRun(id)
	aborted := run != "" && (p.RunID == "" || p.RunID == run) && s.hub.abort(id, core.ErrAborted)
	runIDs := []string{}
	if aborted {
		runIDs = append(runIDs, run)
	}
	return map[string]any{"ok": true, "aborted": aborted, "runIds": runIDs}, nil
}
