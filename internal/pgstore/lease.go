package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// A session's turn is a PostgreSQL session-level advisory lock, held by a
// connection of the store's lease pool for as long as the turn runs (see
// docs/postgres-turns.md). The server releases it when that connection
// ends, however it ends; writes of the session go through that connection
// (withWriter), so a gateway that lost it can no longer write.

// DefaultMaxTurns is the lease pool's bound when Options.MaxTurns is 0.
const DefaultMaxTurns = 32

// leaseParams are the lease connections' session settings, so that the
// server ends the connection of a gateway that died or lost the network,
// and its turn's lock with it, within 15 s: keepalive probes after 5 s
// idle, every 2 s, 3 lost → the socket is dead after 11 s;
// tcp_user_timeout ends it when data sent stays unacknowledged for 10 s
// (keepalives are not sent then); client_connection_check_interval makes a
// backend that waits in pg_advisory_lock notice its client is gone every
// 2 s, instead of only once it is granted the lock (PostgreSQL 14+).
func leaseParams() map[string]string {
	return map[string]string{
		"application_name":                 "miniclaw turn",
		"tcp_keepalives_idle":              "5",
		"tcp_keepalives_interval":          "2",
		"tcp_keepalives_count":             "3",
		"tcp_user_timeout":                 "10000",
		"client_connection_check_interval": "2000",
	}
}

// pingEvery is how often a held lease checks its connection, and pingWithin
// how long the check may take: the holder sees a lost connection within
// their sum (6 s), before the server ends the connection (11 s), so it
// stops its turn before another gateway can start one.
const (
	pingEvery  = 2 * time.Second
	pingWithin = 4 * time.Second
)

// lockNamespace prefixes a session ID before it is hashed into an advisory
// lock key, so miniclaw's keys are its own: another application's advisory
// locks on the same database collide with them only by chance (2^-64).
const lockNamespace = "miniclaw turn\x00"

// turnKey is the advisory lock key of session id's turn: FNV-1a 64 of the
// namespaced ID, computed here so it does not depend on the server's
// version.
func turnKey(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(lockNamespace + id))
	return int64(h.Sum64())
}

// lease is a session's turn held by this process: the connection that
// holds the session's advisory lock. mu makes one user of conn at a time
// (a pgx connection is not safe for concurrent use): the turn's writes and
// the health check.
type lease struct {
	s   *Store
	id  string
	sid int64
	key int64

	mu   sync.Mutex
	conn *pgxpool.Conn

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{} // closed by Unlock: the health check ends
	checked  chan struct{} // closed when the health check has ended

	textMu sync.Mutex
	text   strings.Builder // the reply text streamed so far (SaveText)
	saved  int             // how much of it the turns row holds
}

// heldLease is the lease this process holds on session id, or nil.
func (s *Store) heldLease(id string) *lease {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.leases[id]
}

// LockTurn takes session id's turn (see session.Backend): it takes a
// connection of the lease pool, and the session's advisory lock on it,
// waiting in the server's queue (first come, first served) when another
// connection holds it. Once held, a turn a dead gateway left is marked
// interrupted, and the turn is recorded in the turns table until Unlock.
// The session must exist.
func (s *Store) LockTurn(ctx context.Context, id string, timeout time.Duration, waiting func()) (session.Lease, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeoutCause(ctx, timeout, session.ErrTurnLockTimeout)
		defer cancel()
	}
	key := turnKey(id)
	conn, err := s.lockConn(wctx, key, waiting)
	if err != nil {
		switch cause := context.Cause(wctx); {
		case wctx.Err() == nil:
			return nil, fmt.Errorf("session %s: turn lock: %s: %w", id, s.where, err)
		case errors.Is(cause, session.ErrTurnLockTimeout) && ctx.Err() == nil:
			return nil, fmt.Errorf("session %s: %w: gave up after waiting %s for its lock in %s", id, cause, timeout, s.where)
		default:
			return nil, fmt.Errorf("session %s: waiting for the turn lock: %w", id, cause)
		}
	}
	l := &lease{s: s, id: id, key: key, conn: conn, lost: make(chan struct{}), stop: make(chan struct{}), checked: make(chan struct{})}
	marked, err := l.begin(ctx)
	if err != nil {
		l.release()
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, s.failed(id, "turn", err)
	}
	s.leaseMu.Lock()
	s.leases[id] = l
	s.leaseMu.Unlock()
	go l.check()
	if marked != nil {
		s.interrupted(id, *marked)
	}
	return l, nil
}

// lockConn is a lease pool connection holding advisory lock key: taken at
// once when free, else after waiting (called once) in the server's queue.
// A connection whose wait ctx ended is closed, not returned to the pool:
// the server then drops its place in the queue, or the lock if it was
// granted meanwhile, and no later query can find it holding anything.
func (s *Store) lockConn(ctx context.Context, key int64, waiting func()) (*pgxpool.Conn, error) {
	conn, err := s.leasePool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		discard(conn)
		return nil, err
	}
	if got {
		return conn, nil
	}
	if waiting != nil {
		waiting()
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		discard(conn)
		return nil, err
	}
	return conn, nil
}

// discard closes a lease pool connection instead of returning it: the
// server ends its session, and every advisory lock it held.
func discard(conn *pgxpool.Conn) {
	c := conn.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// begin records the turn in the turns table, on the lease's connection,
// after settling the turn a dead holder left there: that turn's marker is
// returned, for the session's clients.
func (l *lease) begin(ctx context.Context) (marked *core.Message, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		if l.sid, err = l.s.sidOf(ctx, tx, l.id); err != nil {
			return err
		}
		if marked, err = l.s.settleTx(ctx, tx, l.sid); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO turns (sid, gateway, started_at) VALUES ($1, $2, $3)", l.sid, l.s.gateway, l.s.now().UnixMilli())
		return err
	})
	return marked, err
}

// Lost is closed once the lease's connection failed: the server has ended,
// or will end, the lock, so another gateway may run a turn of the session.
func (l *lease) Lost() <-chan struct{} { return l.lost }

// markLost closes Lost, once.
func (l *lease) markLost(err error) {
	l.lostOnce.Do(func() {
		l.s.log.Warn("the database connection holding a session's turn failed: the turn stops", "session", l.id, "err", err)
		close(l.lost)
	})
}

// check checks the lease's connection every pingEvery until Unlock or the
// first failure, saving the reply text streamed since the last check
// (that write is the check) or else pinging.
func (l *lease) check() {
	defer close(l.checked)
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if !l.ping() {
			return
		}
	}
}

// SaveText adds chunk to the reply text the turn has streamed, which the
// health check saves on the turns row (every pingEvery at most), so that
// the marker of a turn this gateway leaves unfinished keeps what its
// clients saw. It does not wait for the database.
func (l *lease) SaveText(chunk string) {
	l.textMu.Lock()
	defer l.textMu.Unlock()
	l.text.WriteString(chunk)
}

// unsaved is the reply text when the turns row does not hold all of it
// yet; ok is false when it does.
func (l *lease) unsaved() (text string, ok bool) {
	l.textMu.Lock()
	defer l.textMu.Unlock()
	if l.text.Len() == l.saved {
		return "", false
	}
	l.saved = l.text.Len()
	// A text column takes neither NUL nor invalid UTF-8.
	return strings.ToValidUTF8(strings.ReplaceAll(l.text.String(), "\x00", ""), "\uFFFD"), true
}

// ping checks the lease's connection: it saves the unsaved reply text, or
// pings. A connection that does not answer within pingWithin is closed,
// so that no write goes through a connection whose lock nobody can vouch
// for, and the lease is lost. An error the server answered with leaves it
// healthy.
func (l *lease) ping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), pingWithin)
	defer cancel()
	var err error
	if text, ok := l.unsaved(); ok {
		_, err = l.conn.Exec(ctx, "UPDATE turns SET partial = $2 WHERE sid = $1", l.sid, text)
	} else {
		err = l.conn.Ping(ctx)
	}
	if err == nil {
		return true
	}
	var answered *pgconn.PgError
	if errors.As(err, &answered) && !l.conn.Conn().IsClosed() {
		l.s.log.Warn("the turn's reply text so far could not be saved", "session", l.id, "err", err)
		return true
	}
	l.conn.Conn().Close(ctx)
	l.markLost(err)
	return false
}

// use runs fn on the lease's connection, alone (withWriter). A connection
// fn leaves closed (pgx closes a connection on a network error) means the
// lease is lost.
func (l *lease) use(fn func(db) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := fn(l.conn)
	if l.conn.Conn().IsClosed() {
		l.markLost(err)
	}
	return err
}

// Unlock ends the turn: the lease leaves the store's leases (writes of the
// session go through the pool again), its turns row is deleted, and then
// the lock is released, so the next holder finds no row. A lost lease's
// row stays: the next holder marks its turn interrupted.
func (l *lease) Unlock() {
	close(l.stop)
	<-l.checked
	l.s.leaseMu.Lock()
	delete(l.s.leases, l.id)
	l.s.leaseMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.lost:
		discard(l.conn)
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingWithin)
	defer cancel()
	if _, err := l.conn.Exec(ctx, "DELETE FROM turns WHERE sid = $1", l.sid); err != nil {
		l.s.log.Warn("the turn's row could not be deleted: the next turn marks it interrupted", "session", l.id, "err", err)
		discard(l.conn)
		return
	}
	l.release()
}

// release releases the lease's lock and returns its connection.
func (l *lease) release() { unlock(l.conn, l.key) }

// unlock releases advisory lock key that conn holds and returns conn to
// its pool, or closes it when the lock was not released cleanly: a
// connection back in a pool must hold no lock, since advisory locks are
// re-entrant and it would let a later turn in.
func unlock(conn *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), pingWithin)
	defer cancel()
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&ok); err != nil || !ok {
		discard(conn)
		return
	}
	conn.Release()
}

// openLeases opens the lease pool on the database of cfg, the main pool's
// configuration, and starts the sweeper.
func (s *Store) openLeases(ctx context.Context, cfg *pgxpool.Config, opt Options) error {
	lcfg := cfg.Copy()
	lcfg.MaxConns = opt.MaxTurns
	if lcfg.MaxConns <= 0 {
		lcfg.MaxConns = DefaultMaxTurns
	}
	lcfg.MinConns = 0
	for k, v := range leaseParams() {
		lcfg.ConnConfig.RuntimeParams[k] = v
	}
	s.gateway = opt.Gateway
	if s.gateway == "" {
		s.gateway = NewGatewayID()
	}
	s.onInterrupted = opt.OnInterrupted
	var err error
	if s.leasePool, err = pgxpool.NewWithConfig(ctx, lcfg); err != nil {
		return fmt.Errorf("lease pool: %w", err)
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	s.stopSweep, s.swept = stop, make(chan struct{})
	go s.sweepLoop(sweepCtx)
	return nil
}

// NewGatewayID names a gateway among those on one database, in the turns
// it records and the notices it relays: its host (for people reading the
// turns table) and a random suffix (two gateways on one host).
func NewGatewayID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "gateway"
	}
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
