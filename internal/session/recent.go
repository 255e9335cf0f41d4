package session

import (
	"bytes"
	"fmt"
	"io"

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
	total := s.linesIfKnown(id, size, -1)
	if total < 0 {
		res, err := scanReader(f, func(int) bool { return false })
		if err != nil {
			return Recent{}, fmt.Errorf("session %s: recent: %w", id, err)
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
	for k := min(64, n); ; k = min(4*k, n) {
		if lines, offsets, err = lastN(f, size, k); err != nil {
			return Recent{}, fmt.Errorf("session %s: recent: %w", id, err)
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
	var r Recent
	if summary >= 0 {
		at := first + summary
		if need := min(total-max(sum.Covers, 0), n); need > len(lines) {
			if lines, offsets, err = lastN(f, size, need); err != nil {
				return Recent{}, fmt.Errorf("session %s: recent: %w", id, err)
			}
			first = total - len(lines)
		}
		r.Messages, r.Lines = append(r.Messages, sum), append(r.Lines, at)
		// Keep the lines from Covers on, and drop what is before.
		skip := min(max(sum.Covers-first, 0), len(lines))
		lines, offsets, first = lines[skip:], offsets[skip:], first+skip
	}
	for i, line := range lines {
		m, err := DecodeLine(line)
		switch {
		case err != nil:
			r.Corrupt = append(r.Corrupt, LineError{Line: first + i + 1, Offset: offsets[i], Err: err.Error()})
		case m.Role != core.RoleSummary:
			r.Messages, r.Lines = append(r.Messages, m), append(r.Lines, first+i)
		}
	}
	return r, nil
}

// lastN is lastLines cut to at most n lines.
func lastN(f io.ReaderAt, size int64, n int) ([][]byte, []int64, error) {
	lines, offsets, err := lastLines(f, size, n)
	cut := max(0, len(lines)-n)
	return lines[cut:], offsets[cut:], err
}
