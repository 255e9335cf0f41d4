package pgstore

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// Archive takes live session id out of the live ones, keeping its rows: it
// gets archived_at and the name the files store would give its archived
// transcript, <id>.<UTC time>.jsonl (<UTC time>-<n> when archives of the
// ID in the same millisecond took that), which it returns. An append racing
// it waits for it and then finds the session gone (ErrNotFound). A session
// with a turn recorded (running on any gateway, or left by a dead one and
// not yet marked interrupted) is refused with ErrBusy: its reply would
// have nowhere to go.
func (s *Store) Archive(id string) (string, error) {
	if err := session.CheckID(id); err != nil {
		return "", err
	}
	ctx, cancel := op()
	defer cancel()
	now := s.now()
	stamp := id + "." + now.UTC().Format(session.ArchiveStamp)
	var name string
	err := s.withWriter(id, func(q db) error {
		return pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
			var sid int64
			err := tx.QueryRow(ctx, "SELECT sid FROM sessions WHERE id = $1 AND archived_at IS NULL FOR UPDATE", id).Scan(&sid)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound(id)
			}
			if err != nil {
				return err
			}
			var running bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM turns WHERE sid = $1)", sid).Scan(&running); err != nil {
				return err
			}
			if running {
				return fmt.Errorf("session %s: archive: %w; abort it or wait", id, session.ErrBusy)
			}
			// The names taken are stamp.jsonl, stamp-1.jsonl, ...: as many as
			// the archives of the ID with this stamp.
			var taken int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE id = $1 AND archive_name LIKE $2",
				id, likePrefix(stamp)).Scan(&taken); err != nil {
				return err
			}
			name = stamp + ".jsonl"
			if taken > 0 {
				name = fmt.Sprintf("%s-%d.jsonl", stamp, taken)
			}
			_, err = tx.Exec(ctx, "UPDATE sessions SET archived_at = $2, archive_name = $3 WHERE sid = $1", sid, now.UnixMilli(), name)
			return err
		})
	})
	if err != nil {
		return "", s.failed(id, "archive", err)
	}
	return name, nil
}

// archivedSelect reads archived copies; the caller adds a WHERE on the
// columns of a and archivedOrder.
const archivedSelect = `SELECT * FROM (SELECT ` + metaCols + `, s.archived_at, s.archive_name, s.sid` + metaFrom + `
	WHERE s.archived_at IS NOT NULL) a`

// archivedOrder sorts archived copies as the files store does, newest
// first: by time, then by the -n of archives in the same millisecond, then
// by ID in byte order.
const archivedOrder = ` ORDER BY archived_at DESC, coalesce(substring(archive_name FROM 'Z-(\d+)\.jsonl$')::int, 0) DESC, id COLLATE "C"`

// scanArchived reads the archived copies rows hold, as archivedSelect.
func scanArchived(rows pgx.Rows) ([]session.Archived, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (session.Archived, error) {
		var a session.Archived
		var sid int64
		var err error
		a.Meta, err = scanMeta(r, &a.ArchivedAt, &a.File, &sid)
		return a, err
	})
}

// ListArchived is every archived copy, most recently archived first.
func (s *Store) ListArchived() ([]session.Archived, error) {
	ctx, cancel := op()
	defer cancel()
	rows, err := s.pool.Query(ctx, archivedSelect+archivedOrder)
	if err == nil {
		var out []session.Archived
		if out, err = scanArchived(rows); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("list archived sessions: %s: %w", s.where, err)
}

// Unarchive makes the newest archived copy of id live again, and says how
// many archived copies of id there were. A live session with the ID is
// ErrLive: nothing is replaced (the live-ID index decides a race).
func (s *Store) Unarchive(id string) (session.Archived, int, error) {
	ctx, cancel := op()
	defer cancel()
	var a session.Archived
	var copies int
	err := s.withWriter(id, func(q db) error {
		return pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, archivedSelect+" WHERE id = $1"+archivedOrder, id)
			if err != nil {
				return err
			}
			all, err := scanArchived(rows)
			if err != nil {
				return err
			}
			if copies = len(all); copies == 0 {
				return fmt.Errorf("archived session %s: %w", id, session.ErrNotFound)
			}
			a = all[0]
			_, err = tx.Exec(ctx, "UPDATE sessions SET archived_at = NULL, archive_name = NULL WHERE archive_name = $1", a.File)
			if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
				return fmt.Errorf("session %s: unarchive: %w", id, session.ErrLive)
			}
			if err != nil {
				return err
			}
			a.Meta, err = s.getMeta(ctx, tx, id)
			return err
		})
	})
	if err != nil {
		return session.Archived{}, 0, s.failed(id, "unarchive", err)
	}
	return a, copies, nil
}

// Fork creates newID (a new UUID when empty) holding the first n messages
// of id (n <= 0: all), in one transaction: the session row, and its lines
// copied by one INSERT ... SELECT. Lines that do not decode (imported) are
// not copied, and are returned. The fork's title says what it is a fork of.
func (s *Store) Fork(id string, n int, newID string) (session.Meta, []session.LineError, error) {
	if err := session.CheckID(id); err != nil {
		return session.Meta{}, nil, err
	}
	if newID == "" {
		newID = uuid.NewString()
	} else if err := session.CheckID(newID); err != nil {
		return session.Meta{}, nil, err
	}
	if n <= 0 {
		n = -1 // no bound
	}
	ctx, cancel := op()
	defer cancel()
	var m session.Meta
	var corrupt []session.LineError
	err := s.withWriter(newID, func(q db) error {
		return pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
			src, err := s.getMeta(ctx, tx, id)
			if err != nil {
				return err
			}
			srcSID, err := s.sidOf(ctx, tx, id)
			if err != nil {
				return err
			}
			var sid int64
			err = tx.QueryRow(ctx, `INSERT INTO sessions (id, channel, created_at, forked_from, title) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (id) WHERE archived_at IS NULL DO NOTHING RETURNING sid`,
				newID, src.Channel, s.now().UnixMilli(), id, session.ForkTitle(src)).Scan(&sid)
			if errors.Is(err, pgx.ErrNoRows) {
				return inputError{fmt.Errorf("target ID %s already exists", newID)}
			}
			if err != nil {
				return err
			}
			// Which lines decode is known in Go only: read the window's
			// lines that the role column says are no message (an import
			// writes '' there), and copy the others.
			bad, err := readRows(ctx, tx, srcSID, "role NOT IN ($2, $3, $4, $5) AND ($6 < 0 OR seq < $6)",
				core.RoleUser, core.RoleAssistant, core.RoleSystem, core.RoleSummary, n)
			if err != nil {
				return err
			}
			d, err := s.decode(ctx, tx, srcSID, bad, nil)
			if err != nil {
				return err
			}
			corrupt = d.corrupt
			if _, err := tx.Exec(ctx, `INSERT INTO messages (sid, seq, role, at, line)
				SELECT $1, row_number() OVER (ORDER BY seq) - 1, role, at, line FROM messages
				WHERE sid = $2 AND role IN ($3, $4, $5, $6) AND ($7 < 0 OR seq < $7)`,
				sid, srcSID, core.RoleUser, core.RoleAssistant, core.RoleSystem, core.RoleSummary, n); err != nil {
				return err
			}
			m, err = s.getMeta(ctx, tx, newID)
			return err
		})
	})
	if err != nil {
		return session.Meta{}, nil, s.failed(id, "fork", err)
	}
	return m, corrupt, nil
}

// Running is the set of live sessions with a turn recorded: running on a
// gateway, or left by a dead one and not yet marked interrupted (within
// the sweep's 5 s).
func (s *Store) Running() (map[string]bool, error) {
	ctx, cancel := op()
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT s.id FROM turns t JOIN sessions s USING (sid) WHERE s.archived_at IS NULL")
	if err != nil {
		return nil, fmt.Errorf("running turns: %s: %w", s.where, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("running turns: %s: %w", s.where, err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
