package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// t0 is the base of the test clocks: 2024-01-02T03:04:05.006Z.
var t0 = time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)

// fixedClock always returns t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// tickingClock returns t0, t0+1s, t0+2s, ... on successive calls.
func tickingClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)-1) * time.Second) }
}

// openStore opens a store in dir with a ticking clock unless opt sets one.
func openStore(t testing.TB, dir string, opt Options) *Store {
	t.Helper()
	if opt.Now == nil {
		opt.Now = tickingClock()
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(s.Close)
	return s
}

// newStore opens a store in a fresh "sessions" directory under t.TempDir().
func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sessions")
	return openStore(t, dir, Options{}), dir
}

func mustCreate(t testing.TB, s *Store, id, channel string) Meta {
	t.Helper()
	m, created, err := s.Create(id, channel)
	if err != nil || !created {
		t.Fatalf("Create(%q, %q) = created %v, err %v", id, channel, created, err)
	}
	return m
}

func mustAppend(t testing.TB, s *Store, id string, msgs ...core.Message) Meta {
	t.Helper()
	m, err := s.Append(id, msgs...)
	if err != nil {
		t.Fatalf("Append(%q): %v", id, err)
	}
	return m
}

// line is the exact transcript line of m, newline included.
func line(t testing.TB, m core.Message) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// lines concatenates the transcript lines of msgs.
func lines(t testing.TB, msgs ...core.Message) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		b = append(b, line(t, m)...)
	}
	return b
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func removeFile(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// metaOnDisk decodes a meta file strictly: every key must be a known field.
func metaOnDisk(t testing.TB, path string) Meta {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.DisallowUnknownFields()
	var m Meta
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("meta %s: %v", path, err)
	}
	return m
}

// decodeAll splits a transcript on '\n', requires that it ends with one,
// and decodes every line.
func decodeAll(t testing.TB, b []byte) []core.Message {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("transcript does not end with a newline: ...%q", tailBytes(b, 60))
	}
	var out []core.Message
	for i, l := range bytes.Split(b[:len(b)-1], []byte{'\n'}) {
		m, err := DecodeLine(l)
		if err != nil {
			t.Fatalf("line %d %q: %v", i+1, tailBytes(l, 80), err)
		}
		out = append(out, m)
	}
	return out
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// dirNames lists a directory's entries, sorted.
func dirNames(t testing.TB, dir string) string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return strings.Join(names, " ")
}

func newLogger(buf *testutil.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

// writeMetaAt writes m as the meta file at path, as the store does.
func writeMetaAt(t testing.TB, path string, m Meta) error {
	t.Helper()
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	return writeMeta(root, filepath.Base(path), m)
}

// mustList is b.List, its error reported to t.
func mustList(t testing.TB, b Backend) []Meta {
	t.Helper()
	metas, err := b.List()
	if err != nil {
		t.Errorf("List: %v", err)
	}
	return metas
}
