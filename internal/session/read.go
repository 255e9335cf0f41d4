package session

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// LineError reports a transcript line that could not be decoded. It is never
// dropped silently: callers show it to the user and the rest still loads.
type LineError struct {
	Line   int    `json:"line,omitempty"` // 1-based line number; 0 when read from the end
	Offset int64  `json:"offset"`         // byte offset of the line in the file
	Err    string `json:"error"`
}

func (e LineError) String() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d (byte %d): %s", e.Line, e.Offset, e.Err)
	}
	return fmt.Sprintf("byte %d: %s", e.Offset, e.Err)
}

// DecodeLine parses one transcript line strictly enough that a torn or
// foreign line is caught: it must be one JSON object with a known role.
func DecodeLine(line []byte) (core.Message, error) {
	var m core.Message
	if err := json.Unmarshal(line, &m); err != nil {
		return core.Message{}, err
	}
	switch m.Role {
	case core.RoleUser, core.RoleAssistant, core.RoleSystem, core.RoleSummary:
		return m, nil
	case "":
		return core.Message{}, errors.New(`missing "role"`)
	default:
		return core.Message{}, fmt.Errorf("unknown role %q", m.Role)
	}
}

// scanResult is what a full pass over a transcript found.
type scanResult struct {
	messages []core.Message
	corrupt  []LineError
	lines    int   // complete lines, valid or not
	size     int64 // file size, including a torn tail
	torn     int   // bytes after the last newline (an append cut short by a crash)
}

// scan reads the whole transcript <base>.jsonl: base is a session ID, or
// an archived copy's name in the archive directory. keep, when not nil,
// says which 0-based line indexes to decode; the others are only counted.
func (s *Store) scan(base string, keep func(line int) bool) (scanResult, error) {
	f, _, err := safeopen.OpenIn(s.root, base+jsonlExt, safeopen.Regular)
	if err != nil {
		return scanResult{}, err
	}
	defer f.Close()
	return scanReader(f, keep)
}

func scanReader(r io.Reader, keep func(line int) bool) (scanResult, error) {
	var res scanResult
	br := bufio.NewReaderSize(r, 64<<10)
	var offset int64
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: collect it whole.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return res, err
		}
		res.size += int64(len(line))
		if errors.Is(err, io.EOF) {
			res.torn = len(line)
			return res, nil
		}
		body := bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(body)) > 0 {
			idx := res.lines
			res.lines++
			if keep == nil || keep(idx) {
				if m, derr := DecodeLine(body); derr != nil {
					res.corrupt = append(res.corrupt, LineError{Line: idx + 1, Offset: offset, Err: derr.Error()})
				} else {
					res.messages = append(res.messages, m)
				}
			}
		}
		offset += int64(len(line))
	}
}

// Load returns every message of a session, with the lines that could not be
// decoded. A torn last line (an append cut short by a crash) is not an
// error: it was never acknowledged, and the next append repairs it.
func (s *Store) Load(id string) ([]core.Message, []LineError, error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, nil, err
	}
	res, err := s.scan(id, nil)
	if err != nil {
		return nil, nil, s.readFailed(id, e, "load", err)
	}
	return res.messages, res.corrupt, nil
}

// Page is a window of a transcript for the HTTP API.
type Page struct {
	Messages []core.Message `json:"messages"`
	Corrupt  []LineError    `json:"corrupt,omitempty"`
	Offset   int            `json:"offset"` // 0-based line index of the first message
	Total    int            `json:"total"`  // complete lines in the transcript
}

// Page returns up to limit lines starting at line index offset; a negative
// offset means "the last limit lines".
func (s *Store) Page(id string, offset, limit int) (Page, error) {
	e, err := s.lookup(id)
	if err != nil {
		return Page{}, err
	}
	if offset < 0 {
		msgs, corrupt, total, err := s.tail(id, e, limit, true)
		if err != nil {
			return Page{}, err
		}
		return Page{Messages: msgs, Corrupt: corrupt, Offset: max(0, total-limit), Total: total}, nil
	}
	res, err := s.scan(id, func(i int) bool { return i >= offset && i < offset+limit })
	if err != nil {
		return Page{}, s.readFailed(id, e, "page", err)
	}
	return Page{Messages: res.messages, Corrupt: res.corrupt, Offset: offset, Total: res.lines}, nil
}

// Tail returns the last n messages of a session, reading the file from its
// end so the cost depends on n, not on the transcript's length. Lines that
// cannot be decoded are returned as LineErrors with their byte offsets.
func (s *Store) Tail(id string, n int) ([]core.Message, []LineError, error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, nil, err
	}
	msgs, corrupt, _, err := s.tail(id, e, n, false)
	return msgs, corrupt, err
}

const tailBlock = 32 << 10

// tail reads the last n complete lines of session id, indexed as e. total is the number of complete
// lines in the file when the index knows it (the meta size matches); else,
// with count, the lines are counted, and without it total is the lines seen.
func (s *Store) tail(id string, e *entry, n int, count bool) (msgs []core.Message, corrupt []LineError, total int, err error) {
	f, fi, err := safeopen.OpenIn(s.root, id+jsonlExt, safeopen.Regular)
	if err != nil {
		return nil, nil, 0, s.readFailed(id, e, "tail", err)
	}
	defer f.Close()
	size := fi.Size()
	total = -1
	if count {
		total = s.linesIfKnown(id, size, -1)
	}
	if total < 0 && count && (n <= 0 || size > tailBlock) {
		// Not known, and the tail below may not see the whole file.
		res, err := scanReader(io.NewSectionReader(f, 0, size), func(int) bool { return false })
		if err != nil {
			return nil, nil, 0, fmt.Errorf("session %s: tail: %w", id, err)
		}
		total = res.lines
	}
	if n <= 0 || size == 0 {
		return nil, nil, max(total, 0), nil
	}
	lines, offsets, err := lastLines(f, size, n)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("session %s: tail: %w", id, err)
	}
	if total < 0 {
		total = len(lines) // the whole file was read, or the caller does not need it
	}
	if len(lines) > n {
		lines, offsets = lines[len(lines)-n:], offsets[len(offsets)-n:]
	}
	for i, line := range lines {
		m, derr := DecodeLine(line)
		if derr != nil {
			corrupt = append(corrupt, LineError{Offset: offsets[i], Err: derr.Error()})
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs, corrupt, total, nil
}

// lastLines reads the last n non-blank complete lines of a file of size
// bytes (fewer when the file has fewer), with their byte offsets, reading
// blocks backwards from the end: the cost depends on n, not on the file.
func lastLines(f io.ReaderAt, size int64, n int) (lines [][]byte, offsets []int64, err error) {
	// Read blocks backwards until n+1 newlines are in hand (the extra one
	// marks where the first wanted line starts) or the file start is reached.
	// Blank lines are newlines but not messages: when they were among those
	// counted, read on for as many newlines as were missing.
	var blocks [][]byte
	newlines, want := 0, n
	pos := size
	for {
		for pos > 0 && newlines <= want {
			step := min(int64(tailBlock), pos)
			pos -= step
			b := make([]byte, step)
			if _, err := f.ReadAt(b, pos); err != nil {
				return nil, nil, err
			}
			newlines += bytes.Count(b, []byte{'\n'})
			blocks = append(blocks, b)
		}
		data := make([]byte, 0, size-pos)
		for i := len(blocks) - 1; i >= 0; i-- {
			data = append(data, blocks[i]...)
		}
		// Drop a torn tail, then the partial first line when not at file start.
		end := bytes.LastIndexByte(data, '\n') + 1
		data = data[:end]
		start := 0
		if pos > 0 {
			start = bytes.IndexByte(data, '\n') + 1
		}
		lines, offsets = lines[:0], offsets[:0]
		for i := start; i < len(data); {
			j := i + bytes.IndexByte(data[i:], '\n')
			if body := bytes.TrimRight(data[i:j], "\r"); len(bytes.TrimSpace(body)) > 0 {
				lines = append(lines, body)
				offsets = append(offsets, pos+int64(i))
			}
			i = j + 1
		}
		if len(lines) >= n || pos == 0 {
			break
		}
		// Each missing line needs one more newline before the first one seen.
		want = newlines + n - len(lines) - 1
	}
	return lines, offsets, nil
}

// linesIfKnown returns the indexed line count when the index describes a
// file of this size, else fallback.
func (s *Store) linesIfKnown(id string, size int64, fallback int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.sessions[id]; ok && e.meta.Size == size {
		return e.meta.MessageCount
	}
	return fallback
}
