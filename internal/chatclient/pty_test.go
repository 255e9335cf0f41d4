package chatclient

import (
	"context"
	"io"
	"os"
	"slices"
	"strconv"
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
	return replay(c.out.String(), c.width)
}

// replay draws out on a terminal of the given width with no scrolling
// limit, as an xterm does: printable runes (wrapping at the right margin
// before the next rune, not at once), CR, LF (raw mode: no CR added), tab,
// and the CSI sequences term.Terminal and the client write (cursor up,
// down, forward, back; erase to the end of the line or of the screen).
// Rows are returned without trailing blanks.
func replay(out string, width int) []string {
	var rows [][]rune
	row, col, wrap := 0, 0, false
	grow := func() {
		for len(rows) <= row {
			rows = append(rows, nil)
		}
		for len(rows[row]) < width {
			rows[row] = append(rows[row], ' ')
		}
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\r':
			col, wrap = 0, false
		case r == '\n':
			row, wrap = row+1, false
		case r == '\t':
			col = min((col/8+1)*8, width-1)
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';' || rs[j] == '?') {
				j++
			}
			if j == len(rs) {
				break
			}
			n, err := strconv.Atoi(string(rs[i+2 : j]))
			if err != nil || n == 0 {
				n = 1
			}
			grow()
			switch rs[j] {
			case 'A':
				row = max(row-n, 0)
			case 'B':
				row += n
			case 'C':
				col = min(col+n, width-1)
			case 'D':
				col = max(col-n, 0)
			case 'K':
				for k := col; k < width; k++ {
					rows[row][k] = ' '
				}
			case 'J':
				for k := col; k < width; k++ {
					rows[row][k] = ' '
				}
				rows = rows[:row+1]
			}
			wrap = false
			i = j
		default:
			if wrap {
				row, col, wrap = row+1, 0, false
			}
			grow()
			rows[row][col] = r
			if col == width-1 {
				wrap = true
			} else {
				col++
			}
		}
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = strings.TrimRight(string(r), " ")
	}
	return lines
}

// The replayer itself: wrapping waits for the next rune, CR after a full
// line stays on it, and the cursor moves and erasures land where a
// terminal puts them.
func TestReplay(t *testing.T) {
	t.Parallel()
	got := replay("abcde\r\nfghij\rX\x1b[A\x1b[2CY\n\rline\x1b[2D\x1b[K\r\n\tZ", 5)
	want := []string{"abcYe", "li", "    Z"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("replay = %q, want %q", got, want)
	}
}
