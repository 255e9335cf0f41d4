package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Mkfifo makes a named pipe at path (and its directory). Opening it for
// reading blocks until a writer comes: the file a careless open hangs on.
func Mkfifo(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Within runs f and fails the test if f has not returned after d, so a
// call that blocks forever fails its test instead of hanging the suite.
// f must not call t's methods; it is left running when it blocks.
func Within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
	}
}
