package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// Fixtures are written straight to disk in the store's format (README: Storage, and
// internal/session/meta.go): <id>.jsonl with one core.Message per line and
// <id>.meta.json whose "size" is the JSONL's byte length, so the gateway
// indexes them without rebuilding any meta.

// writeSession writes a session of n alternating user/assistant messages.
func writeSession(dir, id string, n int, t0 time.Time) error {
	f, err := os.Create(filepath.Join(dir, id+".jsonl"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, min(256<<10, 4096+n*160))
	meta := session.Meta{SessionID: id, Channel: session.DefaultChannel}
	var size int64
	for i := range n {
		m := fixtureMessage(i, t0)
		b, err := json.Marshal(m)
		if err != nil {
			f.Close()
			return err
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			f.Close()
			return err
		}
		size += int64(len(b))
		if meta.CreatedAt == 0 {
			meta.CreatedAt = m.Timestamp
		}
		meta.UpdatedAt = m.Timestamp
		if meta.Title == "" && m.Role == core.RoleUser {
			meta.Title = m.Content
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if n == 0 {
		meta.CreatedAt, meta.UpdatedAt = t0.UnixMilli(), t0.UnixMilli()
	}
	meta.MessageCount = n
	meta.Size = size
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, id+".meta.json"), append(mb, '\n'), 0o600)
}

// fixtureMessage is message i of a fixture transcript: user questions and
// assistant answers of realistic chat length, a second apart.
func fixtureMessage(i int, t0 time.Time) core.Message {
	ts := t0.Add(time.Duration(i) * time.Second).UnixMilli()
	if i%2 == 0 {
		return core.Message{Role: core.RoleUser, Content: fmt.Sprintf("question %d: what should I look at next in the bench output?", i), Timestamp: ts}
	}
	return core.Message{Role: core.RoleAssistant, Content: fmt.Sprintf("answer %d: look at the p99 columns first, then the notes under the table, which explain how each figure was measured.", i), Timestamp: ts}
}

// writeSessions writes count sessions named prefix-N with msgs messages
// each, in parallel.
func writeSessions(dir, prefix string, count, msgs int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	t0 := time.Now().Add(-24 * time.Hour)
	jobs := make(chan int, 256)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				if err := writeSession(dir, fmt.Sprintf("%s-%d", prefix, i), msgs, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range count {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
