package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/core"
)

// A turns row whose session's lock is free belongs to a gateway that died
// during the turn (its connection ended, and the lock with it): the turn
// is settled, once, by whoever takes the lock next (LockTurn) or by a
// sweeper (every sweepEvery, in every gateway), so a session nobody writes
// to any more still gets its marker.

// sweepEvery is how often a store looks for turns left by dead gateways.
const sweepEvery = 5 * time.Second

// settleTx settles the turn recorded for session sid, if any, in tx, whose
// connection holds the session's lock: the row is deleted and, while the
// session is live and its last message is a user message with no reply, an
// interrupted assistant message holding the reply text the dead gateway had
// saved is appended. A row is also left by a turn that stored its reply
// but could not delete the row, or could not store its user message (the
// database went away): that exchange needs no marker. It returns the
// marker, or nil when there was none to append.
func (s *Store) settleTx(ctx context.Context, tx pgx.Tx, sid int64) (*core.Message, error) {
	var (
		id, gateway, partial string
		live                 bool
	)
	err := tx.QueryRow(ctx, `DELETE FROM turns t USING sessions s WHERE t.sid = $1 AND s.sid = t.sid
		RETURNING s.id, t.gateway, t.partial, s.archived_at IS NULL`, sid).Scan(&id, &gateway, &partial, &live)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && !live {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settle an interrupted turn: %w", err)
	}
	var last string
	err = tx.QueryRow(ctx, "SELECT role FROM messages WHERE sid = $1 ORDER BY seq DESC LIMIT 1", sid).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && last != core.RoleUser {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settle an interrupted turn: %w", err)
	}
	m := core.Message{
		Role:      core.RoleAssistant,
		Content:   partial,
		Timestamp: s.now().UnixMilli(),
		Status:    core.StatusInterrupted,
		Error:     fmt.Sprintf("the gateway %s stopped during this turn (its database connection ended)", gateway),
	}
	if _, err := s.appendTx(ctx, tx, id, []core.Message{m}); err != nil {
		return nil, fmt.Errorf("mark the interrupted turn of gateway %s: %w", gateway, err)
	}
	return &m, nil
}

// interrupted tells Options.OnInterrupted that session id's turn was
// marked interrupted with m.
func (s *Store) interrupted(id string, m core.Message) {
	s.log.Warn("a turn a stopped gateway left was marked interrupted", "session", id, "error", m.Error)
	if s.onInterrupted != nil {
		s.onInterrupted(id, m)
	}
}

// sweepLoop sweeps every sweepEvery until ctx ends (Close).
func (s *Store) sweepLoop(ctx context.Context) {
	defer close(s.swept)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("looking for turns stopped gateways left failed", "err", err)
		}
	}
}

// sweep settles every recorded turn whose session's lock is free.
func (s *Store) sweep(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, "SELECT t.sid, s.id FROM turns t JOIN sessions s USING (sid)")
	if err != nil {
		return err
	}
	type turn struct {
		sid int64
		id  string
	}
	turns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (t turn, err error) {
		return t, r.Scan(&t.sid, &t.id)
	})
	if err != nil {
		return err
	}
	for _, t := range turns {
		if s.heldLease(t.id) != nil {
			continue // this process runs it
		}
		if err := s.settleIfFree(ctx, t.sid, t.id); err != nil {
			return fmt.Errorf("session %s: %w", t.id, err)
		}
	}
	return nil
}

// settleIfFree settles session sid's recorded turn when its lock is free,
// holding the lock meanwhile; a held lock means its turn runs.
func (s *Store) settleIfFree(ctx context.Context, sid int64, id string) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	key := turnKey(id)
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		conn.Release()
		return err
	}
	var m *core.Message
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) (err error) {
		m, err = s.settleTx(ctx, tx, sid)
		return err
	})
	unlock(conn, key)
	if err != nil {
		return err
	}
	if m != nil {
		s.interrupted(id, *m)
	}
	return nil
}
