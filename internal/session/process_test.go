//go:build unix

package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/filelock"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// Child processes are this test binary re-run with MINICLAW_SESSION_HELPER
// set; TestHelperProcess is then the only test that runs and it does the
// child's job.
const (
	envHelper = "MINICLAW_SESSION_HELPER" // "append", "lock" or "turn"
	envDir    = "MINICLAW_SESSION_DIR"
	envID     = "MINICLAW_SESSION_ID"
	envPrefix = "MINICLAW_SESSION_PREFIX"
	envCount  = "MINICLAW_SESSION_COUNT"
	envGo     = "MINICLAW_SESSION_GO" // a file whose appearance starts the appends
)

func TestHelperProcess(t *testing.T) {
	switch os.Getenv(envHelper) {
	case "":
		t.Skip("only runs as a child process")
	case "append":
		n, _ := strconv.Atoi(os.Getenv(envCount))
		s, err := Open(os.Getenv(envDir), Options{})
		if err != nil {
			fail("open: %v", err)
		}
		for !exists(os.Getenv(envGo)) {
			time.Sleep(time.Millisecond)
		}
		for i := range n {
			msg := testutil.UserMsg(fmt.Sprintf("%s-%d", os.Getenv(envPrefix), i), int64(i))
			if _, err := s.Append(os.Getenv(envID), msg); err != nil {
				fail("append %d: %v", i, err)
			}
		}
	case "lock":
		path := filepath.Join(os.Getenv(envDir), os.Getenv(envID)+jsonlExt)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			fail("open: %v", err)
		}
		if err := filelock.Lock(f); err != nil {
			fail("lock: %v", err)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute) // until the parent kills it
		fail("not killed")
	case "turn":
		// Hold the session's turn lock until stdin closes (or a kill).
		s, err := Open(os.Getenv(envDir), Options{})
		if err != nil {
			fail("open: %v", err)
		}
		l, err := s.LockTurn(context.Background(), os.Getenv(envID), 0, nil)
		if err != nil {
			fail("lock turn: %v", err)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		l.Unlock()
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
	os.Exit(3)
}

func helperCmd(t *testing.T, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func TestCrossProcessAppends(t *testing.T) {
	const children, perWriter = 3, 150
	s, dir := newStore(t)
	mustCreate(t, s, "multi", "webchat")
	goFile := filepath.Join(t.TempDir(), "go")
	var cmds []*exec.Cmd
	var names []string
	for c := range children {
		prefix := fmt.Sprintf("proc%d", c)
		names = append(names, prefix)
		cmd := helperCmd(t, envHelper+"=append", envDir+"="+dir, envID+"=multi",
			envPrefix+"="+prefix, envCount+"="+strconv.Itoa(perWriter), envGo+"="+goFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	writeFile(t, goFile, nil)
	for i := range perWriter {
		mustAppend(t, s, "multi", testutil.UserMsg(fmt.Sprintf("parent-%d", i), int64(i)))
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}

	path := filepath.Join(dir, "multi.jsonl")
	msgs := decodeAll(t, readFile(t, path))
	testutil.CheckWriters(t, msgs, append(names, "parent"), perWriter)
	total := (children + 1) * perWriter
	m, err := openStore(t, dir, Options{}).Get("multi")
	if err != nil || m.MessageCount != total || m.Size != fileSize(t, path) {
		t.Fatalf("meta after reopen %+v, %v; want %d messages, size %d", m, err, total, fileSize(t, path))
	}
	// The parent's stale index catches up on its next append.
	m = mustAppend(t, s, "multi", testutil.UserMsg("parent-last", 1))
	if m.MessageCount != total+1 || m.Size != fileSize(t, path) {
		t.Fatalf("parent meta after catch-up %+v", m)
	}
}

func TestKilledLockHolder(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "held", "webchat")
	cmd := helperCmd(t, envHelper+"=lock", envDir+"="+dir, envID+"=held")
	startLocked(t, cmd, "the lock")

	res := make(chan error, 1)
	go func() {
		_, err := s.Append("held", testutil.UserMsg("after the holder died", 1))
		res <- err
	}()
	select {
	case err := <-res:
		t.Fatalf("Append returned while another process held the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to unlock
		t.Fatal(err)
	}
	cmd.Wait()
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked 5s after the lock holder was killed")
	}
	got := readFile(t, filepath.Join(dir, "held.jsonl"))
	if string(got) != string(line(t, testutil.UserMsg("after the holder died", 1))) {
		t.Fatalf("transcript = %q", got)
	}
}

// turnHolder is a child process holding the turn lock of a session; closing
// release makes it unlock and exit.
type turnHolder struct {
	cmd     *exec.Cmd
	release io.Closer
}

func holdTurn(t *testing.T, dir, id string) turnHolder {
	t.Helper()
	cmd := helperCmd(t, envHelper+"=turn", envDir+"="+dir, envID+"="+id)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	startLocked(t, cmd, "the turn lock")
	return turnHolder{cmd, in}
}

// startLocked starts a helper process and waits for the "locked" line it
// prints once it holds lock.
func startLocked(t *testing.T, cmd *exec.Cmd, lock string) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "locked" {
		t.Fatalf("child did not take %s: %q %v", lock, sc.Text(), sc.Err())
	}
}

// lockTurnAsync runs LockTurn in a goroutine; waiting receives once when
// it starts to wait, and the result arrives on the returned channel.
func lockTurnAsync(ctx context.Context, s *Store, id string, timeout time.Duration) (waiting <-chan struct{}, res <-chan error) {
	w, r := make(chan struct{}), make(chan error, 1)
	go func() {
		l, err := s.LockTurn(ctx, id, timeout, func() { close(w) })
		if err == nil {
			l.Unlock()
		}
		r <- err
	}()
	return w, r
}

func waitChan[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		panic("unreachable")
	}
}

// TestTurnLockAcrossProcesses: while another process holds a session's turn
// lock, LockTurn says it waits and returns only once that process releases
// it (or dies, even by SIGKILL); a cancelled context or the timeout ends the
// wait with their own errors. Appends and reads never wait for it.
func TestTurnLockAcrossProcesses(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "turns", "webchat")

	t.Run("released", func(t *testing.T) {
		h := holdTurn(t, dir, "turns")
		waiting, res := lockTurnAsync(context.Background(), s, "turns", 0)
		waitChan(t, "waiting call", waiting)
		// The data lock is not the turn lock: the transcript stays usable.
		mustAppend(t, s, "turns", testutil.UserMsg("appended during another's turn", 1))
		if _, _, err := s.Tail("turns", 5); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-res:
			t.Fatalf("LockTurn returned while another process held the lock: %v", err)
		default:
		}
		h.release.Close()
		if err := waitChan(t, "LockTurn after the release", res); err != nil {
			t.Fatal(err)
		}
		if err := h.cmd.Wait(); err != nil {
			t.Fatalf("holder: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		holdTurn(t, dir, "turns")
		ctx, cancel := context.WithCancelCause(context.Background())
		abort := errors.New("aborted by the user")
		waiting, res := lockTurnAsync(ctx, s, "turns", 0)
		waitChan(t, "waiting call", waiting)
		cancel(abort)
		if err := waitChan(t, "LockTurn after the cancel", res); !errors.Is(err, abort) {
			t.Fatalf("LockTurn after a cancel: %v, want the cancel's cause", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		holdTurn(t, dir, "turns")
		_, res := lockTurnAsync(context.Background(), s, "turns", 20*time.Millisecond)
		err := waitChan(t, "LockTurn past its timeout", res)
		if !errors.Is(err, ErrTurnLockTimeout) || !strings.Contains(err.Error(), "turns.lock") {
			t.Fatalf("LockTurn past its timeout: %v, want ErrTurnLockTimeout naming the lock file", err)
		}
	})

	t.Run("holder killed", func(t *testing.T) {
		h := holdTurn(t, dir, "turns")
		waiting, res := lockTurnAsync(context.Background(), s, "turns", 0)
		waitChan(t, "waiting call", waiting)
		if err := h.cmd.Process.Kill(); err != nil { // SIGKILL: no chance to unlock
			t.Fatal(err)
		}
		h.cmd.Wait()
		if err := waitChan(t, "LockTurn after the holder was killed", res); err != nil {
			t.Fatal(err)
		}
	})

	// The lock file stays, private, and is no session.
	fi, err := os.Stat(filepath.Join(dir, "turns.lock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v, mode %v; want it left in place with mode 0600", err, fi.Mode())
	}
	s.Close()
	for _, st := range []*Store{s, openStore(t, dir, Options{})} {
		if got := mustList(t, st); len(got) != 1 || got[0].SessionID != "turns" {
			t.Fatalf("sessions listed beside a lock file: %+v", got)
		}
	}
}
