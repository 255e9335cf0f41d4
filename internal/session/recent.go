package session

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Recent is the part of a transcript a turn sends to the model: the
// latest summary record, when there is one, and the messages after what it
// covers.
type Recent struct {
	// Messages starts with the latest summary (core.RoleSummary), if one
	// was found, followed by the lines from its Covers on, older summaries
	// left out.
	Messages []core.Message
	// Lines holds each message's 0-based line index in the transcript, so
	// that a new summary can say which lines it covers.
	Lines   []int
	Corrupt []LineError
}

// summaryPrefix starts every summary line Append writes (core.MarshalJSON
// keeps core.Message's field order), so the search for the latest summary
// decodes only the lines that may be one.
var summaryPrefix = []byte(`{"role":"` + core.RoleSummary + `"`)

// Recent reads a transcript back from its end to its latest summary record
// and the lines that summary does not cover, never more than the last n
// lines: a session that was never compacted loads its last n lines, as
// Tail does. Reading stops early at a summary, so a compacted session
// costs what came after its summary, not its whole history.
//
// What it found is kept in memory (see recentCache): the next call on the
// session reads and decodes only the lines appended since, by this process
// or another, instead of the whole history again.
func (s *Store) Recent(id string, n int) (Recent, error) {
	e, err := s.lookup(id)
	if err != nil {
		return Recent{}, err
	}
	f, fi, err := safeopen.OpenIn(s.root, id+jsonlExt, safeopen.Regular)
	if err != nil {
		return Recent{}, s.readFailed(id, e, "recent", err)
	}
	defer f.Close()
	size := fi.Size()
	if n <= 0 || size == 0 {
		return Recent{}, nil
	}
	// One reader of a session's cache at a time: it is extended in place.
	e.recentMu.Lock()
	defer e.recentMu.Unlock()
	total := s.linesIfKnown(id, size, -1)
	if c := s.cachedRecent(e); c != nil && c.n == n {
		ok, err := c.extend(f, fi, total)
		if err != nil {
			return Recent{}, fmt.Errorf("session %s: recent: %w", id, err)
		}
		if ok {
			s.keepRecent(e, c)
			return c.view(), nil
		}
	}
	c, err := readRecent(f, fi, n, total)
	if err != nil {
		return Recent{}, fmt.Errorf("session %s: recent: %w", id, err)
	}
	if tornTail(f, size) {
		// An append in progress or cut short: the next call reads again.
		s.keepRecent(e, nil)
	} else {
		s.keepRecent(e, c)
	}
	return c.view(), nil
}

// recentCache is what Recent found in a session's transcript, kept so the
// next call extends it by the lines appended since instead of reading and
// decoding the whole history again. It is valid for the file it was read
// from (os.SameFile) as long as that file only grew: appends are the only
// writes to a transcript (a torn tail is cut back to the line end it was
// appended at, and a cache is never made of a file that ends torn), an
// archive or a fork's copy is another file. A file of the same size with
// another mtime, a shorter one, a new summary record, or a line count that
// disagrees with the index all send Recent back to reading the file.
type recentCache struct {
	n       int
	fi      os.FileInfo // of the file as read: identity, size, mtime
	total   int         // complete lines up to fi.Size()
	summary *core.Message
	at      int // the summary's line index
	// The other lines kept, in order: the messages with their line
	// indexes and byte offsets, and the lines that would not decode.
	msgs    []core.Message
	lines   []int
	offsets []int64
	corrupt []LineError
}

// view is the Recent of c, in slices of its own: the caller may keep it
// while c is extended.
func (c *recentCache) view() Recent {
	return RecentOf(c.summary, c.at, c.msgs, c.lines, c.corrupt)
}

// RecentOf is the Recent a store's cache of it holds: the summary (nil for
// none) at line index at, then msgs at lines, and the corrupt lines. It is
// in slices of its own, so that the caller may keep it while the store
// extends its cache. (pgstore's cache is built the same way.)
func RecentOf(summary *core.Message, at int, msgs []core.Message, lines []int, corrupt []LineError) Recent {
	var r Recent
	if summary != nil {
		r.Messages, r.Lines = []core.Message{*summary}, []int{at}
	}
	if len(msgs) > 0 {
		r.Messages, r.Lines = append(r.Messages, msgs...), append(r.Lines, lines...)
	}
	if len(corrupt) > 0 {
		r.Corrupt = slices.Clone(corrupt)
	}
	return r
}

// bytes is about how much of the transcript c holds decoded, for the
// store's bound on its caches.
func (c *recentCache) bytes() int64 {
	if len(c.offsets) == 0 {
		return 0
	}
	return c.fi.Size() - c.offsets[0]
}

// keep adds one line (line index i, at offset) to c, as Recent reads it.
func (c *recentCache) keep(line []byte, i int, offset int64) {
	m, err := DecodeLine(line)
	switch {
	case err != nil:
		c.corrupt = append(c.corrupt, LineError{Line: i + 1, Offset: offset, Err: err.Error()})
	case m.Role != core.RoleSummary:
		c.msgs, c.lines, c.offsets = append(c.msgs, m), append(c.lines, i), append(c.offsets, offset)
	}
}

// extend brings c up to the file f, whose stat is fi and whose line count
// the index knows as known (-1: unknown). ok is false, and c unchanged,
// when c cannot be extended to what Recent would read (see recentCache).
func (c *recentCache) extend(f *os.File, fi os.FileInfo, known int) (ok bool, err error) {
	old, size := c.fi.Size(), fi.Size()
	switch {
	case !os.SameFile(c.fi, fi) || size < old:
		return false, nil
	case size == old:
		return fi.ModTime().Equal(c.fi.ModTime()) && (known < 0 || known == c.total), nil
	}
	// From the newline that ended the cached part, to the end.
	data := make([]byte, size-old+1)
	if _, err := f.ReadAt(data, old-1); err != nil {
		return false, err
	}
	if data[0] != '\n' || data[len(data)-1] != '\n' {
		return false, nil
	}
	var lines [][]byte
	var offsets []int64
	for i := 1; i < len(data); {
		j := i + bytes.IndexByte(data[i:], '\n')
		if body := bytes.TrimRight(data[i:j], "\r"); len(bytes.TrimSpace(body)) > 0 {
			if bytes.HasPrefix(body, summaryPrefix) {
				if m, err := DecodeLine(body); err == nil && m.Role == core.RoleSummary {
					return false, nil // a compaction: read back to it
				}
			}
			lines, offsets = append(lines, body), append(offsets, old-1+int64(i))
		}
		i = j + 1
	}
	total := c.total + len(lines)
	if known >= 0 && known != total || c.summary != nil && c.at < total-c.n {
		// The index counts otherwise, or the summary fell off the bound.
		return false, nil
	}
	for k, line := range lines {
		c.keep(line, c.total+k, offsets[k])
	}
	c.fi, c.total = fi, total
	c.trim()
	return true, nil
}

// trim drops what is before the first line Recent returns: the last n
// lines, and from a summary's Covers on.
func (c *recentCache) trim() {
	first := c.total - c.n
	if c.summary != nil {
		first = max(first, c.summary.Covers)
	}
	k, _ := slices.BinarySearch(c.lines, first)
	c.msgs, c.lines, c.offsets = c.msgs[k:], c.lines[k:], c.offsets[k:]
	k = 0
	for k < len(c.corrupt) && c.corrupt[k].Line-1 < first {
		k++
	}
	c.corrupt = c.corrupt[k:]
}

// readRecent reads what Recent returns from f (stat fi) whole; total is
// its line count when the index knows it, else -1.
func readRecent(f *os.File, fi os.FileInfo, n, total int) (*recentCache, error) {
	size := fi.Size()
	if total < 0 {
		res, err := scanReader(io.NewSectionReader(f, 0, size), func(int) bool { return false })
		if err != nil {
			return nil, err
		}
		total = res.lines
	}
	// Look for the latest summary in ever larger tails (the reads grow
	// fourfold, so they cost at most about a third more than one read of
	// the final size), then read back to the first line it does not cover.
	var lines [][]byte
	var offsets []int64
	summary := -1 // index in lines
	var sum core.Message
	var err error
	for k := min(64, n); ; k = min(4*k, n) {
		if lines, offsets, err = lastN(f, size, k); err != nil {
			return nil, err
		}
		for i := len(lines) - 1; i >= 0 && summary < 0; i-- {
			if !bytes.HasPrefix(lines[i], summaryPrefix) {
				continue
			}
			if m, err := DecodeLine(lines[i]); err == nil && m.Role == core.RoleSummary {
				summary, sum = i, m
			}
		}
		if summary >= 0 || k == n || len(lines) < k {
			break
		}
	}
	first := total - len(lines) // line index of lines[0]
	c := &recentCache{n: n, fi: fi, total: total}
	if summary >= 0 {
		c.summary, c.at = &sum, first+summary
		if need := min(total-max(sum.Covers, 0), n); need > len(lines) {
			if lines, offsets, err = lastN(f, size, need); err != nil {
				return nil, err
			}
			first = total - len(lines)
		}
		// Keep the lines from Covers on, and drop what is before.
		skip := min(max(sum.Covers-first, 0), len(lines))
		lines, offsets, first = lines[skip:], offsets[skip:], first+skip
	}
	for i, line := range lines {
		c.keep(line, first+i, offsets[i])
	}
	return c, nil
}

// lastN is lastLines cut to at most n lines.
func lastN(f io.ReaderAt, size int64, n int) ([][]byte, []int64, error) {
	lines, offsets, err := lastLines(f, size, n)
	cut := max(0, len(lines)-n)
	return lines[cut:], offsets[cut:], err
}

// recentCacheBytes bounds the transcript bytes the store keeps decoded for
// Recent, over all sessions: the least recently used caches go first, and
// a session whose recent history alone is larger is read whole each time.
const recentCacheBytes = 16 << 20

// cacheSlot is a session's place in the store's list of Recent caches, with
// the bytes it was counted for.
type cacheSlot struct {
	e     *entry
	bytes int64
}

// cachedRecent is e's Recent cache, or nil, marked as just used.
func (s *Store) cachedRecent(e *entry) *recentCache {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if e.recentSlot != nil {
		s.recentLRU.MoveToFront(e.recentSlot)
	}
	return e.recent
}

// keepRecent makes c e's Recent cache (nil: drops it), within
// recentCacheBytes.
func (s *Store) keepRecent(e *entry, c *recentCache) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	s.dropRecent(e)
	if c == nil || c.bytes() > recentCacheBytes {
		return
	}
	e.recent, e.recentSlot = c, s.recentLRU.PushFront(&cacheSlot{e: e, bytes: c.bytes()})
	s.recentBytes += c.bytes()
	for s.recentBytes > recentCacheBytes {
		s.dropRecent(s.recentLRU.Back().Value.(*cacheSlot).e)
	}
}

// dropRecent forgets e's Recent cache. s.cacheMu must be held.
func (s *Store) dropRecent(e *entry) {
	if e.recentSlot == nil {
		return
	}
	s.recentBytes -= e.recentSlot.Value.(*cacheSlot).bytes
	s.recentLRU.Remove(e.recentSlot)
	e.recent, e.recentSlot = nil, nil
}
