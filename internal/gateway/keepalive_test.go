package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/gateway"
)

// TestKeepaliveDropsDeadPeers: a peer that never reads cannot answer the
// server's pings and is dropped; a peer that reads (its library answers
// pings) stays connected through many ping rounds and can still chat.
func TestKeepaliveDropsDeadPeers(t *testing.T) {
	t.Parallel()
	const every = time.Second // the live peer has every/2 to answer: room for a loaded -race run
	ts := echoServer(t, func(o *gateway.Options) { o.Keepalive = every })

	alive := ts.dial(t, "/ws?sessionId=alive")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The live peer reads in the background so its pongs go out; its
	// events are collected for the check below.
	got := make(chan string, 16)
	go func() {
		for {
			_, b, err := alive.ws.Read(ctx)
			if err != nil {
				close(got)
				return
			}
			got <- string(b)
		}
	}()

	dead, _, err := ts.dialRaw(t, "/ws?sessionId=dead", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = dead // never read: pings go unanswered
	waitConns(t, ts, 2, "both peers connected")
	waitConns(t, ts, 1, "the peer that answers no ping dropped")
	// Several ping rounds later the live peer is still served.
	time.Sleep(3 * every)
	if n := ts.srv.Connections(); n != 1 {
		t.Fatalf("%d connections, want the live peer still connected", n)
	}
	if err := alive.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatalf("live peer: %v", err)
	}
	select {
	case ev, ok := <-got:
		if !ok || ev != `{"type":"pong"}` {
			t.Fatalf("live peer got %q (open %v), want a pong", ev, ok)
		}
	case <-time.After(waitFor):
		t.Fatal("live peer got no pong")
	}
}

// waitConns waits until the server counts n open WebSocket connections.
func waitConns(t *testing.T, ts *testServer, n int64, what string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for ts.srv.Connections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after %s, want %d (%s)", ts.srv.Connections(), waitFor, n, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
