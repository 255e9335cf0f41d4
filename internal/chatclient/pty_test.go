package chatclient

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// ptyChat is the client running on a real pseudo-terminal in raw mode, as
// `miniclaw chat` runs it: term.Terminal edits the lines typed on the
// terminal's master side, and everything the client writes is read there.
type ptyChat struct {
	t     *testing.T
	ptm   *os.File // what the user types and sees
	out   *testutil.Buffer
	width int
	done  chan error
}

// startPTY runs the client on a new pty of the given width. The pty's files
// stay non-blocking (no Fd calls): closing them ends the reads.
func startPTY(t *testing.T, opt Options, width int) *ptyChat {
	t.Helper()
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 40, Cols: uint16(width)}); err != nil {
		t.Fatal(err)
	}
	withFd := func(f func(fd int) error) error {
		rc, err := pts.SyscallConn()
		if err != nil {
			return err
		}
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
			return err
		}
		return ferr
	}
	if err := withFd(func(fd int) error { _, err := term.MakeRaw(fd); return err }); err != nil {
		t.Fatal(err)
	}
	c := &ptyChat{t: t, ptm: ptm, out: &testutil.Buffer{}, width: width, done: make(chan error, 1)}
	opt.In, opt.Out, opt.Terminal = pts, pts, true
	opt.Size = func() (w, h int, err error) {
		err = withFd(func(fd int) error { w, h, err = term.GetSize(fd); return err })
		return w, h, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(c.out, ptm)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { c.done <- Run(ctx, opt) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(waitFor):
			t.Error("the client did not end")
		}
		pts.Close()
		ptm.Close()
		<-copied
		if t.Failed() {
			t.Logf("screen:\n%s", strings.Join(c.screen(), "\n"))
		}
	})
	return c
}

func (c *ptyChat) typeKeys(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.ptm, s); err != nil {
		c.t.Fatal(err)
	}
}

// wait waits until the raw output holds want.
func (c *ptyChat) wait(want string) {
	c.t.Helper()
	waitOutput(c.t, c.out, want)
}

// waitScreen waits until a row of the screen holds want.
func (c *ptyChat) waitScreen(want string) {
	c.t.Helper()
	for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
		if slices.ContainsFunc(c.screen(), func(row string) bool { return strings.Contains(row, want) }) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the screen shows no %q after %s", want, waitFor)
		}
	}
}

// quit types /quit and waits for the client to end.
func (c *ptyChat) quit() {
	c.t.Helper()
	c.typeKeys("/quit\r")
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		if err != nil {
			c.t.Errorf("Run: %v", err)
		}
	case <-time.After(waitFor):
		c.t.Fatal("the client did not quit")
	}
}

// screen is what the terminal shows: the rows the output draws.
func (c *ptyChat) screen() []string {
	return testutil.Replay(c.out.String(), c.width)
}
