package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	mpConnsPerProc = 3  // connections per gateway, all on the one session
	mpMsgsPerConn  = 15 // messages each connection sends, pipelined
	mpSession      = "mp-shared"
)

// Two gateway processes on one data directory run turns of the same session
// at the same time. The flock on the transcript must keep every line whole
// (no interleaved bytes, no lost line, nothing torn), and the session's turn
// lock must keep whole turns apart: every reply answers its own process's
// message, so the transcript strictly alternates user, echo of that user.
func TestTwoGatewaysOneSession(t *testing.T) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	env := gatewayEnv(ws, data, nil)
	procs := []*gatewayProc{startGateway(t, "gateway-A", env), startGateway(t, "gateway-B", env)}
	if procs[0].addr == procs[1].addr {
		t.Fatalf("both gateways listen on %s", procs[0].addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Attach every connection before anyone sends, so each one sees all the
	// message_done events of its gateway's turns on the session.
	type client struct {
		proc int
		name string
		w    *wsClient
	}
	var clients []client
	for p, g := range procs {
		for c := range mpConnsPerProc {
			w, err := dialSession(ctx, g.addr, mpSession)
			if err != nil {
				t.Fatalf("%s: dial: %v", g.name, err)
			}
			defer w.c.CloseNow()
			clients = append(clients, client{p, fmt.Sprintf("p%d-c%d", p, c), w})
		}
	}

	perProc := mpConnsPerProc * mpMsgsPerConn
	var (
		mu    sync.Mutex
		acked = make([]int, len(procs)) // message_done seen, per gateway (min over its connections)
		sent  = map[string]string{}     // content → client
	)
	for i := range acked {
		acked[i] = perProc
	}
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() {
			for seq := range mpMsgsPerConn {
				content := fmt.Sprintf("%s m%02d", cl.name, seq)
				mu.Lock()
				sent[content] = cl.name
				mu.Unlock()
				if err := cl.w.send(ctx, content); err != nil {
					t.Errorf("%s: send: %v", cl.name, err)
					return
				}
			}
			done := 0
			for done < perProc {
				ev, err := cl.w.read(ctx)
				if err != nil {
					t.Errorf("%s: after %d of %d message_done: %v", cl.name, done, perProc, err)
					break
				}
				switch ev.Type {
				case "message_done":
					done++
				case "error":
					t.Errorf("%s: error event: %+v", cl.name, ev)
				}
			}
			mu.Lock()
			acked[cl.proc] = min(acked[cl.proc], done)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	total := acked[0] + acked[1]

	path := filepath.Join(data, "sessions", mpSession+".jsonl")
	tr, err := readTranscript(path)
	if err != nil {
		t.Fatalf("the shared transcript is corrupt: %v", err)
	}
	if len(tr.torn) > 0 {
		t.Errorf("the shared transcript ends in a torn line: %q", clip(tr.torn, 80))
	}
	if len(tr.msgs) != 2*total {
		t.Errorf("the shared transcript has %d lines; %d acknowledged turns need exactly %d", len(tr.msgs), total, 2*total)
	}

	// Every sent message exactly once, each connection's in its send order,
	// and as many replies as messages, none marked failed.
	seen := map[string]bool{}
	lastSeq := map[string]string{}
	users, replies, userRuns, wrongEcho := 0, 0, 0, 0
	firstBad := "" // the first line where two turns interleaved
	prevUser := ""
	for i, m := range tr.msgs {
		switch m.Role {
		case "user":
			users++
			owner, ok := sent[m.Content]
			if !ok {
				t.Errorf("line %d: user line %q was never sent", i+1, m.Content)
			}
			if seen[m.Content] {
				t.Errorf("line %d: %q stored twice", i+1, m.Content)
			}
			seen[m.Content] = true
			if m.Content <= lastSeq[owner] {
				t.Errorf("line %d: %q after %q: a connection's messages are out of order", i+1, m.Content, lastSeq[owner])
			}
			lastSeq[owner] = m.Content
			if i > 0 && tr.msgs[i-1].Role == "user" {
				userRuns++
				firstBad = cmp.Or(firstBad, fmt.Sprintf("line %d: user line %q follows another user line", i+1, m.Content))
			}
			prevUser = m.Content
		case "assistant":
			replies++
			if m.Status != "" || !strings.HasPrefix(m.Content, "echo: ") {
				t.Errorf("line %d: reply %q with status %q", i+1, m.Content, m.Status)
			}
			if m.Content != "echo: "+prevUser {
				wrongEcho++
				firstBad = cmp.Or(firstBad, fmt.Sprintf("line %d: reply %q does not answer the message before it, %q", i+1, m.Content, prevUser))
			}
		default:
			t.Errorf("line %d: unexpected role %q", i+1, m.Role)
		}
	}
	if users != total || replies != total {
		t.Errorf("%d user and %d assistant lines, want %d of each", users, replies, total)
	}
	var missing []string
	for content := range sent {
		if !seen[content] {
			missing = append(missing, content)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d acknowledged messages are missing from the transcript: %v", len(missing), missing)
	}
	if userRuns > 0 || wrongEcho > 0 {
		t.Errorf("%d turns from 2 gateways interleaved: %d user lines directly follow a user line, %d replies do not echo the line before them; first: %s", total, userRuns, wrongEcho, firstBad)
	}

	// Both gateways answer with the true line count for the page total;
	// messageCount in each one's index is logged (the gateway that did not
	// write last may hold an older count until its next append).
	for _, g := range procs {
		var got struct {
			Session apiSession `json:"session"`
			Total   int        `json:"total"`
		}
		if err := g.getJSON(ctx, "/api/sessions/"+mpSession+"?limit=1", &got); err != nil {
			t.Fatal(err)
		}
		if got.Total != 2*total {
			t.Errorf("%s: GET /api/sessions/%s total=%d, the file has %d lines", g.name, mpSession, got.Total, 2*total)
		}
		t.Logf("%s: index messageCount=%d, file lines=%d", g.name, got.Session.MessageCount, 2*total)
	}

	for _, cl := range clients {
		cl.w.close()
	}
	for _, g := range procs {
		if code, took := g.terminate(10 * time.Second); code != 0 {
			t.Errorf("%s: SIGTERM: exit %d after %s, want 0", g.name, code, took)
		}
	}
}

// Two gateways append to one session and one of them is SIGKILLed mid-load:
// the survivor must keep going (a dead holder never leaves the session
// locked, neither its transcript nor its turn lock), cut any torn tail the
// dead one left, and every acknowledged exchange of both must be on disk.
func TestTwoGatewaysOneKilled(t *testing.T) {
	const session = "mp-crash"
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	env := gatewayEnv(ws, data, nil)
	a, b := startGateway(t, "gateway-A", env), startGateway(t, "gateway-B", env)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// One connection per gateway, one message at a time: every message_done
	// it sees is the reply to the message it just sent.
	type result struct {
		sent, acked []string
		ackedAt     []time.Time
		err         error
		nacked      atomic.Int32 // len(acked), for the test's goroutine
	}
	var stopB atomic.Bool
	// run chats until stop is set, or, with a nil stop, until the
	// connection fails (A's, when its gateway is killed: A must notice).
	run := func(g *gatewayProc, name string, stop *atomic.Bool, res *result) {
		w, err := dialSession(ctx, g.addr, session)
		if err != nil {
			res.err = err
			return
		}
		defer w.c.CloseNow()
		for seq := 0; stop == nil || !stop.Load(); seq++ {
			content := fmt.Sprintf("%s m%03d", name, seq)
			res.sent = append(res.sent, content)
			if err := w.send(ctx, content); err != nil {
				res.err = err
				return
			}
			for {
				ev, err := w.read(ctx)
				if err != nil {
					res.err = err
					return
				}
				if ev.Type == "error" {
					res.err = &eventError{ev}
					return
				}
				if ev.Type == "message_done" {
					break
				}
			}
			res.acked = append(res.acked, content)
			res.ackedAt = append(res.ackedAt, time.Now())
			res.nacked.Add(1)
		}
	}
	var resA, resB result
	var wg sync.WaitGroup
	wg.Go(func() { run(a, "A", nil, &resA) })
	wg.Go(func() { run(b, "B", &stopB, &resB) })

	// Kill A once both have had replies: each turn polls for the
	// session's turn lock, so on a loaded machine one gateway can hold the
	// session for a while before the other gets a turn in.
	time.Sleep(time.Second)
	for resA.nacked.Load() == 0 || resB.nacked.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatalf("no reply from both gateways before the kill: A %d, B %d", resA.nacked.Load(), resB.nacked.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.kill()
	killedAt := time.Now()
	time.Sleep(700 * time.Millisecond)
	stopB.Store(true)
	wg.Wait()

	if resA.err == nil {
		t.Errorf("gateway A's client did not notice the kill")
	}
	var ee *eventError
	if errors.As(resA.err, &ee) {
		t.Errorf("gateway A's client: %v", resA.err)
	}
	if resB.err != nil {
		t.Fatalf("gateway B's client, after %d replies: %v", len(resB.acked), resB.err)
	}
	afterKill := 0
	for _, at := range resB.ackedAt {
		if at.After(killedAt) {
			afterKill++
		}
	}
	t.Logf("A: %d sent, %d acknowledged; B: %d acknowledged, %d of them after A was killed", len(resA.sent), len(resA.acked), len(resB.acked), afterKill)
	if len(resA.acked) == 0 || afterKill < 3 {
		t.Fatalf("too little progress to judge: A acknowledged %d, B %d after the kill", len(resA.acked), afterKill)
	}

	tr, err := readTranscript(filepath.Join(data, "sessions", session+".jsonl"))
	if err != nil {
		t.Fatalf("the shared transcript is corrupt: %v", err)
	}
	if len(tr.torn) > 0 {
		t.Errorf("the survivor's appends left a torn line: %q", clip(tr.torn, 80))
	}
	sentBy := map[string]string{}
	for _, c := range resA.sent {
		sentBy[c] = "A"
	}
	for _, c := range resB.sent {
		sentBy[c] = "B"
	}
	seen := map[string]int{}
	users, replies := 0, 0
	for i, m := range tr.msgs {
		switch m.Role {
		case "user":
			users++
			if sentBy[m.Content] == "" {
				t.Errorf("line %d: user line %q was never sent", i+1, m.Content)
			}
			if _, dup := seen[m.Content]; dup {
				t.Errorf("line %d: %q stored twice", i+1, m.Content)
			}
			seen[m.Content] = i
		case "assistant":
			replies++
			if m.Status != "" || sentBy[strings.TrimPrefix(m.Content, "echo: ")] == "" {
				t.Errorf("line %d: reply %q (status %q) echoes no sent message", i+1, m.Content, m.Status)
			}
		default:
			t.Errorf("line %d: unexpected role %q", i+1, m.Role)
		}
	}
	for _, c := range append(append([]string(nil), resA.acked...), resB.acked...) {
		if _, ok := seen[c]; !ok {
			t.Errorf("acknowledged message %q is missing", c)
		}
	}
	// A's last message may have been in flight: its user line, and even its
	// reply, may or may not have reached the file.
	acked := len(resA.acked) + len(resB.acked)
	inFlightA := len(resA.sent) - len(resA.acked)
	if users < acked || users > acked+inFlightA {
		t.Errorf("%d user lines, want %d acknowledged + up to %d in flight", users, acked, inFlightA)
	}
	if replies < acked || replies > acked+inFlightA || replies > users {
		t.Errorf("%d replies for %d user lines and %d acknowledged turns", replies, users, acked)
	}
	if code, took := b.terminate(10 * time.Second); code != 0 {
		t.Errorf("gateway B: SIGTERM: exit %d after %s, want 0", code, took)
	}
}
