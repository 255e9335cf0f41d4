package gateway_test

// Gateways on separate files stores sharing one PostgreSQL database for the
// relay (pgstore.Relay): a client on one gateway sees the turns another
// gateway runs.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/pgstore"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
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
func relayed(t testing.TB, n int, script string, opts ...func(*gateway.Options)) (string, []*testServer, []*pgstore.Relay) {
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

// stampedProvider notes when each piece of reply text goes to the gateway,
// which broadcasts it at once, by the reply's length so far.
type stampedProvider struct {
	core.Provider
	mu   sync.Mutex
	sent []stamp
}

// stamp is when a reply reached end bytes: sent, or received by a client.
type stamp struct {
	end int
	at  time.Time
}

func (p *stampedProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	n := 0
	return p.Provider.Complete(ctx, req, func(s string) {
		n += len(s)
		p.mu.Lock()
		p.sent = append(p.sent, stamp{n, time.Now()})
		p.mu.Unlock()
		onText(s)
	})
}

// take returns the stamps of the turn that ran, and forgets them.
func (p *stampedProvider) take() []stamp {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sent
	p.sent = nil
	return s
}

// receive reads a turn's events and stamps each chunk's arrival by the
// reply's length so far, until message_done.
func (c *client) receive() ([]stamp, error) {
	var got []stamp
	n := 0
	for {
		ev, err := c.read()
		if err != nil {
			return got, err
		}
		switch ev.Type {
		case "chunk":
			n += len(ev.Content)
			got = append(got, stamp{n, time.Now()})
		case "message_done":
			return got, nil
		case "error":
			return got, fmt.Errorf("the turn failed: %s", ev.Raw)
		}
	}
}

// latencies adds, for each piece sent, how long it took to reach got (the
// first arrival that covers it: merged chunks count for each piece).
func latencies(into []time.Duration, sent, got []stamp) []time.Duration {
	i := 0
	for _, s := range sent {
		for i < len(got) && got[i].end < s.end {
			i++
		}
		if i < len(got) {
			into = append(into, got[i].at.Sub(s.at))
		}
	}
	return into
}

// percentile is the p-th percentile of sorted ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

// BenchmarkRelayFanOut: the time from a chunk's broadcast on gateway A to
// its arrival at a WebSocket client of the session on gateway C (relay),
// beside its arrival at a second client on A (local fan-out). Each turn
// streams 40 words 5 ms apart, as a fast model does.
func BenchmarkRelayFanOut(b *testing.B) {
	words := strings.TrimSpace(strings.Repeat("word ", 40))
	path := filepath.Join(b.TempDir(), "script.json")
	if err := os.WriteFile(path, []byte(`[{"text": "`+words+`", "chunkDelayMs": 5}]`), 0o600); err != nil {
		b.Fatal(err)
	}
	inner, err := scripted.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	url := testutil.NeedPostgres(b)
	var relays [2]*pgstore.Relay
	stamped := &stampedProvider{Provider: inner}
	a := startServer(b, stamped, withRelay(b, url, &relays[0]))
	c := echoServer(b, withRelay(b, url, &relays[1]))
	waitListening(b, relays[:]...)
	sender := a.dial(b, "/ws?sessionId=bench")
	local, remote := a.dial(b, "/ws?sessionId=bench"), c.dial(b, "/ws?sessionId=bench")

	var localLat, relayLat []time.Duration
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		var gotLocal, gotRemote []stamp
		var errLocal, errRemote error
		wg.Go(func() { gotLocal, errLocal = local.receive() })
		wg.Go(func() { gotRemote, errRemote = remote.receive() })
		sender.message("go")
		if tn := sender.readTurn(); tn.done.Type != "message_done" {
			b.Fatalf("turn ended with %s", tn.done.Raw)
		}
		wg.Wait()
		if errLocal != nil || errRemote != nil {
			b.Fatalf("local client: %v; client on C: %v", errLocal, errRemote)
		}
		sent := stamped.take()
		localLat = latencies(localLat, sent, gotLocal)
		relayLat = latencies(relayLat, sent, gotRemote)
	}
	b.StopTimer()
	slices.Sort(localLat)
	slices.Sort(relayLat)
	for _, m := range []struct {
		unit string
		d    time.Duration
	}{
		{"local-p50-µs", percentile(localLat, 50)}, {"local-p99-µs", percentile(localLat, 99)},
		{"relay-p50-µs", percentile(relayLat, 50)}, {"relay-p99-µs", percentile(relayLat, 99)},
	} {
		b.ReportMetric(float64(m.d.Microseconds()), m.unit)
	}
	b.Logf("fan-out of %d chunks: local p50 %s p99 %s; relay (A → PostgreSQL → C) p50 %s p99 %s",
		len(relayLat), percentile(localLat, 50), percentile(localLat, 99), percentile(relayLat, 50), percentile(relayLat, 99))
}

// TestRelayTurnReachesOpenClawClients: an OpenClaw client on gateway B
// follows a turn gateway A runs for a WebSocket client, as a run of its
// own: lifecycle start, the reply in chat events, a final one.
func TestRelayTurnReachesOpenClawClients(t *testing.T) {
	t.Parallel()
	_, gws, _ := relayed(t, 2, "")
	oc := helloOC(t, gws[1], "")
	web := gws[0].dial(t, "/ws?sessionId=remote-1")
	web.chat("from gateway A")
	start := oc.nextEvent("agent")
	if start["stream"] != "lifecycle" || start["sessionKey"] != "agent:main:remote-1" {
		t.Fatalf("first agent event on B %v: want the lifecycle start of session remote-1", start)
	}
	chat := oc.chatUntil(start["runId"].(string))
	if final := chat[len(chat)-1]; final["state"] != "final" || messageText(final) != "echo: from gateway A" {
		t.Fatalf("last chat event on B %v: want final, echo: from gateway A", final)
	}
}
