package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The relay carries the events of every session between the gateways on
// one database over LISTEN/NOTIFY (docs/postgres-relay.md): each gateway
// publishes what its hub broadcasts and delivers what the others publish to
// its own clients. A notice is a JSON object on channel relayChannel:
//
//	{"g": gateway id, "n": number, "s": session id, "k": kind, "d": data}
//
// where n counts the gateway's notices: PostgreSQL delivers equal payloads
// sent in one transaction once, and a batch is one transaction.
//
// where kind is RelayEvent (d: the encoded event), RelayChunk (d: a JSON
// string, reply text), RelayAbort (stop the session's turn, no d) or
// RelayResync (this gateway dropped notices of the session, no d). A notice
// over spillAt bytes goes through table relay_spill: the notice carries
// {"g", "s", "k", "spill": row id} and the row the whole notice.
const (
	RelayEvent  = "event"
	RelayChunk  = "chunk"
	RelayAbort  = "abort"
	RelayResync = "resync"
)

const (
	relayChannel = "miniclaw_relay"
	// spillAt is the largest notice sent as is: PostgreSQL refuses a NOTIFY
	// payload of 8000 bytes or more.
	spillAt = 7900
	// mergeMax bounds a chunk merged in the publish queue, so that merging
	// does not turn small notices into spilled ones.
	mergeMax = spillAt / 2
	// DefaultRelayQueue is RelayOptions.MaxQueue when 0.
	DefaultRelayQueue = 4096
	// closeFlush bounds how long Close waits for queued notices to go out.
	closeFlush = 5 * time.Second
	// Reconnect backoff of the listener and the publisher.
	relayMinBackoff = 100 * time.Millisecond
	relayMaxBackoff = 5 * time.Second
)

// Application names of the relay's connections, as pg_stat_activity shows
// them, followed by the gateway's id.
const (
	relayListenApp  = "miniclaw relay listen "
	relayPublishApp = "miniclaw relay publish "
)

// RelayOptions configure a Relay.
type RelayOptions struct {
	// Gateway identifies this gateway's notices, which its listener skips;
	// "" means a random one.
	Gateway string
	// MaxQueue bounds the notices waiting to be published; past it a notice
	// is dropped and its session's other gateways are told to resync.
	MaxQueue int
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Relay is one gateway's end of the relay: a publishing connection fed in
// order from a bounded queue (Publish never blocks), and Listen, which
// delivers the other gateways' notices. It owns its publishing goroutine;
// Close stops it.
type Relay struct {
	gateway string
	log     *slog.Logger
	pool    *pgxpool.Pool // one connection: the publisher's
	listen  *pgx.ConnConfig
	max     int

	mu     sync.Mutex
	queue  []outNotice
	lost   map[string]struct{} // sessions some of whose notices were dropped
	closed bool
	wake   chan struct{}

	sent        uint64 // notices numbered so far; only the publisher uses it
	dropped     atomic.Int64
	dropLogged  atomic.Bool
	ready       chan struct{} // closed once the listener first listens
	readyOnce   sync.Once
	stopPublish context.CancelFunc
	published   chan struct{} // closed when the publisher returns
}

// outNotice is a notice waiting in the publish queue.
type outNotice struct {
	session, kind string
	data          []byte // JSON; for a chunk, the raw text until sent
	// flushed, when set, makes this entry no notice but Flush's marker:
	// closed once what was queued before it is committed (or refused).
	flushed chan struct{}
}

// notice is a notice on the wire.
type notice struct {
	Gateway string          `json:"g"`
	N       uint64          `json:"n,omitempty"`
	Session string          `json:"s"`
	Kind    string          `json:"k"`
	Data    json.RawMessage `json:"d,omitempty"`
	Spill   int64           `json:"spill,omitempty"`
}

// NewRelay connects the relay's publisher to the database url names and
// makes sure its schema is there (it migrates as Open does). The listener
// connects when Listen runs.
func NewRelay(ctx context.Context, rawURL string, opt RelayOptions) (*Relay, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	where := describe(cfg)
	r := &Relay{
		gateway:   opt.Gateway,
		log:       opt.Logger,
		max:       opt.MaxQueue,
		lost:      map[string]struct{}{},
		wake:      make(chan struct{}, 1),
		ready:     make(chan struct{}),
		published: make(chan struct{}),
	}
	if r.gateway == "" {
		r.gateway = NewGatewayID()
	}
	cfg.MaxConns = 1
	cfg.ConnConfig.RuntimeParams["application_name"] = relayPublishApp + r.gateway
	// A NOTIFY takes a transaction id, so its commit would wait for the
	// WAL to reach the disk: notices need no durability (a listener cut
	// off by a crash resyncs), and their latency is the relay's.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	r.listen = cfg.ConnConfig.Copy()
	r.listen.RuntimeParams["application_name"] = relayListenApp + r.gateway
	if r.max <= 0 {
		r.max = DefaultRelayQueue
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("relay: %s: %w", where, err)
	}
	if _, _, err := migrate(ctx, r.pool); err != nil {
		r.pool.Close()
		return nil, fmt.Errorf("relay: %s: %w", where, err)
	}
	pctx, stop := context.WithCancel(context.Background())
	r.stopPublish = stop
	go r.publishLoop(pctx)
	return r, nil
}

// Gateway is the id this relay's notices carry.
func (r *Relay) Gateway() string { return r.gateway }

// Dropped is how many notices were dropped because the queue was full or
// the database refused them.
func (r *Relay) Dropped() int64 { return r.dropped.Load() }

// Ready is closed once the listener listens for the first time: from then
// on, what the other gateways publish reaches Listen's deliver.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// Publish queues a notice of session for the other gateways: data is an
// encoded event (RelayEvent), reply text (RelayChunk) or nil (RelayAbort).
// It never blocks: when the queue is full the notice is dropped, counted,
// and the session's other gateways are told to resync once there is room.
// A chunk that follows a waiting chunk of the same session is merged into
// it.
func (r *Relay) Publish(session, kind string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	n := len(r.queue)
	switch {
	case kind == RelayChunk && n > 0 && r.queue[n-1].kind == RelayChunk && r.queue[n-1].session == session &&
		len(r.queue[n-1].data)+len(data) <= mergeMax:
		r.queue[n-1].data = append(r.queue[n-1].data, data...)
	case n >= r.max:
		r.dropLocked(session)
		return
	default:
		r.queue = append(r.queue, outNotice{session: session, kind: kind, data: append([]byte(nil), data...)})
	}
	r.kick()
}

// Flush waits until every notice published before it was called has been
// sent (committed, so other gateways' listeners get it before anything
// committed later) or refused, or until ctx is done. A turn flushes its
// ending event before it releases its session's lease, so another
// gateway's next turn of the session never reaches a client first.
func (r *Relay) Flush(ctx context.Context) error {
	done := make(chan struct{})
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.queue = append(r.queue, outNotice{flushed: done})
	r.mu.Unlock()
	r.kick()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// dropLocked counts a notice of session as dropped and marks it for a
// resync. Caller holds r.mu.
func (r *Relay) dropLocked(session string) {
	r.dropped.Add(1)
	r.lost[session] = struct{}{}
	if !r.dropLogged.Swap(true) {
		r.log.Warn("relay: notices dropped (the publish queue is full or the database is away); the other gateways' clients reload history", "queue", r.max)
	}
}

// publishLoop sends the queue's notices in order until Close, in batches
// of what waited, followed by a resync of each session that lost notices.
// A batch the database refuses is dropped (its sessions resync) and the
// loop waits with a backoff before the next.
func (r *Relay) publishLoop(ctx context.Context) {
	defer close(r.published)
	backoff := relayMinBackoff
	for {
		r.mu.Lock()
		batch, lost, closed := r.queue, r.lost, r.closed
		r.queue, r.lost = nil, map[string]struct{}{}
		r.mu.Unlock()
		for s := range lost {
			batch = append(batch, outNotice{session: s, kind: RelayResync})
		}
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-r.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := r.send(ctx, batch)
		for _, n := range batch {
			if n.flushed != nil {
				close(n.flushed)
			}
		}
		if err == nil {
			backoff = relayMinBackoff
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("relay: publishing failed; retrying", "notices", len(batch), "err", err)
		r.mu.Lock()
		for _, n := range batch {
			if n.flushed == nil {
				r.dropLocked(n.session)
			}
		}
		r.mu.Unlock()
		if closed || !sleepJitter(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, relayMaxBackoff)
	}
}

// spillSQL stores a notice too big for NOTIFY and notifies its row's id,
// in one statement; it deletes spilled rows older than a minute, which no
// listener still connected can need.
const spillSQL = `WITH old AS (DELETE FROM relay_spill WHERE at < now() - interval '1 minute'),
	spilled AS (INSERT INTO relay_spill (payload) VALUES ($2) RETURNING id)
SELECT pg_notify($1, json_build_object('g', $3::text, 's', $4::text, 'k', $5::text, 'spill', id)::text) FROM spilled`

// send publishes batch in one round trip: one transaction, so its notices
// are delivered together and in order.
func (r *Relay) send(ctx context.Context, batch []outNotice) error {
	var b pgx.Batch
	for _, n := range batch {
		if n.flushed != nil {
			continue
		}
		data := n.data
		if n.kind == RelayChunk {
			data, _ = json.Marshal(string(n.data)) // a string always encodes
		}
		r.sent++
		payload, err := json.Marshal(notice{Gateway: r.gateway, N: r.sent, Session: n.session, Kind: n.kind, Data: data})
		if err != nil {
			return fmt.Errorf("relay: encode a %s of session %s: %w", n.kind, n.session, err)
		}
		if len(payload) > spillAt {
			b.Queue(spillSQL, relayChannel, string(payload), r.gateway, n.session, n.kind)
		} else {
			b.Queue("SELECT pg_notify($1, $2)", relayChannel, string(payload))
		}
	}
	if b.Len() == 0 { // only Flush markers
		return nil
	}
	return r.pool.SendBatch(ctx, &b).Close()
}

// Listen delivers the other gateways' notices until ctx is done: deliver
// gets the session, the kind and the data (an encoded event, reply text, or
// nil). It holds one connection that listens, and connects again with a
// backoff when it breaks; what was published meanwhile is lost, so after a
// reconnect deliver gets ("", RelayResync, nil): every session's clients
// may have missed events. deliver must not block.
func (r *Relay) Listen(ctx context.Context, deliver func(session, kind string, data []byte)) {
	connected := false // ever: the first connection misses nothing a client saw
	backoff := relayMinBackoff
	for ctx.Err() == nil {
		conn, err := r.connectListener(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("relay: the listener cannot connect; retrying", "in", backoff, "err", err)
			}
			if !sleepJitter(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, relayMaxBackoff)
			continue
		}
		backoff = relayMinBackoff
		if connected {
			r.log.Info("relay: the listener reconnected; clients reload history")
			deliver("", RelayResync, nil)
		}
		connected = true
		r.readyOnce.Do(func() { close(r.ready) })
		err = r.receive(ctx, conn, deliver)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		if ctx.Err() == nil {
			r.log.Warn("relay: the listener's connection broke; reconnecting", "err", err)
		}
	}
}

// connectListener opens the listening connection.
func (r *Relay) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, r.listen)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+relayChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// receive hands conn's notices to deliver until conn breaks or ctx is done.
func (r *Relay) receive(ctx context.Context, conn *pgx.Conn, deliver func(session, kind string, data []byte)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var nt notice
		if err := json.Unmarshal([]byte(n.Payload), &nt); err != nil {
			r.log.Warn("relay: a notice that is not ours was skipped", "err", err)
			continue
		}
		if nt.Gateway == r.gateway {
			continue
		}
		if nt.Spill != 0 {
			var payload string
			err := conn.QueryRow(ctx, "SELECT payload FROM relay_spill WHERE id = $1", nt.Spill).Scan(&payload)
			switch {
			case errors.Is(err, pgx.ErrNoRows): // over a minute behind: gone
				r.log.Warn("relay: a spilled notice was deleted before it was read; its session's clients reload history", "session", nt.Session)
				deliver(nt.Session, RelayResync, nil)
				continue
			case err != nil:
				return err
			}
			if err := json.Unmarshal([]byte(payload), &nt); err != nil {
				r.log.Warn("relay: a spilled notice that is not ours was skipped", "err", err)
				continue
			}
		}
		data := []byte(nt.Data)
		if nt.Kind == RelayChunk {
			var text string
			if json.Unmarshal(nt.Data, &text) != nil {
				continue
			}
			data = []byte(text)
		}
		deliver(nt.Session, nt.Kind, data)
	}
}

// Close publishes what is queued (for at most closeFlush) and closes the
// publishing connection. Listen is stopped by its own context.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.kick()
	t := time.AfterFunc(closeFlush, r.stopPublish)
	<-r.published
	t.Stop()
	r.stopPublish()
	r.pool.Close()
}

// kick wakes the publisher, which may be waiting for work.
func (r *Relay) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// sleepJitter waits d, with up to half of it again as jitter so that gateways
// cut off together do not reconnect together; false when ctx ended first.
func sleepJitter(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
