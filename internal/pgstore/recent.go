package pgstore

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// Recent is what a turn sends to the model: the latest summary record
// within the last n lines, when there is one, then the lines from what it
// covers on (never more than the last n), as the files store's Recent.
//
// What it found is kept in memory (recentCache, by the session's sid): the
// next call reads and decodes only the rows appended since, by any
// gateway, instead of the whole history again. A session archived and
// created again has another sid, so it never sees the old one's cache.
func (s *Store) Recent(id string, n int) (session.Recent, error) {
	ctx, cancel := op()
	defer cancel()
	sid, err := s.sidOf(ctx, s.pool, id)
	if err != nil {
		return session.Recent{}, s.failed(id, "recent", err)
	}
	if n <= 0 {
		return session.Recent{}, nil
	}
	// Taken out while in use: a concurrent Recent of the session (rare:
	// one turn at a time) reads afresh rather than share it.
	c := s.recent.take(sid)
	if c != nil && c.n == n {
		ok, err := s.extendRecent(ctx, sid, c)
		if err != nil {
			return session.Recent{}, s.failed(id, "recent", err)
		}
		if ok {
			s.recent.put(sid, c)
			return c.view(), nil
		}
	}
	err = s.snapshot(ctx, func(tx pgx.Tx) (err error) {
		c, err = s.readRecent(ctx, tx, sid, n)
		return err
	})
	if err != nil {
		return session.Recent{}, s.failed(id, "recent", err)
	}
	s.recent.put(sid, c)
	return c.view(), nil
}

// summaryPrefix starts every summary line Append writes (core.MarshalJSON
// keeps core.Message's field order): only such lines are decoded to look
// for one.
var summaryPrefix = []byte(`{"role":"` + core.RoleSummary + `"`)

// isSummary reports whether line is a summary record.
func isSummary(line []byte) (core.Message, bool) {
	if !bytes.HasPrefix(line, summaryPrefix) {
		return core.Message{}, false
	}
	m, err := session.DecodeLine(line)
	return m, err == nil && m.Role == core.RoleSummary
}

// notSummary keeps the messages that are not summary records: Recent's
// messages hold the latest one first, and leave the others out.
func notSummary(m core.Message) bool { return m.Role != core.RoleSummary }

// recentCache is what Recent found in a session: valid as long as the
// session's rows are only appended to, which they are.
type recentCache struct {
	n       int
	total   int // lines read: the next seq
	summary *core.Message
	at      int // the summary's line index
	// The other lines kept, in order: the messages with their line indexes
	// and line lengths, and the lines that would not decode.
	msgs    []core.Message
	lines   []int
	sizes   []int
	corrupt []session.LineError
	bytes   int64 // sum of sizes: what the store's bound counts
}

// readRecent reads what Recent returns for session sid, in tx (a snapshot,
// so the line count, the summary and the lines agree).
func (s *Store) readRecent(ctx context.Context, tx pgx.Tx, sid int64, n int) (*recentCache, error) {
	total, err := lineCount(ctx, tx, sid)
	if err != nil {
		return nil, err
	}
	c := &recentCache{n: n, total: total}
	from := max(0, total-n)
	sums, err := readRows(ctx, tx, sid, "role = $2 AND seq >= $3", core.RoleSummary, from)
	if err != nil {
		return nil, err
	}
	for i := len(sums) - 1; i >= 0; i-- {
		if m, ok := isSummary(sums[i].line); ok {
			c.summary, c.at = &m, sums[i].seq
			from = min(total, max(from, m.Covers))
			break
		}
	}
	rows, err := readRows(ctx, tx, sid, "seq >= $2", from)
	if err != nil {
		return nil, err
	}
	return c, c.add(s, ctx, tx, sid, rows)
}

// extendRecent brings c up to the rows of session sid appended since it
// was read. ok is false when c cannot be extended to what Recent would
// read: a new summary record, or the summary falling out of the last n.
func (s *Store) extendRecent(ctx context.Context, sid int64, c *recentCache) (ok bool, err error) {
	rows, err := readRows(ctx, s.pool, sid, "seq >= $2", c.total)
	if err != nil || len(rows) == 0 {
		return err == nil, err
	}
	for i, r := range rows {
		if _, sum := isSummary(r.line); sum || r.seq != c.total+i {
			// A compaction: read back to it. (Or lines that do not follow
			// on from what c holds, which appends never make: the rows
			// win over the cache.)
			return false, nil
		}
	}
	total := rows[len(rows)-1].seq + 1
	if c.summary != nil && c.at < total-c.n {
		return false, nil
	}
	c.total = total
	if err := c.add(s, ctx, s.pool, sid, rows); err != nil {
		return false, err
	}
	c.trim()
	return true, nil
}

// add decodes rows into c.
func (c *recentCache) add(s *Store, ctx context.Context, q db, sid int64, rows []row) error {
	d, err := s.decode(ctx, q, sid, rows, notSummary)
	if err != nil {
		return err
	}
	c.msgs, c.lines, c.corrupt = append(c.msgs, d.msgs...), append(c.lines, d.lines...), append(c.corrupt, d.corrupt...)
	j := 0 // d.lines are some of rows' seqs, in order
	for _, l := range d.lines {
		for rows[j].seq != l {
			j++
		}
		c.sizes = append(c.sizes, len(rows[j].line))
		c.bytes += int64(len(rows[j].line))
	}
	return nil
}

// trim drops what is before the first line Recent returns: the last n
// lines, and from the summary's Covers on.
func (c *recentCache) trim() {
	first := c.total - c.n
	if c.summary != nil {
		first = max(first, c.summary.Covers)
	}
	k, _ := slices.BinarySearch(c.lines, first)
	for _, size := range c.sizes[:k] {
		c.bytes -= int64(size)
	}
	c.msgs, c.lines, c.sizes = c.msgs[k:], c.lines[k:], c.sizes[k:]
	k = 0
	for k < len(c.corrupt) && c.corrupt[k].Line-1 < first {
		k++
	}
	c.corrupt = c.corrupt[k:]
}

// view is the Recent of c, in slices of its own: the caller may keep it
// while c is extended.
func (c *recentCache) view() session.Recent {
	return session.RecentOf(c.summary, c.at, c.msgs, c.lines, c.corrupt)
}

// recentCacheBytes bounds the line bytes the store keeps decoded for
// Recent, over all sessions: the least recently used caches go first, and
// a session whose recent history alone is larger is read whole each time.
const recentCacheBytes = 16 << 20

// recentLRU holds the sessions' Recent caches, most recently used first,
// within limit bytes (0: recentCacheBytes). The zero value is empty and
// ready.
type recentLRU struct {
	limit int64
	mu    sync.Mutex
	bySID map[int64]*list.Element // of *lruItem
	order list.List
	bytes int64
}

type lruItem struct {
	sid int64
	c   *recentCache
}

// take removes session sid's cache and returns it (nil: none).
func (l *recentLRU) take(sid int64) *recentCache {
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.bySID[sid]
	if el == nil {
		return nil
	}
	l.remove(el)
	return el.Value.(*lruItem).c
}

// put makes c session sid's cache, dropping the least recently used ones
// beyond the bound.
func (l *recentLRU) put(sid int64, c *recentCache) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.bySID[sid]; el != nil {
		l.remove(el) // a concurrent Recent's: this one is as new
	}
	limit := cmp.Or(l.limit, recentCacheBytes)
	if c.bytes > limit {
		return
	}
	if l.bySID == nil {
		l.bySID = map[int64]*list.Element{}
	}
	l.bySID[sid] = l.order.PushFront(&lruItem{sid: sid, c: c})
	l.bytes += c.bytes
	for l.bytes > limit {
		l.remove(l.order.Back())
	}
}

// remove drops el. l.mu must be held.
func (l *recentLRU) remove(el *list.Element) {
	it := el.Value.(*lruItem)
	l.order.Remove(el)
	delete(l.bySID, it.sid)
	l.bytes -= it.c.bytes
}
