package chatclient

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// stamp is the local time of a message's header.
var stamp = regexp.MustCompile(`· \d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

// expectScreen waits until the screen ends with the rows want (blank rows
// left out), and fails the test if it does not within waitFor.
func (c *ptyChat) expectScreen(want ...string) {
	c.t.Helper()
	var rows []string
	for deadline := time.Now().Add(waitFor); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rows = slices.DeleteFunc(c.screen(), func(r string) bool { return r == "" })
		for i, r := range rows {
			rows[i] = stamp.ReplaceAllString(r, "· T")
		}
		if len(rows) >= len(want) && slices.Equal(rows[len(rows)-len(want):], want) {
			return
		}
	}
	c.t.Fatalf("the screen does not end with:\n%s\nit shows:\n%s", strings.Join(want, "\n"), strings.Join(rows, "\n"))
}

// wrapRows cuts s into the rows a terminal of the given width shows it on.
func wrapRows(s string, width int) []string {
	var rows []string
	for len(s) > width {
		rows = append(rows, strings.TrimRight(s[:width], " "))
		s = s[width:]
	}
	return append(rows, s)
}

// Typing while a reply streams keeps the line being typed below the reply,
// whose text stays whole; messages sent meanwhile are queued, and each of
// their replies is headed by its message.
func TestTypingWhileAReplyStreams(t *testing.T) {
	t.Parallel()
	var words []string
	for i := range 40 {
		words = append(words, fmt.Sprintf("w%02d", i))
	}
	long := strings.Join(words, " ") + "."
	g := startScriptedGateway(t, []scripted.Turn{
		{Text: long, ChunkDelayMs: 20},
		{Text: "reply two"},
		{Text: "reply three"},
	})
	const width = 50
	c := startPTY(t, Options{URL: g.addr, SessionID: "typing-1"}, width)
	c.wait("/help lists the commands")
	c.typeKeys("first\r")
	c.wait("w05 ")
	c.typeKeys("half")
	c.wait("w20 ")
	c.expectScreen("half") // below the reply, not after its last word
	c.typeKeys("-way message\r")
	c.typeKeys("third\r")
	want := append([]string{"> first"}, wrapRows(long, width)...)
	c.expectScreen(append(want, "↳ reply to: half-way message", "reply two", "↳ reply to: third", "reply three", ">")...)
	c.quit()
}

// A gateway that stays down shows one status line on a terminal, rewritten
// at each attempt, not a line per attempt.
func TestUnreachableGatewayIsOneStatusLine(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	c := startPTY(t, Options{URL: g.addr, SessionID: "down-1"}, 200)
	c.wait("/help lists the commands")
	g.stop(t)
	for deadline := time.Now().Add(waitFor); strings.Count(c.out.String(), "retrying in") < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no third attempt after %s", waitFor)
		}
	}
	var status []string
	for _, row := range c.screen() {
		if strings.Contains(row, "reach") { // "cannot reach", "unreachable"
			status = append(status, row)
		}
	}
	want := "gateway unreachable at ws://" + g.addr + "/ws (connect: connection refused), retrying in "
	if len(status) != 1 || !strings.HasPrefix(status[0], want) || !strings.Contains(status[0], "(attempt 3)") {
		t.Errorf("rows about reaching the gateway: %q\nwant one status line starting %q at attempt 3", status, want)
	}
}

// turnRows are the rows `sessions show` draws for the echo gateway's turns
// on the given messages.
func turnRows(msgs ...string) []string {
	var rows []string
	for _, m := range msgs {
		rows = append(rows, "── user · T", m, "── assistant · T", "echo: "+m)
	}
	return rows
}

// Resuming a session, with --session (a prefix of its ID is enough) or
// /switch, shows its last three turns; /history shows more.
func TestResumeShowsHistory(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	var out strings.Builder
	if err := Run(context.Background(), Options{URL: g.addr, SessionID: "hist-1", In: strings.NewReader("t1\nt2\nt3\nt4\nt5\n"), Out: &out}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	c := startPTY(t, Options{URL: g.addr, SessionID: "hist"}, 120)
	c.expectScreen(slices.Concat(
		[]string{"(4 earlier messages before these: /history N shows the last N turns)"},
		turnRows("t3", "t4", "t5"),
		[]string{"──", "Type a message and press Enter; /help lists the commands.", ">"})...)
	c.typeKeys("/history\r")
	c.expectScreen(slices.Concat([]string{"> /history"}, turnRows("t1", "t2", "t3", "t4", "t5"), []string{"──", ">"})...)
	c.typeKeys("/history 1\r")
	c.expectScreen(slices.Concat([]string{"> /history 1", "(8 earlier messages before these: /history N shows the last N turns)"}, turnRows("t5"), []string{"──", ">"})...)
	c.typeKeys("/new\r")
	c.waitScreen("(new session).")
	c.typeKeys("/switch hist-1\r")
	c.expectScreen(slices.Concat(
		[]string{"> /switch hist-1", "Session hist-1 (resumed).", "(4 earlier messages before these: /history N shows the last N turns)"},
		turnRows("t3", "t4", "t5"), []string{"──", ">"})...)
	c.quit()
}

// In pipe mode the notes go to stderr, and a gateway that stays
// unreachable for the same reason is said once, not at each attempt.
func TestUnreachableGatewayPipeModeSaysItOnce(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	errOut := &testutil.Buffer{}
	w, out, done := runAsync(t, Options{URL: g.addr, SessionID: "down-2", Stderr: errOut})
	waitOutput(t, errOut, "(new session)")
	g.stop(t)
	// The port answers, and hangs up at once: each attempt fails the same
	// way, and is counted.
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
			accepted <- struct{}{}
		}
	}()
	for range 3 { // the third attempt: the first two failures were handled
		select {
		case <-accepted:
		case <-time.After(waitFor):
			t.Fatalf("no reconnect attempt after %s:\n%s", waitFor, errOut.String())
		}
	}
	if n := strings.Count(errOut.String(), "reach"); n != 1 { // "cannot reach", "unreachable"
		t.Errorf("%d lines say the gateway is unreachable, want 1:\n%s", n, errOut.String())
	}
	if out.String() != "" {
		t.Errorf("stdout holds notes: %q", out.String())
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
