package gateway

import (
	"context"
	"sync"

	"github.com/miniclaw/miniclaw/internal/session"
)

// maxQueued is how many messages may wait behind a session's running turn.
const maxQueued = 64

// subscriber receives the events of a session: a WebSocket connection, or
// the sink of one turn asked for over HTTP. The hub calls it with its lock
// held, so it must never block.
type subscriber interface {
	enqueue(payload []byte)
	// enqueueChunk is a chunk of a reply of session id, kept apart from
	// other events so a subscriber that is behind can merge chunks.
	enqueueChunk(id, text string)
}

// job is a user message, or a /compact, waiting for its session's lane.
type job struct {
	content string
	from    *conn  // for errors that concern only the sender; may have gone away
	channel string // where the message came from, for user_message
	// sink, when set, receives the events of this job's turn only: it is
	// subscribed while the turn runs, not while it waits behind other
	// turns of the session, and gets the event that ends it through end.
	sink    *turnSink
	compact bool // summarise the older messages instead of running a turn
	// result, for a compact asked over HTTP, receives its outcome; it is
	// buffered, so the lane never waits for the handler.
	result chan<- compactResult
	// ocRun, for a message an OpenClaw client sent (chat.send, agent), is
	// the run its events report under; nil for a message from /ws.
	ocRun *ocRun
}

// lane serialises the turns of one session and fans its events out to every
// attached connection. All fields are guarded by hub.mu.
type lane struct {
	id      string
	subs    map[subscriber]struct{}
	queue   []job
	running bool
	cancel  context.CancelCauseFunc // of the running turn, nil when idle
	// remote: the relay brought events of a turn of this session that
	// another gateway runs, and not yet the event that ends it.
	remote bool
}

// hub owns the lanes. A lane exists while it has subscribers or work, and is
// dropped when it has neither.
type hub struct {
	mu       sync.Mutex
	lanes    map[string]*lane
	closed   bool // no new turns once shutdown began
	queued   int  // bytes of content of every lane's queue
	maxBytes int  // bound of queued, across all lanes

	// runTurn runs one job; it is called on the lane's goroutine with a
	// context the hub can cancel (abort) with a cause. It returns the event
	// that ends the turn (message_done or error), which the hub broadcasts.
	runTurn func(ctx context.Context, sessionID string, j job) []byte
	base    context.Context // parent of every turn; cancelled when shutdown's deadline passes
	turns   sync.WaitGroup  // one count per running lane goroutine
	// relay, when set, gets every broadcast for the other gateways (see
	// Options.Relay).
	relay Relay
}

func newHub(base context.Context, runTurn func(context.Context, string, job) []byte, maxBytes int, relay Relay) *hub {
	return &hub{lanes: map[string]*lane{}, runTurn: runTurn, base: base, maxBytes: maxBytes, relay: relay}
}

// laneLocked returns the lane of id, creating it. Caller holds h.mu.
func (h *hub) laneLocked(id string) *lane {
	l, ok := h.lanes[id]
	if !ok {
		l = &lane{id: id, subs: map[subscriber]struct{}{}}
		h.lanes[id] = l
	}
	return l
}

// dropIfIdleLocked forgets a lane nobody uses. Caller holds h.mu.
func (h *hub) dropIfIdleLocked(l *lane) {
	if len(l.subs) == 0 && len(l.queue) == 0 && !l.running {
		delete(h.lanes, l.id)
	}
}

// attach moves c to session m: it leaves its previous session's lane and
// receives every later event of m.
func (h *hub) attach(c *conn, m session.Meta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attachLocked(c, m)
}

// join attaches a new connection to session m with first (its connected
// event) queued ahead of every event of the session, in one step: a client
// that has read first is attached, so nothing it then causes is missed.
func (h *hub) join(c *conn, m session.Meta, first []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.enqueue(first)
	h.attachLocked(c, m)
}

// attachLocked is attach with h.mu held.
func (h *hub) attachLocked(c *conn, m session.Meta) {
	c.channel = m.Channel
	id := m.SessionID
	if c.session == id {
		return
	}
	if old, ok := h.lanes[c.session]; ok {
		delete(old.subs, c)
		h.dropIfIdleLocked(old)
	}
	c.session = id
	h.laneLocked(id).subs[c] = struct{}{}
}

// detach removes c from its session; called once when c closes.
func (h *hub) detach(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.lanes[c.session]; ok {
		delete(l.subs, c)
		h.dropIfIdleLocked(l)
	}
}

// sessionOf is the session c is attached to.
func (h *hub) sessionOf(c *conn) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.session
}

// channelOf is the channel of the sessions c creates (see conn.channel).
func (h *hub) channelOf(c *conn) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.channel
}

// enqueueResult says what became of a message handed to enqueue.
type enqueueResult int

const (
	enqueued   enqueueResult = iota
	queueFull                // the session's queue is at maxQueued
	budgetFull               // the gateway's queues hold maxBytes
	shuttingDown
)

// enqueue adds a message to its session's lane, starting the lane's
// goroutine when it is idle. Turns of one session run one at a time in
// arrival order; different sessions run in parallel.
func (h *hub) enqueue(id string, j job) enqueueResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return shuttingDown
	}
	l := h.laneLocked(id)
	if len(l.queue) >= maxQueued {
		return queueFull
	}
	if h.queued+len(j.content) > h.maxBytes {
		h.dropIfIdleLocked(l)
		return budgetFull
	}
	h.queued += len(j.content)
	l.queue = append(l.queue, j)
	if !l.running {
		l.running = true
		h.turns.Add(1)
		go h.drain(l)
	}
	return enqueued
}

// drain runs a lane's queue until it is empty. It is the only goroutine
// running turns of that session. The event that ends a turn goes out only
// once the lane no longer counts the turn as running, so a client that saw
// it finds the session idle: archive works, abort answers not_running.
func (h *hub) drain(l *lane) {
	defer h.turns.Done()
	var final []byte   // the end of the previous turn
	var sink *turnSink // of the previous turn
	for {
		h.mu.Lock()
		idle := len(l.queue) == 0
		if idle {
			l.running, l.cancel = false, nil
		}
		if sink != nil {
			delete(l.subs, sink)
			sink.end(final)
		}
		h.sendLocked(l, final, nil) // published by the job (Server.runTurn)
		if idle {
			h.dropIfIdleLocked(l)
			h.mu.Unlock()
			return
		}
		j := l.queue[0]
		l.queue[0] = job{}
		l.queue = l.queue[1:]
		h.queued -= len(j.content)
		ctx, cancel := context.WithCancelCause(h.base)
		l.cancel = cancel
		sink = j.sink
		if sink != nil {
			l.subs[sink] = struct{}{}
		}
		h.mu.Unlock()

		final = h.runTurn(ctx, l.id, j)
		cancel(nil)
	}
}

// abort cancels the running turn of id with cause. It reports false when no
// turn is running.
func (h *hub) abort(id string, cause error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.lanes[id]
	if !ok || l.cancel == nil {
		return false
	}
	l.cancel(cause)
	return true
}

// running is how many lanes have a turn running.
func (h *hub) running() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lanes {
		if l.running {
			n++
		}
	}
	return n
}

// queuedBytes is the bytes of user messages waiting in every lane.
func (h *hub) queuedBytes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.queued
}

// busy reports whether a turn of id is running or queued.
func (h *hub) busy(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.lanes[id]
	return ok && (l.running || len(l.queue) > 0)
}

// broadcast sends one encoded event to every connection attached to id. A
// connection whose queue is full is closed rather than allowed to slow the
// others down.
func (h *hub) broadcast(id string, payload []byte) {
	h.broadcastExcept(id, nil, payload)
}

// broadcastExcept is broadcast to every connection attached to id but
// skip (nil: none).
func (h *hub) broadcastExcept(id string, skip *conn, payload []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.lanes[id]; ok {
		h.sendLocked(l, payload, skip)
	}
	h.publish(id, relayEvent, payload)
}

// broadcastChunk sends a chunk of a reply to every connection attached to
// id. A connection that is behind gets it merged into the chunk it has
// waiting (see conn.push).
func (h *hub) broadcastChunk(id, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.lanes[id]; ok {
		sendChunkLocked(l, text)
	}
	if h.relay != nil {
		h.relay.Publish(id, relayChunk, []byte(text))
	}
}

// sendChunkLocked queues a chunk of a reply on every connection attached to
// l. Caller holds h.mu.
func sendChunkLocked(l *lane, text string) {
	for c := range l.subs {
		c.enqueueChunk(l.id, text)
	}
}

// sendLocked queues payload, when not nil, on every connection attached to
// l but skip (nil: none). Caller holds h.mu.
func (h *hub) sendLocked(l *lane, payload []byte, skip *conn) {
	if payload == nil {
		return
	}
	for c := range l.subs {
		if c != subscriber(skip) {
			c.enqueue(payload)
		}
	}
}

// close stops intake of new turns. Running and queued turns go on.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}
