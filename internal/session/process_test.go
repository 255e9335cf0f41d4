//go:build unix

package session

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/filelock"
)

// Child processes are this test binary re-run with MINICLAW_SESSION_HELPER
// set; TestHelperProcess is then the only test that runs and it does the
// child's job.
const (
	envHelper = "MINICLAW_SESSION_HELPER" // "append" or "lock"
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
			msg := userMsg(fmt.Sprintf("%s-%d", os.Getenv(envPrefix), i), int64(i))
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
		mustAppend(t, s, "multi", userMsg(fmt.Sprintf("parent-%d", i), int64(i)))
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}

	path := filepath.Join(dir, "multi.jsonl")
	msgs := decodeAll(t, readFile(t, path))
	checkWriters(t, msgs, append(names, "parent"), perWriter)
	total := (children + 1) * perWriter
	m, err := openStore(t, dir, Options{}).Get("multi")
	if err != nil || m.MessageCount != total || m.Size != fileSize(t, path) {
		t.Fatalf("meta after reopen %+v, %v; want %d messages, size %d", m, err, total, fileSize(t, path))
	}
	// The parent's stale index catches up on its next append.
	m = mustAppend(t, s, "multi", userMsg("parent-last", 1))
	if m.MessageCount != total+1 || m.Size != fileSize(t, path) {
		t.Fatalf("parent meta after catch-up %+v", m)
	}
}

func TestKilledLockHolder(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "held", "webchat")
	cmd := helperCmd(t, envHelper+"=lock", envDir+"="+dir, envID+"=held")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "locked" {
		t.Fatalf("child did not take the lock: %q %v", sc.Text(), sc.Err())
	}

	res := make(chan error, 1)
	go func() {
		_, err := s.Append("held", userMsg("after the holder died", 1))
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
	if string(got) != string(line(t, userMsg("after the holder died", 1))) {
		t.Fatalf("transcript = %q", got)
	}
}
