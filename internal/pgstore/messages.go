package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// Append adds msgs at the end of live session id's transcript, in one
// transaction: all of them or none.
func (s *Store) Append(id string, msgs ...core.Message) (session.Meta, error) {
	if len(msgs) == 0 {
		return s.Get(id)
	}
	ctx, cancel := op()
	defer cancel()
	var m session.Meta
	err := s.withWriter(id, func(q db) error {
		return pgx.BeginFunc(ctx, q, func(tx pgx.Tx) (err error) {
			m, err = s.appendTx(ctx, tx, id, msgs)
			return err
		})
	})
	if err != nil {
		return session.Meta{}, s.failed(id, "append", err)
	}
	return m, nil
}

// appendTx appends msgs to live session id inside tx, in one round trip
// (a batch of statements, each seeing what the ones before it did): it
// locks the session's row, so that appends of every gateway to one session
// are one at a time and one racing an Archive finds the session gone; then
// inserts the lines the files store would write (core.MarshalJSON) from the
// next seq on (read after the lock, from the primary key); gives the
// session the title of its first user message when it has none yet; and
// reads the meta after. tx must be READ COMMITTED (as Open makes every transaction
// of the store unless it says otherwise).
func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, id string, msgs []core.Message) (session.Meta, error) {
	roles, ats, lines := make([]string, len(msgs)), make([]int64, len(msgs)), make([]string, len(msgs))
	title := ""
	for i, m := range msgs {
		if m.Role == "" {
			return session.Meta{}, inputError{fmt.Errorf("message %d has no role", i)}
		}
		b, err := core.MarshalJSON(m)
		if err != nil {
			return session.Meta{}, inputError{fmt.Errorf("message %d: %w", i, err)}
		}
		roles[i], ats[i], lines[i] = m.Role, m.Timestamp, string(b)
		if title == "" && m.Role == core.RoleUser {
			title = session.TitleFrom(m.Content)
		}
	}
	if err := session.CheckID(id); err != nil {
		return session.Meta{}, err
	}
	const live = "id = $1 AND archived_at IS NULL"
	var b pgx.Batch
	b.Queue("SELECT sid FROM sessions WHERE "+live+" FOR UPDATE", id)
	b.Queue(`INSERT INTO messages (sid, seq, role, at, line)
		SELECT s.sid, (SELECT coalesce(max(seq) + 1, 0) FROM messages WHERE sid = s.sid) + u.i - 1, u.role, u.at, u.line
		FROM sessions s, unnest($2::text[], $3::bigint[], $4::text[]) WITH ORDINALITY AS u(role, at, line, i)
		WHERE s.`+live, id, roles, ats, lines)
	if title != "" {
		b.Queue("UPDATE sessions SET title = $2 WHERE "+live+" AND title = ''", id, title)
	}
	b.Queue(metaSelect+" WHERE s."+live, id)
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	var sid int64
	if err := br.QueryRow().Scan(&sid); errors.Is(err, pgx.ErrNoRows) {
		return session.Meta{}, notFound(id)
	} else if err != nil {
		return session.Meta{}, err
	}
	for range b.Len() - 2 {
		if _, err := br.Exec(); err != nil {
			return session.Meta{}, err
		}
	}
	m, err := scanMeta(br.QueryRow())
	if err != nil {
		return session.Meta{}, err
	}
	return m, br.Close()
}

// row is one transcript line as read: its 0-based index and its bytes.
type row struct {
	seq  int
	line []byte
}

// readRows is the lines of session sid that the condition (on seq, with
// args from $2) selects, in order.
func readRows(ctx context.Context, q db, sid int64, cond string, args ...any) ([]row, error) {
	rows, err := q.Query(ctx, "SELECT seq, line FROM messages WHERE sid = $1 AND "+cond+" ORDER BY seq", append([]any{sid}, args...)...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.seq, &x.line)
		return x, err
	})
}

// decoded is what a window of lines holds: the messages, with their line
// indexes, and the lines that do not decode (only an imported transcript
// has any: Append writes what it encoded).
type decoded struct {
	msgs    []core.Message
	lines   []int
	corrupt []session.LineError
}

// decode decodes rows; keep, when not nil, says which messages to keep
// (a line that does not decode is reported whatever it says).
func (s *Store) decode(ctx context.Context, q db, sid int64, rows []row, keep func(core.Message) bool) (decoded, error) {
	var d decoded
	for _, r := range rows {
		m, err := session.DecodeLine(r.line)
		switch {
		case err != nil:
			d.corrupt = append(d.corrupt, session.LineError{Line: r.seq + 1, Err: err.Error()})
		case keep == nil || keep(m):
			d.msgs, d.lines = append(d.msgs, m), append(d.lines, r.seq)
		}
	}
	if len(d.corrupt) == 0 {
		return d, nil
	}
	// A LineError's Offset is the line's byte offset in the export, as the
	// files store gives it in the file: summed here, once, for the few
	// lines that need it.
	seqs := make([]int, len(d.corrupt))
	for i, le := range d.corrupt {
		seqs[i] = le.Line - 1
	}
	rs, err := q.Query(ctx, `SELECT coalesce((SELECT sum(octet_length(line) + 1) FROM messages WHERE sid = $1 AND seq < b.seq), 0)
		FROM unnest($2::int[]) WITH ORDINALITY AS b(seq, i) ORDER BY i`, sid, seqs)
	if err != nil {
		return d, err
	}
	offsets, err := pgx.CollectRows(rs, pgx.RowTo[int64])
	if err != nil {
		return d, err
	}
	for i := range d.corrupt {
		d.corrupt[i].Offset = offsets[i]
	}
	return d, nil
}

// lineCount is the number of lines of session sid: its next seq.
func lineCount(ctx context.Context, q db, sid int64) (int, error) {
	var n int
	err := q.QueryRow(ctx, "SELECT coalesce(max(seq) + 1, 0) FROM messages WHERE sid = $1", sid).Scan(&n)
	return n, err
}

// read runs fn on a read-only snapshot of the database with the sid of
// live session id: the reads fn makes see the transcript at one instant.
func (s *Store) read(id, what string, fn func(ctx context.Context, tx pgx.Tx, sid int64) error) error {
	ctx, cancel := op()
	defer cancel()
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		sid, err := s.sidOf(ctx, tx, id)
		if err != nil {
			return err
		}
		return fn(ctx, tx, sid)
	})
	if err != nil {
		return s.failed(id, what, err)
	}
	return nil
}

// Load is every message of session id, with the lines that do not decode.
func (s *Store) Load(id string) ([]core.Message, []session.LineError, error) {
	var d decoded
	err := s.read(id, "load", func(ctx context.Context, tx pgx.Tx, sid int64) error {
		rows, err := readRows(ctx, tx, sid, "true")
		if err == nil {
			d, err = s.decode(ctx, tx, sid, rows, nil)
		}
		return err
	})
	return d.msgs, d.corrupt, err
}

// Page is up to limit lines from line index offset; offset < 0 means the
// last limit lines.
func (s *Store) Page(id string, offset, limit int) (session.Page, error) {
	var p session.Page
	err := s.read(id, "page", func(ctx context.Context, tx pgx.Tx, sid int64) error {
		total, err := lineCount(ctx, tx, sid)
		if err != nil {
			return err
		}
		if offset < 0 {
			offset = max(0, total-limit)
		}
		p = session.Page{Offset: offset, Total: total}
		if limit <= 0 {
			return nil
		}
		rows, err := readRows(ctx, tx, sid, "seq >= $2 AND seq < $3", offset, offset+limit)
		if err != nil {
			return err
		}
		d, err := s.decode(ctx, tx, sid, rows, nil)
		p.Messages, p.Corrupt = d.msgs, d.corrupt
		return err
	})
	return p, err
}

// Tail is the last n messages of session id: the last n lines, through the
// primary key, whatever the transcript's length.
func (s *Store) Tail(id string, n int) ([]core.Message, []session.LineError, error) {
	var d decoded
	err := s.read(id, "tail", func(ctx context.Context, tx pgx.Tx, sid int64) error {
		if n <= 0 {
			return nil
		}
		rows, err := readRows(ctx, tx, sid, "seq >= (SELECT coalesce(max(seq) + 1, 0) FROM messages WHERE sid = $1) - $2", n)
		if err == nil {
			d, err = s.decode(ctx, tx, sid, rows, nil)
		}
		return err
	})
	return d.msgs, d.corrupt, err
}

// Export writes the transcript as JSONL: each line as stored, then a
// newline, the bytes the files store holds for the same appends.
func (s *Store) Export(w io.Writer, id string) error {
	var buf bytes.Buffer
	err := s.read(id, "export", func(ctx context.Context, tx pgx.Tx, sid int64) error {
		rows, err := readRows(ctx, tx, sid, "true")
		for _, r := range rows {
			buf.Write(r.line)
			buf.WriteByte('\n')
		}
		return err
	})
	if err != nil {
		return err
	}
	// Written once read: a slow reader does not hold a connection.
	_, err = w.Write(buf.Bytes())
	return err
}
