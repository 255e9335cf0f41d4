package testutil

import (
	"strings"
	"testing"
)

// The replayer itself: wrapping waits for the next rune, CR after a full
// line stays on it, and the cursor moves and erasures land where a
// terminal puts them.
func TestReplay(t *testing.T) {
	t.Parallel()
	got := Replay("abcde\r\nfghij\rX\x1b[A\x1b[2CY\n\rline\x1b[2D\x1b[K\r\n\tZ", 5)
	want := []string{"abcYe", "li", "    Z"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Replay = %q, want %q", got, want)
	}
}
