package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

const (
	// A connection's send queue is bounded: a reader that falls
	// sendQueueLen events or sendQueueBytes behind is closed (1008) instead
	// of slowing its session's other connections or growing memory without
	// bound (one event alone always fits, however large). Once mergeAfter
	// events wait, a new chunk is merged into the chunk of its session
	// waiting at the tail, so a model that streams faster than one
	// connection can write (thousands of small chunks at once) gives that
	// client fewer, larger chunks instead of closing it.
	sendQueueLen   = 256
	sendQueueBytes = 4 << 20
	mergeAfter     = 16
	writeTimeout   = 10 * time.Second
	pingInterval   = 30 * time.Second
	pingTimeout    = 15 * time.Second
)

// conn is one WebSocket client. The handler goroutine reads; writeLoop is
// the only goroutine that writes frames. enqueue and enqueueChunk may be
// called from any goroutine and never block.
type conn struct {
	ws      *websocket.Conn
	session string // guarded by hub.mu

	mu     sync.Mutex
	queue  []outEvent    // waiting for writeLoop, oldest first
	queued int           // bytes in queue
	ready  chan struct{} // holds a token while queue is not empty

	stopOnce sync.Once
	stop     chan struct{} // closed to end writeLoop
	graceful bool          // set before stop closes: drain the queue, then close 1001
	closers  sync.WaitGroup
}

// outEvent is an event waiting to be written: an encoded event, or, when
// chunkOf is set, the text of one or more chunks of session chunkOf.
type outEvent struct {
	data    []byte
	chunkOf string
}

func newConn(ws *websocket.Conn) *conn {
	return &conn{ws: ws, ready: make(chan struct{}, 1), stop: make(chan struct{})}
}

// enqueue queues an encoded event.
func (c *conn) enqueue(payload []byte) { c.push(outEvent{data: payload}) }

// enqueueChunk queues a chunk of a reply of session id.
func (c *conn) enqueueChunk(id, text string) { c.push(outEvent{data: []byte(text), chunkOf: id}) }

// push adds ev to the queue. When the queue is over its bounds the
// connection is closed with 1008: the client is not reading, and other
// connections must not wait for it.
func (c *conn) push(ev outEvent) {
	c.mu.Lock()
	n := len(c.queue)
	merge := ev.chunkOf != "" && n >= mergeAfter && c.queue[n-1].chunkOf == ev.chunkOf
	full := n > 0 && (c.queued+len(ev.data) > sendQueueBytes || !merge && n >= sendQueueLen)
	switch {
	case full:
	case merge:
		c.queue[n-1].data = append(c.queue[n-1].data, ev.data...)
		c.queued += len(ev.data)
	default:
		c.queue = append(c.queue, ev)
		c.queued += len(ev.data)
	}
	c.mu.Unlock()
	if full {
		c.kill(websocket.StatusPolicyViolation, "send queue full: the client is not reading fast enough")
		return
	}
	c.signal()
}

// signal leaves a token for writeLoop, unless one is waiting already.
func (c *conn) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// pop takes the oldest queued event, encoded; ok is false when none waits.
func (c *conn) pop() (msg []byte, ok bool) {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.mu.Unlock()
		return nil, false
	}
	ev := c.queue[0]
	c.queue[0] = outEvent{}
	c.queue = c.queue[1:]
	c.queued -= len(ev.data)
	if len(c.queue) > 0 {
		c.signal()
	}
	c.mu.Unlock()
	if ev.chunkOf != "" {
		return protocol.Encode(protocol.Chunk{Type: protocol.TypeChunk, SessionID: ev.chunkOf, Content: string(ev.data)}), true
	}
	return ev.data, true
}

// kill closes the connection with a status, from any goroutine, at most once.
func (c *conn) kill(code websocket.StatusCode, reason string) {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.closers.Add(1)
		go func() {
			defer c.closers.Done()
			c.ws.Close(code, reason)
		}()
	})
}

// shutdown asks writeLoop to send what is queued, then close with 1001.
func (c *conn) shutdown() {
	c.stopOnce.Do(func() {
		c.graceful = true
		close(c.stop)
	})
}

// writeLoop sends queued events and keepalive pings until the connection
// ends. A failed write or an unanswered ping closes the connection.
func (c *conn) writeLoop(ctx context.Context) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.ready:
			msg, ok := c.pop()
			if !ok {
				continue
			}
			if err := c.write(ctx, msg); err != nil {
				c.ws.CloseNow()
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.kill(websocket.StatusPolicyViolation, "no pong within "+pingTimeout.String())
				return
			}
		case <-c.stop:
			if c.graceful {
				c.drain(ctx)
				c.ws.Close(websocket.StatusGoingAway, "server shutting down")
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// drain writes whatever is still queued, for a graceful close.
func (c *conn) drain(ctx context.Context) {
	for {
		msg, ok := c.pop()
		if !ok || c.write(ctx, msg) != nil {
			return
		}
	}
}

func (c *conn) write(ctx context.Context, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, msg)
}

// isNormalClose reports whether err is how a read ends when a peer or this
// server closes the connection on purpose.
func isNormalClose(err error) bool {
	s := websocket.CloseStatus(err)
	return s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway || errors.Is(err, context.Canceled)
}
