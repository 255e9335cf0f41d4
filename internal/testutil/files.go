package testutil

import (
	"os"
	"testing"
)

// AppendFile appends s to the existing file at path, as another writer
// (a torn line, a corrupt one) would.
func AppendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
