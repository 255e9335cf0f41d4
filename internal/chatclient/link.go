package chatclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/termsafe"
)

// endpoint is where a gateway answers: its HTTP base URL (for /api) and its
// WebSocket URL (/ws), derived from the one address the user gives.
type endpoint struct {
	http  string // http(s)://host:port[/prefix], no trailing slash
	ws    string // ws(s)://host:port[/prefix]/ws
	token string
}

// parseGateway accepts http(s):// and ws(s):// addresses, with or without a
// trailing /ws, and a bare host:port (taken as http://).
func parseGateway(raw, token string) (endpoint, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("gateway URL %q: %w", raw, err)
	}
	if u.Host == "" {
		return endpoint{}, fmt.Errorf("gateway URL %q: no host", raw)
	}
	var httpScheme, wsScheme string
	switch u.Scheme {
	case "http", "ws":
		httpScheme, wsScheme = "http", "ws"
	case "https", "wss":
		httpScheme, wsScheme = "https", "wss"
	default:
		return endpoint{}, fmt.Errorf("gateway URL %q: scheme must be http, https, ws or wss", raw)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/ws")
	return endpoint{
		http:  httpScheme + "://" + u.Host + path,
		ws:    wsScheme + "://" + u.Host + path + "/ws",
		token: token,
	}, nil
}

func (g endpoint) header() http.Header {
	h := http.Header{}
	if g.token != "" {
		h.Set("Authorization", "Bearer "+g.token)
	}
	return h
}

// event is any server → client event; the fields of all types in one struct.
type event struct {
	Type       string            `json:"type"`
	SessionID  string            `json:"sessionId"`
	Content    string            `json:"content"`
	Resumed    bool              `json:"resumed"`
	ToolName   string            `json:"toolName"`
	ToolCallID string            `json:"toolCallId"`
	Input      json.RawMessage   `json:"input"`
	Output     string            `json:"output"`
	IsError    bool              `json:"isError"`
	Message    string            `json:"message"`
	Code       string            `json:"code"`
	Usage      *core.Usage       `json:"usage"`
	Context    *protocol.Context `json:"context"`
	// A compaction event's figures.
	CoveredMessages int   `json:"coveredMessages"`
	TokensBefore    int64 `json:"tokensBefore"`
	TokensAfter     int64 `json:"tokensAfter"`
	// A tool_progress event's figures.
	Progress float64 `json:"progress"`
	Total    float64 `json:"total"`
}

// link is one WebSocket connection to a session. Its read loop is the only
// reader; the client's loop is the only writer and the only caller of close.
// A keepalive goroutine pings the gateway: a network that silently stopped
// carrying anything would otherwise go unnoticed until TCP gives up, which
// takes minutes.
type link struct {
	ws     *websocket.Conn
	events chan event // closed when the read loop ends
	err    error      // why it ended; read only after events is closed

	stop     context.CancelFunc // ends the keepalive; called by the read loop
	pinger   sync.WaitGroup
	deadPeer atomic.Bool // the keepalive closed the connection
	every    time.Duration
}

// DefaultKeepalive is how often the client pings the gateway; a pong is due
// within half of it.
const DefaultKeepalive = 30 * time.Second

// dialTimeout bounds one connection attempt.
const dialTimeout = 10 * time.Second

// dial connects to the gateway, attached to sessionID ("" lets the gateway
// pick), and starts the read loop. The loop ends when the connection does.
func dial(ctx context.Context, g endpoint, sessionID string, keepalive time.Duration) (*link, error) {
	u := g.ws
	if sessionID != "" {
		u += "?sessionId=" + url.QueryEscape(sessionID)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: g.header()})
	if err != nil {
		return nil, dialError(err, resp)
	}
	// Replies and tool outputs can be large; the gateway bounds them, not us.
	ws.SetReadLimit(64 << 20)
	l := &link{ws: ws, events: make(chan event, 64), every: cmp.Or(keepalive, DefaultKeepalive)}
	var pctx context.Context
	pctx, l.stop = context.WithCancel(context.Background())
	l.pinger.Go(func() { l.keepalive(pctx) })
	go l.readLoop()
	return l, nil
}

// keepalive pings every l.every until ctx ends; an unanswered ping closes
// the connection, which ends the read loop like any other loss.
func (l *link) keepalive(ctx context.Context) {
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, l.every/2)
		err := l.ws.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			l.deadPeer.Store(true)
			l.ws.CloseNow()
			return
		}
	}
}

// dialError explains a refused upgrade with the gateway's own message,
// escaped: `miniclaw chat` prints it on the terminal.
func dialError(err error, resp *http.Response) error {
	if resp == nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return errors.New("the gateway needs a token: pass --token or set MINI_OPENCLAW_TOKEN")
	}
	if msg := apiErrorBody(resp); msg != "" {
		return fmt.Errorf("%s: %s", termsafe.Line(resp.Status), msg)
	}
	return err
}

func (l *link) readLoop() {
	defer close(l.events)
	defer l.stop()
	for {
		typ, data, err := l.ws.Read(context.Background())
		if err != nil {
			l.err = err
			if l.deadPeer.Load() {
				l.err = fmt.Errorf("the gateway did not answer a ping within %s", l.every/2)
			}
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var ev event
		if err := json.Unmarshal(data, &ev); err != nil {
			ev = event{Type: protocol.TypeError, Code: "bad_frame", Message: fmt.Sprintf("unreadable event from the gateway: %v", err)}
		}
		l.events <- ev
	}
}

// writeTimeout bounds one client event; the gateway reads promptly.
const writeTimeout = 10 * time.Second

func (l *link) send(ctx context.Context, v any) error {
	b, err := core.MarshalJSON(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return l.ws.Write(ctx, websocket.MessageText, b)
}

// close ends the connection with a normal closure and waits for the read
// loop, draining the events it still delivers so it never blocks.
func (l *link) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.ws.Close(websocket.StatusNormalClosure, "")
	}()
	for range l.events {
	}
	<-done
	l.pinger.Wait()
}

// apiErrorBody is the message of an {"error":{"code","message"}} body, or
// the body itself when it is not one, escaped: it ends up in errors printed
// on the terminal.
func apiErrorBody(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		return termsafe.Line(fmt.Sprintf("[%s] %s", body.Error.Code, body.Error.Message))
	}
	return termsafe.Line(strings.TrimSpace(string(b)))
}
