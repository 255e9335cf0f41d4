package pgstore

import (
	"errors"
	"testing"

	"github.com/miniclaw/miniclaw/internal/session"
)

// TestArchiveRefusedWhileATurnRuns: a gateway cannot see the turns another
// one runs in its lanes, so the store refuses to archive a session whose
// turn is recorded (its reply would have nowhere to go), and archives it
// once the turn is over; Running names it meanwhile (busy in lists).
func TestArchiveRefusedWhileATurnRuns(t *testing.T) {
	stores, _, _ := gateways(t, 2, "s1")
	l := lock(t, stores[0], "s1")
	if _, err := stores[1].Archive("s1"); !errors.Is(err, session.ErrBusy) {
		t.Fatalf("Archive during another gateway's turn: %v, want ErrBusy", err)
	}
	if _, err := stores[1].Get("s1"); err != nil {
		t.Fatalf("the session after the refused archive: %v", err)
	}
	if running, err := stores[1].Running(); err != nil || !running["s1"] || len(running) != 1 {
		t.Fatalf("Running during the turn: %v, %v; want s1", running, err)
	}
	l.Unlock()
	if running, err := stores[1].Running(); err != nil || len(running) != 0 {
		t.Fatalf("Running after the turn: %v, %v; want none", running, err)
	}
	if _, err := stores[1].Archive("s1"); err != nil {
		t.Fatalf("Archive after the turn: %v", err)
	}
}
