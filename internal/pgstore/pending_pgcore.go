package pgstore

// TEMPORARY: stand-ins for pgcore's sidOf and appendTx (branch i-pgcore),
// deleted when it is merged.

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

func (s *Store) sidOf(ctx context.Context, q db, id string) (int64, error) {
	var sid int64
	err := q.QueryRow(ctx, "SELECT sid FROM sessions WHERE id = $1 AND archived_at IS NULL", id).Scan(&sid)
	if err == pgx.ErrNoRows {
		return 0, session.ErrNotFound
	}
	return sid, err
}

func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, id string, msgs []core.Message) (session.Meta, error) {
	sid, err := s.sidOf(ctx, tx, id)
	if err != nil {
		return session.Meta{}, err
	}
	for _, m := range msgs {
		b, _ := json.Marshal(m)
		if _, err := tx.Exec(ctx, "INSERT INTO messages (sid, seq, role, at, line) SELECT $1, count(*), $2, $3, $4 FROM messages WHERE sid = $1", sid, m.Role, m.Timestamp, string(b)); err != nil {
			return session.Meta{}, err
		}
	}
	return session.Meta{}, nil
}

func (s *Store) Create(id, channel string) (session.Meta, bool, error) {
	_, err := s.pool.Exec(context.Background(), "INSERT INTO sessions (id, channel, created_at) VALUES ($1, $2, 0)", id, channel)
	return session.Meta{}, true, err
}

func (s *Store) Append(id string, msgs ...core.Message) (session.Meta, error) {
	ctx := context.Background()
	var m session.Meta
	err := s.withWriter(id, func(q db) error {
		return pgx.BeginFunc(ctx, q, func(tx pgx.Tx) (err error) {
			m, err = s.appendTx(ctx, tx, id, msgs)
			return err
		})
	})
	return m, err
}

func (s *Store) Load(id string) ([]core.Message, []session.LineError, error) {
	rows, err := s.pool.Query(context.Background(), "SELECT line FROM messages m JOIN sessions s USING (sid) WHERE s.id = $1 ORDER BY seq", id)
	if err != nil {
		return nil, nil, err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	var out []core.Message
	for _, l := range lines {
		var m core.Message
		json.Unmarshal([]byte(l), &m)
		out = append(out, m)
	}
	return out, nil, err
}
