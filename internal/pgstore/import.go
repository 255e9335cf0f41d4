package pgstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/session"
)

// Import outcomes of one transcript.
const (
	Imported = "imported"  // copied whole
	CaughtUp = "caught up" // the database held its first lines: the rest were added
	Skipped  = "skipped"   // the database already holds it, line for line
	Conflict = "conflict"  // the database holds it with more or other lines: left alone
	Failed   = "failed"    // could not be read or stored
)

// ImportReport is what Import did with one transcript of the files store,
// or is doing (Outcome "" while its transaction runs).
type ImportReport struct {
	Session string // the session ID
	// Archive is the archived copy's name, <id>.<UTC time>[-n].jsonl as
	// in the files store's archive directory; "" for a live session.
	Archive string
	Outcome string
	Lines   int    // the transcript's complete lines
	Detail  string // why a conflict or a failure; a torn last line left out
	N, Of   int    // this is transcript N of Of
}

// ImportSummary counts the outcomes of an Import.
type ImportSummary struct {
	Imported, CaughtUp, Skipped, Conflicts, Failed int
}

// OK reports whether every transcript is now in the database.
func (s ImportSummary) OK() bool { return s.Conflicts == 0 && s.Failed == 0 }

// importItem is one transcript of the files store: a live session, or an
// archived copy.
type importItem struct {
	meta       session.Meta
	file       string // the transcript, in the sessions directory
	archive    string // the archived copy's name, "" when live
	archivedAt int64  // Unix ms
}

// Import copies the files store src (its transcripts are read from its
// sessions directory as they are on disk) into the database:
// every live session and every archived copy, under its archive name.
//
// Each transcript is copied in one transaction (COPY), so an import that
// is killed leaves each one whole or absent, and running it again finishes
// the rest: a transcript the database holds line for line is skipped; one
// of which the database holds only the first lines (the files store went
// on after an earlier import) gets the rest; one the database holds with
// more or other lines is a conflict, reported and left alone, never
// merged. Lines are copied verbatim, an unreadable one too (as a line that
// is no message), so export gives the same bytes on both stores; a torn
// last line (an append cut short by a crash, never acknowledged) is left
// out and reported.
//
// report is called as a transcript's transaction starts (Outcome "") and
// when it is done. The error is for the store as a whole (the source's
// lists, ctx); each transcript's own failure is in its report.
func (s *Store) Import(ctx context.Context, src *session.Store, report func(ImportReport)) (ImportSummary, error) {
	var sum ImportSummary
	root, err := os.OpenRoot(src.Dir())
	if err != nil {
		return sum, fmt.Errorf("import: %w", err)
	}
	defer root.Close()
	live, err := src.List()
	if err != nil {
		return sum, fmt.Errorf("import: %w", err)
	}
	archived, err := src.ListArchived()
	if err != nil {
		return sum, fmt.Errorf("import: %w", err)
	}
	items := make([]importItem, 0, len(live)+len(archived))
	for _, m := range live {
		items = append(items, importItem{meta: m, file: m.SessionID + ".jsonl"})
	}
	for _, a := range archived {
		// The files store's archive/<name>; the database keeps the name.
		items = append(items, importItem{meta: a.Meta, file: a.File, archive: filepath.Base(a.File), archivedAt: a.ArchivedAt})
	}
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return sum, context.Cause(ctx)
		}
		r := ImportReport{Session: it.meta.SessionID, Archive: it.archive, N: i + 1, Of: len(items)}
		r.Outcome, r.Lines, r.Detail = s.importOne(ctx, root, it, func(lines int) {
			started := r
			started.Lines = lines
			report(started)
		})
		report(r)
		switch r.Outcome {
		case Imported:
			sum.Imported++
		case CaughtUp:
			sum.CaughtUp++
		case Skipped:
			sum.Skipped++
		case Conflict:
			sum.Conflicts++
		default:
			sum.Failed++
		}
	}
	return sum, nil
}

// importOne copies one transcript in one transaction; started is called
// inside it, before the copy.
func (s *Store) importOne(ctx context.Context, root *os.Root, it importItem, started func(lines int)) (outcome string, lines int, detail string) {
	body, torn, err := readTranscript(root, it.file)
	if err != nil {
		return Failed, 0, err.Error()
	}
	all := splitLines(body)
	if torn > 0 {
		detail = fmt.Sprintf("a torn last line (%d bytes, an append cut short) was left out", torn)
	}
	if n, bad := unstorable(all); bad != "" {
		return Failed, len(all), fmt.Sprintf("line %d %s: PostgreSQL text cannot hold it", n, bad)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		sid, have, haveSum, err := s.imported(ctx, tx, it)
		if err != nil {
			return err
		}
		from := 0
		switch {
		case sid == 0:
			outcome = Imported
			if sid, err = s.insertImported(ctx, tx, it); err != nil {
				return err
			}
		case have == len(all) && haveSum == linesSum(all):
			outcome = Skipped
			return nil
		case have < len(all) && haveSum == linesSum(all[:have]):
			outcome, from = CaughtUp, have
		default:
			outcome = Conflict
			detail = fmt.Sprintf("the database holds it with other lines (%d there, %d in the file): left alone", have, len(all))
			return nil
		}
		started(len(all))
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"sid", "seq", "role", "at", "line"},
			pgx.CopyFromRows(messageRows(sid, it.meta.CreatedAt, all, from)))
		return err
	})
	if err != nil {
		return Failed, len(all), err.Error()
	}
	return outcome, len(all), detail
}

// imported finds the transcript in the database (sid 0: not there), locked
// until tx ends, with its line count and the checksum of its lines.
func (s *Store) imported(ctx context.Context, tx pgx.Tx, it importItem) (sid int64, lines int, sum string, err error) {
	q, key := `SELECT sid FROM sessions WHERE id = $1 AND archived_at IS NULL FOR UPDATE`, it.meta.SessionID
	if it.archive != "" {
		q, key = `SELECT sid FROM sessions WHERE archive_name = $1 FOR UPDATE`, it.archive
	}
	err = tx.QueryRow(ctx, q, key).Scan(&sid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, "", nil
	}
	if err != nil {
		return 0, 0, "", err
	}
	err = tx.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(line, E'\n' ORDER BY seq)), '') FROM messages WHERE sid = $1`, sid).Scan(&lines, &sum)
	return sid, lines, sum, err
}

// insertImported creates the transcript's session row, with the meta the
// files store keeps beside its lines.
func (s *Store) insertImported(ctx context.Context, tx pgx.Tx, it importItem) (int64, error) {
	m := it.meta
	var archivedAt, archiveName any // NULL while live
	if it.archive != "" {
		archivedAt, archiveName = it.archivedAt, it.archive
	}
	var sid int64
	err := tx.QueryRow(ctx, `INSERT INTO sessions (id, channel, created_at, forked_from, title, titled_at, archived_at, archive_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING sid`,
		m.SessionID, m.Channel, m.CreatedAt, m.ForkedFrom, m.Title, m.TitledAt, archivedAt, archiveName).Scan(&sid)
	return sid, err
}

// messageRows are the rows of lines[from:]: a line that is no message
// keeps its bytes, with role ” and the time of the line before it.
func messageRows(sid, createdAt int64, lines [][]byte, from int) [][]any {
	rows := make([][]any, 0, len(lines)-from)
	at := createdAt
	for i, l := range lines {
		role := ""
		if m, err := session.DecodeLine(bytes.TrimRight(l, "\r")); err == nil {
			role, at = m.Role, m.Timestamp
		}
		if i >= from {
			rows = append(rows, []any{sid, int32(i), role, at, string(l)})
		}
	}
	return rows
}

// readTranscript reads a transcript's complete lines, and the length of a
// torn last line after them (left out).
func readTranscript(root *os.Root, name string) (body []byte, torn int, err error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	end := bytes.LastIndexByte(b, '\n') + 1
	return b[:end], len(b) - end, nil
}

// splitLines splits complete lines, dropping their newlines.
func splitLines(body []byte) [][]byte {
	if len(body) == 0 {
		return nil
	}
	return bytes.Split(body[:len(body)-1], []byte("\n"))
}

// unstorable finds the first line a text column cannot hold: the 1-based
// line number and why; "" when all can be stored.
func unstorable(lines [][]byte) (int, string) {
	for i, l := range lines {
		switch {
		case !utf8.Valid(l):
			return i + 1, "is not valid UTF-8"
		case bytes.IndexByte(l, 0) >= 0:
			return i + 1, "holds a NUL byte"
		}
	}
	return 0, ""
}

// linesSum is the checksum the database computes of a transcript's lines
// in imported: md5 of the lines joined by newlines, "" for none.
func linesSum(lines [][]byte) string {
	if len(lines) == 0 {
		return ""
	}
	h := md5.New()
	for i, l := range lines {
		if i > 0 {
			h.Write([]byte("\n"))
		}
		h.Write(l)
	}
	return hex.EncodeToString(h.Sum(nil))
}
