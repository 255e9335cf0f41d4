package session

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestTitleFrom: a title is the first line of the first user message as
// plain text, without the Markdown markup around its words.
func TestTitleFrom(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello world", "hello world"},
		{"  first line  \nsecond line", "first line"},
		{"What is **miniclaw**?", "What is miniclaw?"},
		{"# Plan for __today__", "Plan for today"},
		{"### deep heading ###", "deep heading"},
		{"#hashtag stays", "#hashtag stays"},
		{"fix issue #", "fix issue #"},
		{"> ## quoted heading", "quoted heading"},
		{"run `go test ./...` please", "run go test ./... please"},
		{"read [the docs](https://example.com/a_(b)) first", "read the docs first"},
		{"see ![a diagram](x.png) and [b] (c)", "see a diagram and [b] (c)"},
		{"> quoted ~~old~~ text", "quoted old text"},
		{"snake_case and 2*3*4 stay", "snake_case and 2*3*4 stay"},
		{"**\n\nbody", "body"},
		// A line of megabytes is read up to maxTitleScan bytes, without
		// splitting a rune.
		{"# " + strings.Repeat("x", 1<<20), strings.Repeat("x", maxTitleLen-1) + "…"},
		{strings.Repeat("é", 1<<20), strings.Repeat("é", maxTitleLen-1) + "…"},
		// Markup that ends past them is text.
		{"[a](" + strings.Repeat("u", maxTitleScan) + ")", "[a](" + strings.Repeat("u", maxTitleLen-5) + "…"},
	} {
		if got := TitleFrom(tc.in); got != tc.want {
			t.Errorf("TitleFrom(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkTitleFromHugeLine: a session's first message of 1 MiB on one
// line. Reading the whole line took 300 ms (700 ms under -race), on the
// first append of every such session.
func BenchmarkTitleFromHugeLine(b *testing.B) {
	word := strings.Repeat("x", 100<<10)
	content := strings.Repeat(word+" [link](url) ", 10)
	for b.Loop() {
		TitleFrom(content)
	}
}

// TestRename: a title set by Rename survives a reopen and a meta rebuilt
// from the transcript (the rest of Rename is in the sessiontest suite).
func TestRename(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "r", "webchat")
	mustAppend(t, s, "r", testutil.Numbered("r", 2)...)
	m, err := s.Rename("r", "  My plan  ")
	if err != nil || m.Title != "My plan" {
		t.Fatalf("Rename: %+v, %v", m, err)
	}
	mustAppend(t, s, "r", testutil.UserMsg("more", 2000))
	s.Close()
	if re, _ := openStore(t, dir, Options{}).Get("r"); re.Title != "My plan" || re.MessageCount != 3 {
		t.Fatalf("after reopen: %+v", re)
	}
	metaPath := filepath.Join(dir, "r.meta.json")
	stale := metaOnDisk(t, metaPath)
	stale.Size += 1000
	b, _ := json.Marshal(stale)
	writeFile(t, metaPath, b)
	s = openStore(t, dir, Options{})
	if re, _ := s.Get("r"); re.Title != "My plan" || re.MessageCount != 3 {
		t.Fatalf("after a rebuild: %+v", re)
	}
}

// TestRenameByAnotherProcess: a store that has the session open (a
// gateway) does not write its old title back over a rename made by another
// (the CLI) when it next writes the meta.
func TestRenameByAnotherProcess(t *testing.T) {
	gw, dir := newStore(t)
	mustCreate(t, gw, "r", "webchat")
	mustAppend(t, gw, "r", testutil.Numbered("r", 2)...)
	gw.Flush()
	cli := openStore(t, dir, Options{})
	if _, err := cli.Rename("r", "Set by the CLI"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	mustAppend(t, gw, "r", testutil.UserMsg("more", 2000))
	gw.Flush()
	if disk := metaOnDisk(t, filepath.Join(dir, "r.meta.json")); disk.Title != "Set by the CLI" || disk.MessageCount != 3 {
		t.Fatalf("meta on disk after the gateway's append: %+v", disk)
	}
	if m, _ := gw.Get("r"); m.Title != "Set by the CLI" {
		t.Fatalf("the gateway's meta after its write: %+v", m)
	}
}
