package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// listed is s.List as ID → "channel title (messages)".
func listed(s *Store) map[string]string {
	out := map[string]string{}
	metas, _ := s.List() // the files store's List cannot fail
	for _, m := range metas {
		out[m.SessionID] = fmt.Sprintf("%s %s (%d)", m.Channel, m.Title, m.MessageCount)
	}
	return out
}

// waitList polls s.List until ok holds of it; the watch has no event to
// wait for from outside. It fails after 3 s.
func waitList(t *testing.T, s *Store, what string, ok func(map[string]string) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for got := listed(s); !ok(got); got = listed(s) {
		if time.Now().After(deadline) {
			t.Fatalf("within 3s: %s; the list is %v", what, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatchFollowsAnotherStore: a watching store (the gateway's) lists a
// session another store on the directory (the CLI's) creates or forks,
// takes up its rename and appends, and drops a session it archives, without
// writing that one's meta back on Close.
func TestWatchFollowsAnotherStore(t *testing.T) {
	gw, dir := newStore(t)
	if err := gw.Watch(); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, gw, "a", "webchat")
	mustAppend(t, gw, "a", testutil.UserMsg("hello there", 1), testutil.AsstMsg("hi", 2))
	cli := openStore(t, dir, Options{})

	if _, _, err := cli.Fork("a", 0, "f"); err != nil {
		t.Fatal(err)
	}
	waitList(t, gw, "the fork f with its 2 messages", func(m map[string]string) bool {
		return m["f"] == "webchat Fork of hello there (2)"
	})
	if _, err := cli.Rename("a", "Renamed"); err != nil {
		t.Fatal(err)
	}
	waitList(t, gw, "a renamed", func(m map[string]string) bool { return m["a"] == "webchat Renamed (2)" })

	mustCreate(t, cli, "c", "cli")
	mustAppend(t, cli, "c", testutil.UserMsg("from the terminal", 3))
	cli.Flush()
	waitList(t, gw, "c of channel cli with its message", func(m map[string]string) bool {
		return m["c"] == "cli from the terminal (1)"
	})

	mustAppend(t, gw, "a", testutil.UserMsg("pending meta", 4)) // its meta waits for the flusher
	if _, err := cli.Archive("a"); err != nil {
		t.Fatal(err)
	}
	waitList(t, gw, "a gone", func(m map[string]string) bool { _, ok := m["a"]; return !ok })
	if _, err := gw.Get("a"); !isNotFound(err) {
		t.Errorf("Get of the archived session: %v, want ErrNotFound", err)
	}
	gw.Close()
	for _, name := range []string{"a.jsonl", "a.meta.json"} {
		if exists(filepath.Join(dir, name)) {
			t.Errorf("after Close the sessions directory holds %s: the archived a came back", name)
		}
	}
}

// TestResync: what the watch would have followed had its events not been
// lost (a queue overflow), resync finds by comparing the directory with the
// index.
func TestResync(t *testing.T) {
	gw, dir := newStore(t)
	mustCreate(t, gw, "a", "webchat")
	mustAppend(t, gw, "a", testutil.UserMsg("one", 1))
	mustCreate(t, gw, "b", "webchat")
	mustAppend(t, gw, "b", testutil.UserMsg("two", 2))
	gw.Flush()
	cli := openStore(t, dir, Options{})
	if _, err := cli.Archive("a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli.Fork("b", 0, "b2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Rename("b", "Bee"); err != nil {
		t.Fatal(err)
	}
	gw.resync()
	got := listed(gw)
	want := map[string]string{"b": "webchat Bee (1)", "b2": "webchat Fork of two (1)"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after resync the list is %v, want %v", got, want)
	}
}

// TestVanishedTranscript: reads and forks of an indexed session whose
// transcript left the directory behind the store's back answer ErrNotFound,
// naming the session and no file, and drop it from the index.
func TestVanishedTranscript(t *testing.T) {
	s, dir := newStore(t)
	ops := map[string]func() error{
		"Page":   func() error { _, err := s.Page("v", -1, 10); return err },
		"Page0":  func() error { _, err := s.Page("v", 0, 10); return err },
		"Tail":   func() error { _, _, err := s.Tail("v", 1); return err },
		"Load":   func() error { _, _, err := s.Load("v"); return err },
		"Recent": func() error { _, err := s.Recent("v", 10); return err },
		"Fork":   func() error { _, _, err := s.Fork("v", 0, ""); return err },
		"Archive": func() error {
			_, err := s.Archive("v")
			return err
		},
	}
	for name, op := range ops {
		mustCreate(t, s, "v", "webchat")
		mustAppend(t, s, "v", testutil.UserMsg("x", 1))
		if err := os.Rename(filepath.Join(dir, "v.jsonl"), filepath.Join(t.TempDir(), "moved.jsonl")); err != nil {
			t.Fatal(err)
		}
		err := op()
		if !isNotFound(err) || !strings.Contains(err.Error(), "session v") || strings.Contains(err.Error(), ".jsonl") {
			t.Errorf("%s of a vanished session: %v; want ErrNotFound naming v and no file", name, err)
		}
		if _, ok := listed(s)["v"]; ok {
			t.Errorf("%s of a vanished session left it in the list", name)
		}
		os.Remove(filepath.Join(dir, "v.meta.json"))
	}
}

// TestUnarchive: the newest of several copies archived in one millisecond
// (the -n suffixes) comes back with its meta, over a meta left without its
// transcript, into a store whose index still held the ID; a live session
// with the ID is ErrLive and stays as it was.
func TestUnarchive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	s := openStore(t, dir, Options{Now: fixedClock(t0)})
	for i, channel := range []string{"webchat", "cli", "telegram"} {
		mustCreate(t, s, "x", channel)
		mustAppend(t, s, "x", testutil.UserMsg(fmt.Sprintf("copy %d", i), int64(i+1)))
		if _, err := s.Archive("x"); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, s, "x", "webchat")
	if _, _, err := s.Unarchive("x"); !errors.Is(err, ErrLive) {
		t.Fatalf("Unarchive over a live session: %v, want ErrLive", err)
	}
	if m, err := s.Get("x"); err != nil || m.MessageCount != 0 || m.Channel != "webchat" {
		t.Fatalf("the live x after the refusal: %+v, %v", m, err)
	}
	// Another process archives the live x and leaves a stray meta behind.
	if err := os.Rename(filepath.Join(dir, "x.jsonl"), filepath.Join(t.TempDir(), "x.jsonl")); err != nil {
		t.Fatal(err)
	}

	a, copies, err := s.Unarchive("x")
	if err != nil || copies != 3 || a.File != "archive/x.20240102T030405.006Z-2.jsonl" {
		t.Fatalf("Unarchive = %+v, %d copies, %v; want the -2 copy of 3", a, copies, err)
	}
	if m, err := s.Get("x"); err != nil || m.Channel != "telegram" || m.Title != "copy 2" || m.MessageCount != 1 {
		t.Errorf("unarchived x: %+v, %v; want the newest copy's meta", m, err)
	}
	if m := metaOnDisk(t, filepath.Join(dir, "x.meta.json")); m.Channel != "telegram" {
		t.Errorf("x.meta.json: %+v, want the archived copy's", m)
	}
	all, err := s.ListArchived()
	if err != nil || len(all) != 2 || all[0].Title != "copy 1" || all[1].Title != "copy 0" {
		t.Errorf("ListArchived after = %+v, %v; want copies 1 and 0, newest first", all, err)
	}
	if id, err := s.ResolveArchived(""); id != "x" || err != nil {
		t.Errorf("ResolveArchived of a prefix of one ID = %q, %v", id, err)
	}
}
