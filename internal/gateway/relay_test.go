package gateway_test

// Gateways on separate files stores sharing one PostgreSQL database for the
// relay (pgstore.Relay): a client on one gateway sees the turns another
// gateway runs.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/pgstore"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// withRelay gives the gateway a relay on the database url names, listening
// before the gateway serves; the relay is closed after the gateway's
// shutdown. *r, when r is not nil, is set to it.
func withRelay(t testing.TB, url string, r **pgstore.Relay) func(*gateway.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	relay, err := pgstore.NewRelay(ctx, url, pgstore.RelayOptions{})
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	t.Cleanup(relay.Close) // after the gateway's Shutdown, registered later
	if r != nil {
		*r = relay
	}
	return func(o *gateway.Options) { o.Relay = relay }
}

// waitListening waits until every relay listens.
func waitListening(t testing.TB, relays ...*pgstore.Relay) {
	t.Helper()
	for _, r := range relays {
		select {
		case <-r.Ready():
		case <-time.After(waitFor):
			t.Fatalf("relay %s does not listen after %s", r.Gateway(), waitFor)
		}
	}
}

// relayed starts n echoing gateways with relays on one new database, the
// first running script instead when it is not "", and waits until they
// listen.
func relayed(t *testing.T, n int, script string, opts ...func(*gateway.Options)) (string, []*testServer, []*pgstore.Relay) {
	t.Helper()
	url := testutil.NeedPostgres(t)
	var servers []*testServer
	relays := make([]*pgstore.Relay, n)
	for i := range n {
		o := append([]func(*gateway.Options){withRelay(t, url, &relays[i])}, opts...)
		if i == 0 && script != "" {
			servers = append(servers, scriptServer(t, script, o...))
		} else {
			servers = append(servers, echoServer(t, o...))
		}
	}
	waitListening(t, relays...)
	return url, servers, relays
}

// summary is the events of a turn as a list, consecutive chunks joined
// (how many chunks a reply comes in varies with merging): "type" or
// "chunk:text" or "user_message:content".
func (c *client) summary() []string {
	c.t.Helper()
	var out []string
	for {
		ev := c.next()
		switch ev.Type {
		case "chunk":
			if n := len(out); n > 0 && strings.HasPrefix(out[n-1], "chunk:") {
				out[n-1] += ev.Content
			} else {
				out = append(out, "chunk:"+ev.Content)
			}
			continue
		case "user_message", "message_done":
			out = append(out, ev.Type+":"+ev.Content)
		default:
			out = append(out, ev.Type)
		}
		if ev.Type == "message_done" || ev.Type == "error" {
			return out
		}
	}
}

// TestRelayTurnReachesOtherGateways: a turn with a tool call that gateway A
// runs reaches the clients of its session on gateways B and C with every
// event, in order, the same as a second client on A sees it.
func TestRelayTurnReachesOtherGateways(t *testing.T) {
	t.Parallel()
	_, gws, _ := relayed(t, 3, `[
		{"text": "Let me look.", "toolCalls": [{"name": "list_files", "input": {"directory": "."}}]},
		{"text": "There is notes.txt, and it says to remember the milk."}
	]`, withFileTools(t))
	sender := gws[0].dial(t, "/ws?sessionId=shared")
	watchers := []*client{gws[0].dial(t, "/ws?sessionId=shared"), gws[1].dial(t, "/ws?sessionId=shared"), gws[2].dial(t, "/ws?sessionId=shared")}
	sender.message("what is here?")

	want := []string{"user_message:what is here?", "chunk:Let me look.", "tool_start", "tool_done",
		"chunk:There is notes.txt, and it says to remember the milk.", "message_done:There is notes.txt, and it says to remember the milk."}
	for i, w := range watchers {
		if got := w.summary(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("watcher %d saw\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// The gateways' own sessions of that ID are untouched: the relay
	// carries events, not transcripts.
	if m, err := gws[2].store.Get("shared"); err != nil || m.MessageCount != 0 {
		t.Errorf("gateway C's session: %+v, %v; want it empty", m, err)
	}
}

// TestRelaySpillsBigEvents: an event over the NOTIFY payload limit (a 20 KB
// user message, and its 20 KB echo) crosses through relay_spill.
func TestRelaySpillsBigEvents(t *testing.T) {
	t.Parallel()
	url, gws, _ := relayed(t, 2, "")
	sender := gws[0].dial(t, "/ws?sessionId=big")
	watcher := gws[1].dial(t, "/ws?sessionId=big")
	big := strings.Repeat("0123456789", 2000)
	sender.message(big)
	got := watcher.summary()
	want := []string{"user_message:" + big, "chunk:echo: " + big, "message_done:echo: " + big}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("watcher saw %d events (%.200q), want user_message, chunk and message_done of 20 KB each", len(got), strings.Join(got, "\n"))
	}
	if n := queryInt(t, url, "SELECT count(*) FROM relay_spill"); n < 2 {
		t.Errorf("relay_spill holds %d rows, want the 2 or more spilled notices", n)
	}
}

// queryInt runs a query of one integer on the database url names.
func queryInt(t *testing.T, url, sql string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestRelayListenerReconnects: when gateway B's listening connection is
// killed, B connects again and tells its clients to reload history (what
// was published meanwhile is lost); later turns reach them again.
func TestRelayListenerReconnects(t *testing.T) {
	t.Parallel()
	url, gws, relays := relayed(t, 2, "")
	sender := gws[0].dial(t, "/ws?sessionId=cut")
	watcher := gws[1].dial(t, "/ws?sessionId=cut")
	other := gws[1].dial(t, "/ws?sessionId=elsewhere")

	if n := queryInt(t, url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'miniclaw relay listen "+relays[1].Gateway()+"'"); n != 1 {
		t.Fatalf("terminated %d listening connections of gateway B, want 1", n)
	}
	for _, c := range []*client{watcher, other} {
		ev := c.expect("resync")
		if ev.SessionID != c.sessionID || ev.Message == "" {
			t.Errorf("resync %s, want one of session %s with a message", ev.Raw, c.sessionID)
		}
	}
	sender.message("still there?")
	want := "user_message:still there?\nchunk:echo: still there?\nmessage_done:echo: still there?"
	if got := strings.Join(watcher.summary(), "\n"); got != want {
		t.Errorf("after the reconnect the watcher saw\n%s\nwant\n%s", got, want)
	}
}

// TestRelayAbortFromOtherGateway: a client on gateway B aborts the turn
// gateway A runs; both gateways' clients see it end aborted. With no turn
// running anywhere, abort still answers not_running.
func TestRelayAbortFromOtherGateway(t *testing.T) {
	t.Parallel()
	_, gws, _ := relayed(t, 2, `[{"text": "one two three four five six seven eight nine ten eleven twelve", "chunkDelayMs": 300}]`)
	sender := gws[0].dial(t, "/ws?sessionId=stop")
	watcher := gws[1].dial(t, "/ws?sessionId=stop")
	watcher.send(map[string]string{"type": "abort"})
	watcher.expectError("not_running")

	sender.message("talk slowly")
	watcher.expect("user_message")
	watcher.expect("chunk")
	watcher.send(map[string]string{"type": "abort"})
	for name, c := range map[string]*client{"sender on A": sender, "watcher on B": watcher} {
		tn := c.readTurn()
		if tn.done.Type != "error" || tn.done.Code != "aborted" {
			t.Errorf("%s: the turn ended with %s, want error aborted", name, tn.done.Raw)
		}
		if strings.Contains(tn.text(), "twelve") {
			t.Errorf("%s: the whole reply streamed (%q): the abort did not stop it", name, tn.text())
		}
	}
}
