package session

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// The index snapshot (<sessions>/.index) lets a restart index thousands of
// sessions with one stat each instead of opening every meta file. It is a
// cache of the meta cache: each line is one session's meta plus the size
// and modification time of its JSONL and of its meta file. An entry counts
// only while its line is intact (checksum), the JSONL is exactly as
// recorded and the meta file exists;
// anything else (a session added, changed or archived by another process,
// a meta file deleted, a crash) falls back to reading the meta file, so a
// stale or broken snapshot costs time, never correctness. A meta file that
// changed behind the snapshot's back is rewritten from the index in the
// background (repairMetaFiles).
//
// Format: a header line, then one tab-separated line per session:
//
//	miniclaw-index 2
//	<id> <jsonl size> <jsonl mtime ns> <meta size> <meta mtime ns> <createdAt> <updatedAt> <messageCount> <channel> <forkedFrom> <title> <crc>
//
// with the three strings Go-quoted (strconv.Quote), so no tab or newline
// can split a field, and <crc> the CRC-32C of the line before its tab, in
// hex: a line damaged in place (a flipped digit still parses) is refused,
// as is one whose count no transcript of its size can hold (see
// plausible). A hand-written format: decoding 10,000 JSON metas took
// longer than the whole startup budget.
const (
	snapshotName   = ".index"
	snapshotHeader = "miniclaw-index 2"
	snapshotFields = 11
	// maxSnapshotBytes bounds the snapshot: a line is a few hundred bytes,
	// so this holds over a hundred thousand sessions; a bigger file is
	// damage, and the sessions are indexed from their meta files instead.
	maxSnapshotBytes = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// fileStamp is what the snapshot remembers of a file to tell it unchanged.
type fileStamp struct{ size, mtime int64 }

func stampOf(fi fs.FileInfo) fileStamp { return fileStamp{fi.Size(), fi.ModTime().UnixNano()} }

// snapEntry is one session as the snapshot recorded it. The index entry
// lives inside it, so a session taken from the snapshot costs no
// allocation of its own.
type snapEntry struct {
	e           entry     // e.meta: the meta it recorded
	jsonl, file fileStamp // the transcript and the meta file when recorded
	hasMeta     bool      // the meta file is in the directory now
}

// readSnapshot loads the snapshot; a missing or unreadable one is empty, and
// a malformed line is skipped (its session falls back to its meta file).
// The strings of the entries share the file's one string.
func (s *Store) readSnapshot() map[string]*snapEntry {
	b, err := readLimited(s.root, snapshotName, maxSnapshotBytes)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("index snapshot not read; sessions are indexed from their meta files", "err", err)
		}
		return nil
	}
	header, rest, _ := strings.Cut(string(b), "\n")
	if header != snapshotHeader {
		s.log.Warn("index snapshot of an unknown format ignored", "header", header)
		return nil
	}
	entries := make([]snapEntry, strings.Count(rest, "\n")+1)
	out := make(map[string]*snapEntry, len(entries))
	for i := 0; len(rest) > 0; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if parseSnapLine(line, &entries[i]) {
			out[entries[i].e.meta.SessionID] = &entries[i]
			i++
		}
	}
	return out
}

// formatSnapLine is the snapshot line of m, its JSONL and its meta file,
// without the newline.
func formatSnapLine(m Meta, jsonl, file fileStamp) string {
	f := []string{m.SessionID}
	for _, n := range []int64{jsonl.size, jsonl.mtime, file.size, file.mtime, m.CreatedAt, m.UpdatedAt, int64(m.MessageCount)} {
		f = append(f, strconv.FormatInt(n, 10))
	}
	for _, str := range []string{m.Channel, m.ForkedFrom, m.Title} {
		f = append(f, strconv.Quote(str))
	}
	line := strings.Join(f, "\t")
	return line + "\t" + lineCRC(line)
}

func lineCRC(line string) string {
	return fmt.Sprintf("%08x", crc32.Checksum([]byte(line), crcTable))
}

// parseSnapLine decodes a line written by formatSnapLine into e; it reports
// false for anything else.
func parseSnapLine(line string, e *snapEntry) bool {
	line, crc, ok := cutLast(line, "\t")
	if !ok || crc != lineCRC(line) {
		return false
	}
	var f [snapshotFields]string
	for i := range f {
		var ok bool
		if f[i], line, ok = strings.Cut(line, "\t"); ok != (i < snapshotFields-1) {
			return false // too few fields, or too many
		}
	}
	var err [10]error
	m := &e.e.meta
	m.SessionID = f[0]
	e.jsonl.size, err[0] = strconv.ParseInt(f[1], 10, 64)
	e.jsonl.mtime, err[1] = strconv.ParseInt(f[2], 10, 64)
	e.file.size, err[2] = strconv.ParseInt(f[3], 10, 64)
	e.file.mtime, err[3] = strconv.ParseInt(f[4], 10, 64)
	m.CreatedAt, err[4] = strconv.ParseInt(f[5], 10, 64)
	m.UpdatedAt, err[5] = strconv.ParseInt(f[6], 10, 64)
	m.MessageCount, err[6] = strconv.Atoi(f[7])
	m.Channel, err[7] = strconv.Unquote(f[8])
	m.ForkedFrom, err[8] = strconv.Unquote(f[9])
	m.Title, err[9] = strconv.Unquote(f[10])
	m.Size = e.jsonl.size
	return errors.Join(err[:]...) == nil && plausible(*m)
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// writeSnapshot writes every pending meta file, then records each session
// whose meta file and JSONL agree with the index. A session appended to
// meanwhile is left out (its meta file is behind). It streams to the file,
// so its memory does not grow with the number of sessions. Best effort:
// without a snapshot the next start reads the meta files.
func (s *Store) writeSnapshot() {
	s.Flush()
	gen := s.changes.Load() // what this snapshot will reflect, at least
	s.mu.Lock()
	ids := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	err := writeFileAtomic(s.root, snapshotName, func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 64<<10)
		w.WriteString(snapshotHeader + "\n")
		for _, id := range ids {
			jfi, err1 := s.root.Stat(id + jsonlExt)
			mfi, err2 := s.root.Stat(id + metaExt)
			s.mu.Lock()
			e, indexed := s.sessions[id]
			_, dirty := s.dirty[id]
			var m Meta
			if indexed {
				m = e.meta
			}
			s.mu.Unlock()
			if err1 != nil || err2 != nil || !indexed || dirty || jfi.Size() != m.Size {
				continue
			}
			w.WriteString(formatSnapLine(m, stampOf(jfi), stampOf(mfi)))
			w.WriteByte('\n')
		}
		return w.Flush()
	})
	if err != nil {
		s.log.Warn("index snapshot not written", "err", err)
		return
	}
	s.snapshotOf.Store(gen)
}
