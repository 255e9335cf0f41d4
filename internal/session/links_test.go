package session

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// outsideTranscript writes, outside the sessions directory, a file that
// reads as a transcript (a stand-in for any file of the user's the model
// would like served or appended to) and returns its path and content.
func outsideTranscript(t *testing.T) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bashrc")
	b := lines(t, testutil.UserMsg("SECRET from outside", 5))
	writeFile(t, p, b)
	return p, b
}

// Session files linked out of the sessions directory (the data dir lies in
// the workspace by default, where the model's shell can plant links) are
// neither served nor written: every operation on such a session fails
// naming the link, and the outside file keeps its bytes.
func TestTranscriptLinkOutOfStore(t *testing.T) {
	dir := seedStore(t)
	outside, content := outsideTranscript(t)
	removeFile(t, filepath.Join(dir, "victim-1.jsonl"))
	removeFile(t, filepath.Join(dir, snapshotName))
	for _, name := range []string{"victim-1.jsonl", "out-2.jsonl", snapshotName} {
		if err := os.Symlink(outside, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	var log testutil.Buffer
	s := openWithin(t, dir, &log)
	if got := mustList(t, s); len(got) != 1 || got[0].SessionID != "good-1" {
		t.Fatalf("List = %+v, want good-1 alone", got)
	}
	for _, id := range []string{"victim-1", "out-2"} {
		checkRefused(t, s, id, "symbolic link leading out of")
	}
	if !strings.Contains(log.String(), "symbolic link leading out of") {
		t.Errorf("log = %q, want a warning about the links", log.String())
	}
	s.Close()
	if b := readFile(t, outside); string(b) != string(content) {
		t.Errorf("the outside file now holds %q", b)
	}
}

// Links planted while the store is open, beside a session in use: its
// transcript, its meta file, its torn-tail file and its turn lock. Nothing
// is written to or read from the outside file.
func TestSessionFileLinksWhileOpen(t *testing.T) {
	s, dir := newStore(t)
	outside, content := outsideTranscript(t)
	mustCreate(t, s, "a-1", "webchat")
	mustAppend(t, s, "a-1", testutil.UserMsg("hello", 1000))
	mustCreate(t, s, "b-1", "webchat")
	appendFile(t, filepath.Join(dir, "b-1.jsonl"), []byte(`{"role":"user","content":"torn`))
	for _, name := range []string{"a-1.jsonl", "b-1.meta.json", "b-1.jsonl.torn", "b-1.lock"} {
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := os.Symlink(outside, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append("a-1", testutil.UserMsg("more", 2000)); err == nil || !strings.Contains(err.Error(), "symbolic link leading out of") {
		t.Errorf("Append through a linked transcript: err = %v", err)
	}
	if msgs, _, err := s.Load("a-1"); err == nil || len(msgs) > 0 {
		t.Errorf("Load through a linked transcript = %v, %v", testutil.Contents(msgs), err)
	}
	if _, err := s.Append("b-1", testutil.UserMsg("more", 2000)); err != nil {
		t.Errorf("Append to b-1: %v", err)
	}
	s.Flush()
	if l, err := s.LockTurn(context.Background(), "b-1", 0, nil); err == nil {
		l.Unlock()
		t.Error("LockTurn through a linked lock file succeeded")
	}
	s.Close()
	if b := readFile(t, outside); string(b) != string(content) {
		t.Errorf("the outside file now holds %q", b)
	}
}

// A data dir in the workspace that the model made a link to a directory
// outside is refused when the store is told the workspace; the operator's
// own data dir outside the workspace may be reached through links.
func TestDataDirLinkOutOfWorkspace(t *testing.T) {
	ws, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(ws, ".mini-openclaw")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(ws, ".mini-openclaw", "sessions")
	s, err := Open(dir, Options{Workspace: ws})
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "symbolic link leading out of "+ws) {
		t.Errorf("Open: err = %v, want a refusal naming the link", err)
	}
	if names, _ := filepath.Glob(filepath.Join(outside, "*")); len(names) != 0 {
		t.Errorf("files appeared outside the workspace: %v", names)
	}

	linked := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(outside, linked); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, filepath.Join(linked, "sessions"), Options{Workspace: ws})
	mustCreate(t, s, "a-1", "webchat")
	if !exists(filepath.Join(outside, "sessions", "a-1.jsonl")) {
		t.Error("a data dir outside the workspace reached through a link is not used")
	}
}
