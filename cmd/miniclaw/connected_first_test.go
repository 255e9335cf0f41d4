package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The first event on a new connection must be connected{sessionId}: a
// client learns its session from it before any of the session's events.
// Joining a session whose turn is streaming must not let a chunk or a
// message_done overtake it. (TestCrashSafetySIGKILL found this when a
// sharing client's dial got a message_done first.)
func TestConnectedIsFirstEventOnBusySession(t *testing.T) {
	const (
		session = "busy"
		dialers = 8
		budget  = 2 * time.Second // dialing stops at the first misordered event or then
	)
	ws := t.TempDir()
	// No fsync: the turns spend their time streaming, not in the disk.
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_FSYNC": "never"}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A streamer keeps the session busy: messages of 100 words, echoed word
	// by word with no delay, so chunks are broadcast back to back (100 stays
	// under the send queue's limit of 256 events per connection).
	streamer, err := dialSession(ctx, g.addr, session)
	if err != nil {
		t.Fatal(err)
	}
	defer streamer.c.CloseNow()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		words := strings.Repeat("w ", 100)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := streamer.exchange(ctx, fmt.Sprintf("s%d %s", i, words)); err != nil {
				t.Errorf("streamer: %v", err)
				return
			}
		}
	})

	// Dialers join the session while it streams and read one event each.
	var (
		mu      sync.Mutex
		wrong   []string // first events that were not connected
		failed  int      // dials that failed for another reason
		dialled int
	)
	deadline := time.Now().Add(budget)
	var dwg sync.WaitGroup
	for range dialers {
		dwg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				mu.Lock()
				found := len(wrong) > 0
				mu.Unlock()
				if found {
					return
				}
				w, err := dialSession(ctx, g.addr, session)
				mu.Lock()
				dialled++
				switch {
				case err == nil:
					w.c.CloseNow()
				case strings.Contains(err.Error(), "want connected"):
					wrong = append(wrong, err.Error())
				default:
					failed++
				}
				mu.Unlock()
			}
		})
	}
	dwg.Wait()
	close(stop)
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d of %d dials failed", failed, dialled)
	}
	if len(wrong) > 0 {
		t.Errorf("%d of %d connections to a busy session got another event before connected, e.g. %q", len(wrong), dialled, wrong[0])
	}
}
