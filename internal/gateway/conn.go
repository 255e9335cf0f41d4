package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const (
	// sendQueueLen bounds the events waiting for one connection. A reader
	// that falls this far behind is closed (1008) instead of slowing its
	// session's other connections or growing memory without bound.
	sendQueueLen = 256
	writeTimeout = 10 * time.Second
	pingInterval = 30 * time.Second
	pingTimeout  = 15 * time.Second
)

// conn is one WebSocket client. The handler goroutine reads; writeLoop is
// the only goroutine that writes frames. enqueue may be called from any
// goroutine and never blocks.
type conn struct {
	ws      *websocket.Conn
	out     chan []byte
	session string // guarded by hub.mu

	stopOnce sync.Once
	stop     chan struct{} // closed to end writeLoop
	graceful bool          // set before stop closes: drain the queue, then close 1001
	closers  sync.WaitGroup
}

func newConn(ws *websocket.Conn) *conn {
	return &conn{ws: ws, out: make(chan []byte, sendQueueLen), stop: make(chan struct{})}
}

// enqueue queues an encoded event. When the queue is full the connection is
// closed with 1008: the client is not reading, and other connections must
// not wait for it.
func (c *conn) enqueue(payload []byte) {
	select {
	case c.out <- payload:
	default:
		c.kill(websocket.StatusPolicyViolation, "send queue full: the client is not reading fast enough")
	}
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
		case msg := <-c.out:
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
		select {
		case msg := <-c.out:
			if c.write(ctx, msg) != nil {
				return
			}
		default:
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
