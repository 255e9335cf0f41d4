package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// dialTransport is shared by every WebSocket dial; upgraded connections
// leave the transport's pool, so it only bounds the handshakes.
var dialTransport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	DisableCompression:  true,
	MaxIdleConnsPerHost: -1,
}

var dialClient = &http.Client{Transport: dialTransport}

// wsURL is the WebSocket URL of a session on the child.
func (c *child) wsURL(sessionID string) string {
	return "ws://127.0.0.1:" + strconv.Itoa(c.port) + "/ws?sessionId=" + sessionID
}

// dialSession opens a WebSocket on a session and waits for `connected`.
func dialSession(ctx context.Context, url, sessionID string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      dialClient,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	typ, data, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("waiting for connected: %w", err)
	}
	var ev struct {
		Type      string `json:"type"`
		SessionID string `json:"sessionId"`
	}
	if typ != websocket.MessageText || json.Unmarshal(data, &ev) != nil || ev.Type != "connected" || ev.SessionID != sessionID {
		ws.CloseNow()
		return nil, fmt.Errorf("first event is not connected{%s}: %s", sessionID, data)
	}
	return ws, nil
}

// turnEvent is the union of the server events of a turn, agent or long
// session.
type turnEvent struct {
	Type     string `json:"type"`
	Content  string `json:"content"`
	ToolName string `json:"toolName"`
	Output   string `json:"output"`
	IsError  bool   `json:"isError"`
	Message  string `json:"message"`
	Code     string `json:"code"`
	// The compaction event's fields; its type and sessionId are shadowed
	// by the fields above, which json fills instead.
	protocol.Compaction
	Context *protocol.Context `json:"context"`
}

// sendMessage writes a chat message; sent is when the write began, after
// the encoding, so a timed turn leaves out the client's JSON work.
func sendMessage(ctx context.Context, ws *websocket.Conn, content string) (sent time.Time, err error) {
	payload, _ := json.Marshal(map[string]string{"type": "message", "content": content})
	sent = time.Now()
	if err := ws.Write(ctx, websocket.MessageText, payload); err != nil {
		return sent, fmt.Errorf("write: %w", err)
	}
	return sent, nil
}

// readEvent reads the next server event into ev; at is when it arrived,
// before the decoding. An error means the connection is no longer usable.
func readEvent(ctx context.Context, ws *websocket.Conn, ev any) (at time.Time, err error) {
	_, data, err := ws.Read(ctx)
	if err != nil {
		return at, fmt.Errorf("read: %w", err)
	}
	at = time.Now()
	if err := json.Unmarshal(data, ev); err != nil {
		return at, fmt.Errorf("bad event %.200s: %w", data, err)
	}
	return at, nil
}

// dialMany opens one connection per session ID, the i-th on gateway
// cs[i mod len(cs)], at most par handshakes at a time. On error it closes
// what it opened.
func dialMany(ctx context.Context, cs []*child, ids []string, par int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, len(ids))
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range par {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				ws, err := dialSession(ctx, cs[i%len(cs)].wsURL(ids[i]), ids[i])
				if err != nil {
					once.Do(func() { first = fmt.Errorf("connection %d (%s): %w", i, ids[i], err); cancel() })
					return
				}
				conns[i] = ws
			}
		})
	}
	wg.Wait()
	if first != nil {
		closeAll(conns)
		return nil, first
	}
	return conns, nil
}

// closeAll drops connections without the close handshake (which would wait
// for the peer), in parallel.
func closeAll(conns []*websocket.Conn) {
	var wg sync.WaitGroup
	ch := make(chan *websocket.Conn, len(conns))
	for _, ws := range conns {
		if ws != nil {
			ch <- ws
		}
	}
	close(ch)
	for range 16 {
		wg.Go(func() {
			for ws := range ch {
				ws.CloseNow()
			}
		})
	}
	wg.Wait()
}

var (
	prefixChunk = []byte(`{"type":"chunk"`)
	prefixDone  = []byte(`{"type":"message_done"`)
	prefixError = []byte(`{"type":"error"`)
)

func isType(data, prefix []byte) bool { return bytes.HasPrefix(data, prefix) }
