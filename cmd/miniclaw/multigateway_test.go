package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The tests of this file run several gateways, each with its own data
// directory, on one PostgreSQL database (MINI_OPENCLAW_DATABASE_URL): the
// session lives in the database, its turns take the session's lease there,
// and every gateway's clients see every turn through the relay.

// leaseBound is the longest a session may stay unserved after the gateway
// running its turn died (the bound).
const leaseBound = 15 * time.Second

// waitBound is the longest a test waits for a state it polls for.
const waitBound = 30 * time.Second

// pgGateway is a gateway on PostgreSQL and the environment it runs with
// (which `miniclaw sessions` reuses to reach the same database).
type pgGateway struct {
	*gatewayProc
	env map[string]string
}

// startPGGateway starts gateway name on database dbURL, with a workspace
// and data directory of its own; extra is added to its environment (see
// gatewayEnv).
func startPGGateway(t *testing.T, name, dbURL string, extra map[string]string) *pgGateway {
	t.Helper()
	ws := t.TempDir()
	env := gatewayEnv(ws, filepath.Join(ws, "data"), extra)
	env["MINI_OPENCLAW_DATABASE_URL"] = dbURL
	return &pgGateway{startGateway(t, name, env), env}
}

// startPGGateways starts one gateway per name on dbURL.
func startPGGateways(t *testing.T, dbURL string, names ...string) []*pgGateway {
	t.Helper()
	gs := make([]*pgGateway, len(names))
	for i, n := range names {
		gs[i] = startPGGateway(t, n, dbURL, nil)
	}
	return gs
}

// checkNoFiles fails the test when the gateway wrote a transcript into its
// data directory: on PostgreSQL, sessions live in the database only.
func (g *pgGateway) checkNoFiles(t *testing.T) {
	t.Helper()
	dir := filepath.Join(g.env["MINI_OPENCLAW_DATA_DIR"], "sessions")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	if ids := sessionFiles(t, dir); len(ids) > 0 {
		t.Errorf("%s: transcripts written to its data directory, not the database: %v", g.name, ids)
	}
}

// messages is session id's whole transcript as GET /api/sessions/{id}
// pages it (the test sessions hold fewer than a page of 1000).
func (g *gatewayProc) messages(ctx context.Context, id string) ([]diskMsg, error) {
	var page struct {
		Messages []diskMsg `json:"messages"`
		Total    int       `json:"total"`
	}
	if err := g.getJSON(ctx, "/api/sessions/"+id+"?offset=0&limit=1000", &page); err != nil {
		return nil, err
	}
	if page.Total != len(page.Messages) {
		return nil, fmt.Errorf("GET /api/sessions/%s: %d messages of total %d", id, len(page.Messages), page.Total)
	}
	return page.Messages, nil
}

// readyStatus is the status code of the gateway's /readyz.
func (g *gatewayProc) readyStatus(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url("/readyz"), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitReady polls /readyz until it answers want, for at most waitBound.
// Nothing signals a gateway's view of its database changing: polling is
// the way.
func (g *gatewayProc) waitReady(ctx context.Context, want int) error {
	ctx, cancel := context.WithTimeout(ctx, waitBound)
	defer cancel()
	last := 0
	for {
		code, err := g.readyStatus(ctx)
		if err == nil {
			if code == want {
				return nil
			}
			last = code
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: /readyz still %d, want %d: %w", g.name, last, want, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// watcher records every event a connection receives, in order, however
// many: a watcher that stopped reading would be cut off by its gateway.
type watcher struct {
	mu     sync.Mutex
	events []serverEvent
	err    error         // why the connection ended; nil while it runs
	more   chan struct{} // a token after each change
	next   int           // the first event until has not returned
}

// watch reads w's events in a goroutine owned by the test until the
// connection ends.
func watch(t *testing.T, w *wsClient) *watcher {
	wt := &watcher{more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := w.read(context.Background())
			wt.mu.Lock()
			if err != nil {
				wt.err = err
			} else {
				wt.events = append(wt.events, ev)
			}
			wt.mu.Unlock()
			select {
			case wt.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		w.c.CloseNow()
		<-done
	})
	return wt
}

// until returns the events received since its last return, up to and
// including the first one stop accepts.
func (wt *watcher) until(ctx context.Context, stop func(serverEvent) bool) ([]serverEvent, error) {
	var seen []serverEvent
	for {
		wt.mu.Lock()
		for wt.next < len(wt.events) {
			ev := wt.events[wt.next]
			wt.next++
			seen = append(seen, ev)
			if stop(ev) {
				wt.mu.Unlock()
				return seen, nil
			}
		}
		err := wt.err
		wt.mu.Unlock()
		if err != nil {
			return seen, fmt.Errorf("connection ended after %d events: %w", len(seen), err)
		}
		select {
		case <-wt.more:
		case <-ctx.Done():
			return seen, fmt.Errorf("after %d events (last %+v): %w", len(seen), lastEvent(seen), ctx.Err())
		}
	}
}

func lastEvent(evs []serverEvent) serverEvent {
	if len(evs) == 0 {
		return serverEvent{}
	}
	return evs[len(evs)-1]
}

// doneFor accepts the message_done that answers content.
func doneFor(content string) func(serverEvent) bool {
	return func(ev serverEvent) bool { return ev.Type == "message_done" && ev.Content == "echo: "+content }
}

// watchedTurn is one turn as a watching client saw it.
type watchedTurn struct {
	user, chunks, done string
}

// turnsSeen folds a watcher's events into turns: a user_message, the
// chunks after it, and the message_done that ends it. An event out of that
// order is an error (status events are left out: they only say a turn
// waits).
func turnsSeen(evs []serverEvent) ([]watchedTurn, error) {
	var turns []watchedTurn
	open := false
	for i, ev := range evs {
		switch ev.Type {
		case "user_message":
			if open {
				return turns, fmt.Errorf("event %d: user_message %q before the message_done of %q", i, ev.Content, turns[len(turns)-1].user)
			}
			turns = append(turns, watchedTurn{user: ev.Content})
			open = true
		case "chunk", "message_done":
			if !open {
				return turns, fmt.Errorf("event %d: %s %q outside any turn", i, ev.Type, ev.Content)
			}
			cur := &turns[len(turns)-1]
			if ev.Type == "chunk" {
				cur.chunks += ev.Content
			} else {
				cur.done, open = ev.Content, false
			}
		case "status":
		default:
			return turns, fmt.Errorf("event %d: unexpected %+v", i, ev)
		}
	}
	return turns, nil
}

// pairTurns reads a transcript as exchanges: each user line and the line
// after it when that is an assistant reply ("" when none). It reports a
// user line stored twice, or one sent is false for, and a reply that
// follows no user line.
func pairTurns(msgs []diskMsg, sent func(string) bool) (map[string]diskMsg, []error) {
	replies := map[string]diskMsg{}
	var errs []error
	for i, m := range msgs {
		switch {
		case m.Role == "summary":
			// A compaction's summary record is no message of the
			// conversation (a long session is compacted).
		case m.Role == "user":
			if _, dup := replies[m.Content]; dup {
				errs = append(errs, fmt.Errorf("line %d: %q stored twice", i+1, m.Content))
			}
			if !sent(m.Content) {
				errs = append(errs, fmt.Errorf("line %d: user line %q was never sent", i+1, m.Content))
			}
			var reply diskMsg
			if i+1 < len(msgs) && msgs[i+1].Role == "assistant" {
				reply = msgs[i+1]
			}
			replies[m.Content] = reply
		case m.Role == "assistant" && (i == 0 || msgs[i-1].Role != "user"):
			errs = append(errs, fmt.Errorf("line %d: reply %q (status %q) follows no user line", i+1, m.Content, m.Status))
		case m.Role != "assistant":
			errs = append(errs, fmt.Errorf("line %d: unexpected role %q", i+1, m.Role))
		}
	}
	return replies, errs
}

// Three gateways, one database: a client on A and a client on B take turns
// on one session, each sending its next message once its reply came, while
// a client on C only watches. Every message gets its own reply, C sees
// every turn whole and in the transcript's order, and the session holds
// exactly what was sent, on the API and in `miniclaw sessions export`.
func TestThreeGatewaysOneSessionOnPostgres(t *testing.T) {
	const (
		session = "pg-shared"
		rounds  = 8 // messages each sending client sends
	)
	db := testutil.NeedPostgres(t)
	gs := startPGGateways(t, db, "gateway-A", "gateway-B", "gateway-C")
	a, b, c := gs[0], gs[1], gs[2]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Everyone attaches before anyone sends, so C sees every turn.
	var clients [3]*wsClient
	for i, g := range gs {
		w, err := dialSession(ctx, g.addr, session)
		if err != nil {
			t.Fatalf("%s: dial: %v", g.name, err)
		}
		defer w.c.CloseNow()
		clients[i] = w
	}
	watcher := watch(t, clients[2])

	var (
		mu   sync.Mutex
		sent = map[string]bool{}
		wg   sync.WaitGroup
	)
	for i, name := range []string{"c1@A", "c2@B"} {
		w := clients[i]
		wg.Go(func() {
			for r := range rounds {
				content := fmt.Sprintf("%s r%02d", name, r)
				mu.Lock()
				sent[content] = true
				mu.Unlock()
				if err := w.exchange(ctx, content); err != nil {
					t.Errorf("%s: %q: %v", name, content, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// C's view: 2×rounds turns, each whole, each reply naming its message.
	dones := 0
	evs, err := watcher.until(ctx, func(ev serverEvent) bool {
		if ev.Type == "message_done" {
			dones++
		}
		return dones == 2*rounds
	})
	if err != nil {
		t.Fatalf("C's watcher saw %d of %d message_done: %v", dones, 2*rounds, err)
	}
	seen, err := turnsSeen(evs)
	if err != nil {
		t.Fatalf("C's watcher: %v", err)
	}
	for _, tn := range seen {
		if tn.done != "echo: "+tn.user || tn.chunks != tn.done {
			t.Errorf("C's watcher: turn of %q: chunks %q, message_done %q", tn.user, tn.chunks, tn.done)
		}
	}

	msgs, err := c.messages(ctx, session)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	replies, errs := pairTurns(msgs, func(s string) bool { return sent[s] })
	for _, err := range errs {
		t.Error(err)
	}
	if len(msgs) != 4*rounds || len(replies) != len(sent) {
		t.Errorf("the session holds %d messages (%d user), want %d: the %d sent and a reply to each", len(msgs), len(replies), 4*rounds, len(sent))
	}
	for content := range sent {
		if r, ok := replies[content]; !ok {
			t.Errorf("%q is not in the session", content)
		} else if r.Content != "echo: "+content || r.Status != "" {
			t.Errorf("%q is answered by %q (status %q)", content, r.Content, r.Status)
		}
	}
	var users []string
	for _, m := range msgs {
		if m.Role == "user" {
			users = append(users, m.Content)
		}
	}
	var watched []string
	for _, tn := range seen {
		watched = append(watched, tn.user)
	}
	if !slices.Equal(watched, users) {
		t.Errorf("C saw the turns in another order than the transcript's:\nC:          %q\ntranscript: %q", watched, users)
	}

	// The export reads the database, and prints what the API pages.
	r := runCLI(t, cliTimeout, c.env, "sessions", "export", session)
	if r.code != 0 {
		t.Fatalf("miniclaw sessions export: exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(msgs) {
		t.Errorf("sessions export printed %d lines, the API pages %d messages", len(lines), len(msgs))
	}
	for i, l := range lines[:min(len(lines), len(msgs))] {
		m, err := decodeDiskLine([]byte(l))
		if err != nil {
			t.Errorf("sessions export line %d: %v: %q", i+1, err, l)
		} else if m.Role != msgs[i].Role || m.Content != msgs[i].Content || m.Timestamp != msgs[i].Timestamp {
			t.Errorf("sessions export line %d is %s %q, the API's message %d %s %q", i+1, m.Role, m.Content, i, msgs[i].Role, msgs[i].Content)
		}
	}

	for _, g := range gs {
		g.checkNoFiles(t)
	}
	for _, w := range clients[:2] {
		w.close()
	}
	for _, g := range []*pgGateway{a, b} {
		if code, took := g.terminate(10 * time.Second); code != 0 {
			t.Errorf("%s: SIGTERM: exit %d after %s, want 0", g.name, code, took)
		}
	}
}

// A gateway is SIGKILLed in the middle of a slow turn: another gateway's
// client sends to the same session and is served within the bound (the
// lease of the dead gateway goes with its connection), the transcript
// marks the dead turn interrupted before the new exchange, and a third
// gateway's watching client is told.
func TestGatewayKilledMidTurnOnPostgres(t *testing.T) {
	const (
		session = "pg-killed"
		slow    = "A asks for a slow answer"
		after   = "B asks after the kill"
	)
	db := testutil.NeedPostgres(t)
	// A's model speaks a word every 200 ms: 30 words, 6 s, far longer than
	// the test needs to kill it in the middle.
	words := strings.TrimSpace(strings.Repeat("slowly ", 30))
	a := startPGGateway(t, "gateway-A", db, map[string]string{
		"MINI_OPENCLAW_SCRIPT": writeScript(t, []map[string]any{{"text": words, "chunkDelayMs": 200}}),
	})
	b := startPGGateway(t, "gateway-B", db, nil)
	c := startPGGateway(t, "gateway-C", db, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(g *pgGateway) *wsClient {
		w, err := dialSession(ctx, g.addr, session)
		if err != nil {
			t.Fatalf("%s: dial: %v", g.name, err)
		}
		t.Cleanup(func() { w.c.CloseNow() })
		return w
	}
	onA, onB := dial(a), dial(b)
	watcher := watch(t, dial(c))

	if err := onA.send(ctx, slow); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := onA.read(ctx)
		if err != nil {
			t.Fatalf("A's client, waiting for the first words of the slow reply: %v", err)
		}
		if ev.Type == "chunk" {
			break
		}
		if ev.Type == "message_done" || ev.Type == "error" {
			t.Fatalf("A's client: the slow turn ended before the kill: %+v", ev)
		}
	}
	// C sees the turn start on A before A dies.
	if _, err := watcher.until(ctx, func(ev serverEvent) bool { return ev.Type == "chunk" }); err != nil {
		t.Fatalf("C's watcher, waiting for the slow turn's first words: %v", err)
	}
	// C's lists show the session busy although C runs none of its turns.
	var listed struct {
		Sessions []struct {
			SessionID string `json:"sessionId"`
			Busy      bool   `json:"busy"`
		} `json:"sessions"`
	}
	if err := c.getJSON(ctx, "/api/sessions", &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Sessions) != 1 || listed.Sessions[0].SessionID != session || !listed.Sessions[0].Busy {
		t.Fatalf("C lists %+v while A runs the turn, want %s busy", listed.Sessions, session)
	}
	a.kill()
	killed := time.Now()

	bctx, bcancel := context.WithTimeout(ctx, leaseBound)
	defer bcancel()
	if err := onB.send(bctx, after); err != nil {
		t.Fatal(err)
	}
	// B's client is a client of the session too: it may be told of A's
	// interrupted turn (code shutting_down: A's gateway stopped) before
	// its own reply comes.
	err := onB.awaitReply(bctx, after)
	if ee := (*eventError)(nil); errors.As(err, &ee) && ee.ev.Code == "shutting_down" {
		t.Logf("B's client was told: %+v", ee.ev)
		err = onB.awaitReply(bctx, after)
	}
	if err != nil {
		t.Fatalf("B's client, %s after A was killed mid-turn: %v", time.Since(killed).Round(time.Millisecond), err)
	}
	took := time.Since(killed)
	t.Logf("B served the session %s after A was killed mid-turn (bound %s)", took.Round(time.Millisecond), leaseBound)

	evs, err := watcher.until(ctx, doneFor(after))
	if err != nil {
		t.Fatalf("C's watcher, waiting for B's reply: %v", err)
	}
	told := -1
	for i, ev := range evs {
		if ev.Type == "user_message" && ev.Content == after {
			break
		}
		if isInterruptedNotice(ev) {
			told = i
			break
		}
	}
	if told < 0 {
		t.Errorf("C's watcher was not told A's turn was interrupted before B's turn started; it saw %+v", evs)
	} else {
		t.Logf("C's watcher was told: %+v", evs[told])
	}

	msgs, err := b.messages(ctx, session)
	if err != nil {
		t.Fatalf("%s: %v", b.name, err)
	}
	want := []diskMsg{
		{Role: "user", Content: slow},
		{Role: "assistant", Status: "interrupted"},
		{Role: "user", Content: after},
		{Role: "assistant", Content: "echo: " + after},
	}
	ok := len(msgs) == len(want)
	for i := 0; ok && i < len(want); i++ {
		m, w := msgs[i], want[i]
		ok = m.Role == w.Role && m.Status == w.Status &&
			// The interrupted reply keeps what was saved of the words, if anything.
			(m.Content == w.Content || w.Status == "interrupted" && strings.HasPrefix(words, m.Content))
	}
	if !ok {
		t.Errorf("the session holds %+v\nwant A's message, its reply marked interrupted, then B's exchange: %+v", msgs, want)
	}
	for _, g := range []*pgGateway{b, c} {
		g.checkNoFiles(t)
	}
}

// isInterruptedNotice is an event that can tell a session's clients that
// its running turn ended: a message_done, an error, or a status other than
// waiting and running. A's turn cannot end on its own (A is dead), so such
// an event before B's turn starts is the notice, whatever its wording.
func isInterruptedNotice(ev serverEvent) bool {
	switch ev.Type {
	case "message_done", "error":
		return true
	case "status":
		return ev.State != "waiting" && ev.State != "running"
	}
	return false
}

// The database is stopped under load and started again: while it is down,
// clients get error events (not silence) and /readyz answers 503; once it
// is back every gateway serves again without a restart, fans out across
// gateways again, and every message that got its message_done is in its
// session.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	pg := testutil.StartPostgres(t)
	gs := startPGGateways(t, pg.URL(), "gateway-A", "gateway-B")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// One session per client: an error event goes to every client of its
	// session, and here each must be its own.
	type client struct {
		name, session string
		g             *pgGateway
		w             *wsClient
		acked         []string // messages answered by their message_done
		errs          []serverEvent
		nacked, nerrs atomic.Int32 // len(acked), len(errs), for the test's goroutine
		err           error        // why the client stopped early
		failed        atomic.Bool  // set once err is
	}
	var clients []*client
	for _, g := range gs {
		for i := range 2 {
			name := fmt.Sprintf("%s%d", strings.TrimPrefix(g.name, "gateway-"), i)
			w, err := dialSession(ctx, g.addr, "pg-restart-"+name)
			if err != nil {
				t.Fatalf("%s: dial: %v", g.name, err)
			}
			defer w.c.CloseNow()
			clients = append(clients, &client{name: name, session: "pg-restart-" + name, g: g, w: w})
		}
	}
	// B watches A's first session: the relay must come back too.
	wB, err := dialSession(ctx, gs[1].addr, clients[0].session)
	if err != nil {
		t.Fatalf("%s: dial: %v", gs[1].name, err)
	}
	watcher := watch(t, wB)

	// Each client sends, reads until the end of its turn, and sends again.
	// A turn must end, by message_done or an error event, within
	// turnBound: a gateway that hangs on its lost database fails the test.
	const turnBound = 10 * time.Second
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() {
			for seq := 0; !stop.Load(); seq++ {
				content := fmt.Sprintf("%s m%03d", cl.name, seq)
				tctx, cancel := context.WithTimeout(ctx, turnBound)
				err := cl.w.exchange(tctx, content)
				cancel()
				var ee *eventError
				switch {
				case err == nil:
					cl.acked = append(cl.acked, content)
					cl.nacked.Add(1)
				case errors.As(err, &ee):
					cl.errs = append(cl.errs, ee.ev)
					cl.nerrs.Add(1)
					// The database is down: try again a little later.
					time.Sleep(50 * time.Millisecond)
				default:
					cl.err = fmt.Errorf("%q: no end of turn within %s: %w", content, turnBound, err)
					cl.failed.Store(true)
					return
				}
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	// waitAll polls the clients' counters (bumped by their goroutines)
	// until each one's reaches want.
	waitAll := func(what string, count func(*client) int32, want func(*client) int32) {
		t.Helper()
		deadline := time.Now().Add(waitBound)
		for _, cl := range clients {
			for count(cl) < want(cl) {
				if time.Now().After(deadline) || cl.failed.Load() {
					stop.Store(true)
					wg.Wait()
					t.Fatalf("%s: client %s: %d, want %d (%v)", what, cl.name, count(cl), want(cl), cl.err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	acked := func(cl *client) int32 { return cl.nacked.Load() }
	errored := func(cl *client) int32 { return cl.nerrs.Load() }
	waitAll("replies before the stop", acked, func(*client) int32 { return 2 })

	pg.Stop()
	stopped := time.Now()
	for _, g := range gs {
		if err := g.waitReady(ctx, http.StatusServiceUnavailable); err != nil {
			t.Fatalf("database stopped: %v", err)
		}
	}
	ackedAtStop := map[*client]int32{}
	for _, cl := range clients {
		ackedAtStop[cl] = cl.nacked.Load()
	}
	waitAll("error events while the database is down", errored, func(*client) int32 { return 1 })
	t.Logf("every client got an error event within %s of the stop", time.Since(stopped).Round(time.Millisecond))

	pg.Start()
	restarted := time.Now()
	for _, g := range gs {
		if err := g.waitReady(ctx, http.StatusOK); err != nil {
			t.Fatalf("database started again: %v", err)
		}
	}
	ackedAtStart := map[*client]int32{}
	for _, cl := range clients {
		ackedAtStart[cl] = cl.nacked.Load()
	}
	waitAll("replies after the restart", acked, func(cl *client) int32 { return ackedAtStart[cl] + 3 })
	t.Logf("every client was served 3 times within %s of the restart", time.Since(restarted).Round(time.Millisecond))
	stop.Store(true)
	wg.Wait()

	// The relay comes back too: B's watcher sees a turn of A's session
	// again. Its listener reconnects with a backoff, and what A published
	// before that is lost (B's clients are told to resync): A's client sends
	// until one turn reaches B.
	first := clients[0]
	deadline := time.Now().Add(waitBound)
	for n := 0; ; n++ {
		content := fmt.Sprintf("%s m%03d relayed?", first.name, n)
		if err := first.w.exchange(ctx, content); err != nil {
			t.Fatalf("client %s, after the restart: %q: %v", first.name, content, err)
		}
		first.acked = append(first.acked, content)
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		_, err := watcher.until(wctx, doneFor(content))
		wcancel()
		if err == nil {
			t.Logf("B's client of %s sees A's turns again %s after the restart", first.session, time.Since(restarted).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's client of %s saw none of A's turns for %s after the restart: %v", first.session, waitBound, err)
		}
	}

	for _, cl := range clients {
		if cl.err != nil {
			t.Errorf("client %s: %v", cl.name, cl.err)
		}
		var codes []string
		for _, ev := range cl.errs {
			if ev.Code == "" || ev.Message == "" {
				t.Errorf("client %s: an error event without code or message: %+v", cl.name, ev)
			}
			codes = append(codes, ev.Code+": "+ev.Message)
		}
		t.Logf("client %s: %d replies (%d before the stop, %d after the restart), %d error events: %q",
			cl.name, len(cl.acked), ackedAtStop[cl], int32(len(cl.acked))-ackedAtStart[cl], len(cl.errs), slices.Compact(codes))

		msgs, err := cl.g.messages(ctx, cl.session)
		if err != nil {
			t.Fatalf("%s: %v", cl.g.name, err)
		}
		replies, errs := pairTurns(msgs, func(s string) bool { return strings.HasPrefix(s, cl.name+" m") })
		for _, err := range errs {
			t.Errorf("%s: %v", cl.session, err)
		}
		for _, content := range cl.acked {
			if r, ok := replies[content]; !ok {
				t.Errorf("%s: acknowledged %q is missing", cl.session, content)
			} else if r.Content != "echo: "+content {
				t.Errorf("%s: acknowledged %q is answered by %q (status %q)", cl.session, content, r.Content, r.Status)
			}
		}
	}
}
