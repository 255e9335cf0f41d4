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
	// The answers to a client's own frames (pong, the error for a bad
	// frame, queue_full...) are not broadcasts it failed to keep up with:
	// they never close it. Instead the handler waits, before queuing one,
	// while replyRoom events or half of sendQueueBytes are already queued.
	// A client that sends faster than it reads is thus slowed down (its
	// frames wait in the socket, unread), with all its answers kept in
	// order, and it leaves broadcasts the rest of the queue. One that
	// stops reading altogether stops answering keepalive pings too (the
	// handler reads their pongs) and is closed by that.
	replyRoom        = 32
	writeTimeout     = 10 * time.Second
	defaultKeepalive = 30 * time.Second
)

// conn is one WebSocket client. Its handler goroutine reads frames. Writes
// are done by a flush goroutine that exists only while events wait: an idle
// connection costs one goroutine, not two (memory per idle connection is a
// budget, see bench/). Keepalive pings run from a timer. enqueue and
// enqueueChunk may be called from any goroutine and never block; reply, for
// answers to the client's own frames, may wait for room.
type conn struct {
	ws      *websocket.Conn
	ctx     context.Context // ends every write and ping once the handler is done
	every   time.Duration   // keepalive ping interval; a pong is due within half of it
	session string          // guarded by hub.mu
	// channel is the channel of the session the connection was in when it
	// connected or last moved, which a session it creates gets (webchat
	// for the WebChat, cli for the terminal client's sessions); guarded
	// by hub.mu.
	channel string

	mu       sync.Mutex
	room     sync.Cond   // on mu: signalled when the queue shrinks or the connection stops
	queue    []outEvent  // waiting to be written, oldest first
	queued   int         // bytes in queue
	flushing bool        // a flush goroutine runs
	stopped  bool        // kill or shutdown happened: no new work starts
	graceful bool        // stopped by shutdown: write the queue, then close 1001
	ping     *time.Timer // nil until startKeepalive
	// closing is closed when the close handshake kill started returns; nil
	// until kill closes the connection.
	closing chan struct{}

	workers sync.WaitGroup // flush, ping and close goroutines; Add only under mu while !stopped, or by stop itself
}

// outEvent is an event waiting to be written: an encoded event, or, when
// chunkOf is set, the text of one or more chunks of session chunkOf.
type outEvent struct {
	data    []byte
	chunkOf string
}

// newConn wraps an accepted WebSocket; ctx is cancelled by the handler when
// the connection ends. keepalive is the ping interval.
func newConn(ctx context.Context, ws *websocket.Conn, keepalive time.Duration) *conn {
	c := &conn{ws: ws, ctx: ctx, every: keepalive}
	c.room.L = &c.mu
	return c
}

// startKeepalive arms the ping timer, once the connection is in service.
func (c *conn) startKeepalive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.ping = time.AfterFunc(c.every, c.keepalive)
	}
}

// stopLocked marks the connection stopped and disarms its ping timer.
// Caller holds c.mu.
func (c *conn) stopLocked(graceful bool) {
	c.stopped, c.graceful = true, graceful
	c.room.Broadcast()
	if c.ping != nil {
		c.ping.Stop()
	}
}

// enqueue queues an encoded event.
func (c *conn) enqueue(payload []byte) { c.push(outEvent{data: payload}) }

// reply queues the answer to one of the client's own frames, waiting for
// room first (see replyRoom). Only the handler goroutine calls it.
func (c *conn) reply(payload []byte) {
	c.mu.Lock()
	for !c.stopped && (len(c.queue) >= replyRoom || c.queued >= sendQueueBytes/2) {
		c.room.Wait()
	}
	c.mu.Unlock()
	c.enqueue(payload)
}

// enqueueChunk queues a chunk of a reply of session id.
func (c *conn) enqueueChunk(id, text string) { c.push(outEvent{data: []byte(text), chunkOf: id}) }

// push adds ev to the queue and makes sure a flush goroutine runs. When the
// queue is over its bounds the connection is closed with 1008: the client
// is not reading, and other connections must not wait for it.
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
	if !full && !c.stopped {
		c.startFlushLocked()
	}
	c.mu.Unlock()
	if full {
		c.kill(websocket.StatusPolicyViolation, "send queue full: the client is not reading fast enough")
	}
}

// startFlushLocked starts the flush goroutine unless one runs. Caller holds
// c.mu.
func (c *conn) startFlushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	c.workers.Add(1)
	go c.flush()
}

// flush writes queued events in order until the queue is empty, then exits.
// After a graceful stop it closes the connection with 1001 once everything
// is written; after a kill it writes nothing more.
func (c *conn) flush() {
	defer c.workers.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.stopped && !c.graceful {
			c.queue = nil // an idle connection keeps no buffer
			c.flushing = false
			closeNow := c.stopped && c.graceful
			c.mu.Unlock()
			if closeNow {
				c.ws.Close(websocket.StatusGoingAway, "server shutting down")
			}
			return
		}
		ev := c.queue[0]
		c.queue[0] = outEvent{}
		c.queue = c.queue[1:]
		c.queued -= len(ev.data)
		c.room.Broadcast()
		c.mu.Unlock()

		msg := ev.data
		if ev.chunkOf != "" {
			msg = protocol.Encode(protocol.Chunk{Type: protocol.TypeChunk, SessionID: ev.chunkOf, Content: string(ev.data)})
		}
		wctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
		err := c.ws.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			c.mu.Lock()
			c.stopLocked(false)
			c.flushing = false
			c.mu.Unlock()
			c.ws.CloseNow()
			return
		}
	}
}

// keepalive runs on the ping timer: a peer that does not answer a ping
// within half the interval is closed, one that does is pinged again later.
func (c *conn) keepalive() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.workers.Add(1)
	c.mu.Unlock()
	defer c.workers.Done()

	due := c.every / 2
	pctx, cancel := context.WithTimeout(c.ctx, due)
	err := c.ws.Ping(pctx)
	cancel()
	if err != nil {
		// A dead peer would not answer a close handshake either: drop it
		// at once rather than wait for one.
		c.mu.Lock()
		if !c.stopped {
			c.stopLocked(false)
		}
		c.mu.Unlock()
		c.ws.CloseNow()
		return
	}
	c.mu.Lock()
	if !c.stopped {
		c.ping.Reset(c.every)
	}
	c.mu.Unlock()
}

// kill closes the connection with a status, from any goroutine. The first
// of kill and shutdown wins; later calls do nothing.
func (c *conn) kill(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopLocked(false)
	done := make(chan struct{})
	c.closing = done
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		defer close(done)
		c.ws.Close(code, reason)
	}()
}

// closed waits for the close handshake kill started, if it did. The
// handler waits for it before it cancels ctx: a write still in flight when
// ctx ends makes the WebSocket library drop the connection, and the close
// frame (1007 for a frame that is not UTF-8...) would never be sent. The
// library bounds the handshake (5 s to write, 5 s to hear back).
func (c *conn) closed() {
	c.mu.Lock()
	done := c.closing
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// shutdown writes what is queued, then closes with 1001.
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopLocked(true)
	c.startFlushLocked()
}

// wait returns once no goroutine of the connection runs. The handler calls
// it after kill and after cancelling ctx, so writes and pings end promptly.
func (c *conn) wait() { c.workers.Wait() }

// isNormalClose reports whether err is how a read ends when a peer or this
// server closes the connection on purpose.
func isNormalClose(err error) bool {
	s := websocket.CloseStatus(err)
	return s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway || errors.Is(err, context.Canceled)
}
