package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/session"
)

var _ session.Backend = (*Store)(nil)

// opTimeout bounds each call of the store: session.Backend has no context,
// and a database that stops answering must give the caller an error, not
// hold its turn (or an HTTP handler) for ever.
const opTimeout = 10 * time.Second

// op is the context one call of the store runs in.
func op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// failed is err from operation what on session id, naming the database
// (never its password: s.where has none, and pgx's errors name the host,
// user and database only). An error that already says what happened to the
// session (not found, invalid ID, live) is returned as it is.
func (s *Store) failed(id, what string, err error) error {
	for _, known := range []error{session.ErrNotFound, session.ErrInvalidID, session.ErrAmbiguous, session.ErrLive, session.ErrBusy} {
		if errors.Is(err, known) {
			return err
		}
	}
	if errors.As(err, new(inputError)) {
		return fmt.Errorf("session %s: %s: %w", id, what, err)
	}
	return fmt.Errorf("session %s: %s: %s: %w", id, what, s.where, err)
}

// inputError is an error in what the caller asked (a message without a
// role, a fork onto a taken ID), not of the database: failed does not
// name the database in it.
type inputError struct{ error }

func (e inputError) Unwrap() error { return e.error }

// snapshot runs fn in a read-only transaction whose reads all see the
// database at one instant (a line count and the lines it counts agree).
func (s *Store) snapshot(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// notFound is the error for a session id that is not live.
func notFound(id string) error { return fmt.Errorf("session %s: %w", id, session.ErrNotFound) }

// sidOf is the sid of the live session id, or an error matching
// session.ErrNotFound (session.ErrInvalidID for an ID no session can have).
func (s *Store) sidOf(ctx context.Context, q db, id string) (int64, error) {
	if err := session.CheckID(id); err != nil {
		return 0, err
	}
	var sid int64
	err := q.QueryRow(ctx, "SELECT sid FROM sessions WHERE id = $1 AND archived_at IS NULL", id).Scan(&sid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, notFound(id)
	}
	return sid, err
}

// metaSelect reads sessions' metas: what the sessions row holds, and what
// is derived from the messages (count, last update, export size), not kept
// anywhere else. The LATERAL aggregate reads a session's rows through the
// primary key; only message timestamps and line lengths are read
// (octet_length does not decompress a line). Columns in scanMeta's order;
// the caller adds WHERE and ORDER BY on s.
const (
	metaCols = `s.id, s.channel, s.created_at, s.forked_from, s.title, s.titled_at,
	coalesce(m.n, 0), greatest(s.created_at, coalesce(m.at, s.created_at)) AS updated, coalesce(m.size, 0) AS size`
	metaFrom = ` FROM sessions s LEFT JOIN LATERAL (
	SELECT count(*) AS n, max(at) AS at, sum(octet_length(line) + 1) AS size FROM messages WHERE messages.sid = s.sid
) m ON true`
	metaSelect = "SELECT " + metaCols + metaFrom
	// listSelect is metaSelect for all live sessions at once: one pass
	// over their messages, aggregated by session, costs less than an
	// index scan per session (10,000 sessions: see BenchmarkList10k).
	listSelect = "SELECT " + metaCols + ` FROM sessions s LEFT JOIN (
	SELECT sid, count(*) AS n, max(at) AS at, sum(octet_length(line) + 1) AS size FROM messages
	WHERE sid IN (SELECT sid FROM sessions WHERE archived_at IS NULL) GROUP BY sid
) m ON m.sid = s.sid WHERE s.archived_at IS NULL`
)

// scanMeta reads one row of metaSelect, and then more columns into extra.
func scanMeta(row pgx.Row, extra ...any) (session.Meta, error) {
	var m session.Meta
	err := row.Scan(append([]any{&m.SessionID, &m.Channel, &m.CreatedAt, &m.ForkedFrom, &m.Title, &m.TitledAt,
		&m.MessageCount, &m.UpdatedAt, &m.Size}, extra...)...)
	return m, err
}

// getMeta is the meta of the live session id, read on q.
func (s *Store) getMeta(ctx context.Context, q db, id string) (session.Meta, error) {
	m, err := scanMeta(q.QueryRow(ctx, metaSelect+" WHERE s.id = $1 AND s.archived_at IS NULL", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Meta{}, notFound(id)
	}
	return m, err
}

// Create creates session id on channel, or returns the live one with that
// ID unchanged (created false).
func (s *Store) Create(id, channel string) (session.Meta, bool, error) {
	if err := session.CheckID(id); err != nil {
		return session.Meta{}, false, err
	}
	ctx, cancel := op()
	defer cancel()
	// An existing session can be archived between the insert that found it
	// and the read of its meta: then the ID is free again, and the next
	// round creates it.
	for {
		tag, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, channel, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (id) WHERE archived_at IS NULL DO NOTHING`, id, channel, s.now().UnixMilli())
		if err != nil {
			return session.Meta{}, false, s.failed(id, "create", err)
		}
		m, err := s.getMeta(ctx, s.pool, id)
		if errors.Is(err, session.ErrNotFound) {
			continue
		}
		if err != nil {
			return session.Meta{}, false, s.failed(id, "create", err)
		}
		return m, tag.RowsAffected() == 1, nil
	}
}

// Get is the meta of live session id.
func (s *Store) Get(id string) (session.Meta, error) {
	if err := session.CheckID(id); err != nil {
		return session.Meta{}, err
	}
	ctx, cancel := op()
	defer cancel()
	m, err := s.getMeta(ctx, s.pool, id)
	if err != nil {
		return session.Meta{}, s.failed(id, "get", err)
	}
	return m, nil
}

// List is every live session's meta, most recently updated first (then by
// ID in byte order, as the files store, whatever the database's collation),
// in one query.
func (s *Store) List() ([]session.Meta, error) {
	ctx, cancel := op()
	defer cancel()
	rows, err := s.pool.Query(ctx, listSelect+" ORDER BY updated DESC, s.id COLLATE \"C\"")
	if err != nil {
		return nil, fmt.Errorf("list sessions: %s: %w", s.where, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (session.Meta, error) { return scanMeta(r) })
	if err != nil {
		return nil, fmt.Errorf("list sessions: %s: %w", s.where, err)
	}
	return out, nil
}

// Len is the number of live sessions, 0 when the database does not answer.
func (s *Store) Len() int {
	ctx, cancel := op()
	defer cancel()
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE archived_at IS NULL").Scan(&n); err != nil {
		s.log.Warn("sessions not counted", "store", s.where, "err", err)
		return 0
	}
	return n
}

// Latest is the most recently updated live session of channel (the
// greatest ID among equals, as the files store).
func (s *Store) Latest(channel string) (session.Meta, bool, error) {
	ctx, cancel := op()
	defer cancel()
	m, err := scanMeta(s.pool.QueryRow(ctx, metaSelect+
		" WHERE s.channel = $1 AND s.archived_at IS NULL ORDER BY updated DESC, s.id COLLATE \"C\" DESC LIMIT 1", channel))
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Meta{}, false, nil
	}
	if err != nil {
		return session.Meta{}, false, fmt.Errorf("latest session of channel %s: %s: %w", channel, s.where, err)
	}
	return m, true, nil
}

// Resolve is the ID that id names: exactly, else as the unique prefix of a
// live session's ID.
func (s *Store) Resolve(id string) (string, error) {
	if err := session.CheckID(id); err != nil {
		return "", err
	}
	return s.resolve(id, "archived_at IS NULL", notFound(id))
}

// ResolveArchived is the ID that id names among the archived sessions:
// exactly, else as the unique prefix of one.
func (s *Store) ResolveArchived(id string) (string, error) {
	return s.resolve(id, "archived_at IS NOT NULL", fmt.Errorf("archived session %s: %w", id, session.ErrNotFound))
}

// resolve picks id among the IDs of the sessions where (a condition on the
// sessions row) holds that start with it: a LIKE on the ID index
// (text_pattern_ops), the prefix's wildcards escaped.
func (s *Store) resolve(id, where string, notFound error) (string, error) {
	ctx, cancel := op()
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT DISTINCT id FROM sessions WHERE "+where+" AND id LIKE $1 ORDER BY id", likePrefix(id))
	if err != nil {
		return "", s.failed(id, "resolve", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", s.failed(id, "resolve", err)
	}
	for _, match := range ids {
		if match == id {
			return id, nil
		}
	}
	return session.PickPrefix(id, ids, notFound)
}

// likePrefix is the LIKE pattern of the strings starting with p.
func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

// Rename sets the title of live session id (trimmed; one line of at most
// 80 runes), which the first user message no longer sets.
func (s *Store) Rename(id, title string) (session.Meta, error) {
	title = strings.TrimSpace(title)
	if err := session.ValidateTitle(title); err != nil {
		return session.Meta{}, fmt.Errorf("session %s: rename: %w", id, err)
	}
	if err := session.CheckID(id); err != nil {
		return session.Meta{}, err
	}
	ctx, cancel := op()
	defer cancel()
	var m session.Meta
	err := s.withWriter(id, func(q db) error {
		tag, err := q.Exec(ctx, `UPDATE sessions SET title = $2, titled_at = greatest($3, titled_at + 1)
			WHERE id = $1 AND archived_at IS NULL`, id, title, s.now().UnixMilli())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(id)
		}
		m, err = s.getMeta(ctx, q, id)
		return err
	})
	if err != nil {
		return session.Meta{}, s.failed(id, "rename", err)
	}
	return m, nil
}
