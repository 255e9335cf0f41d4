package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The crash test: clients hammer a gateway, the gateway is SIGKILLed, a new
// one starts on the same data directory, and the disk must hold every
// exchange a client was told about (message_done), in order, with nothing
// corrupt, and the new gateway must index and repair what the crash left.

const (
	crashSessions   = 20                      // one client each
	crashSharers    = 4                       // extra clients on sessions 0 and 1
	crashHoppers    = 2                       // clients that open a new session for each message
	crashCycles     = 3                       // SIGKILL + restart cycles
	crashLoad       = 1500 * time.Millisecond // load before each SIGKILL
	crashBigPayload = 24 << 10                // size of the big clients' messages
)

// ledger records what the clients sent and which messages were
// acknowledged (their message_done received).
type ledger struct {
	mu      sync.Mutex
	session map[string]string     // content → session it was sent to
	acked   map[string]bool       // content → message_done received
	order   map[string][]ackEntry // client → its acknowledged messages, in order
	fails   []string              // errors that must fail the test
}

type ackEntry struct{ session, content string }

func newLedger() *ledger {
	return &ledger{session: map[string]string{}, acked: map[string]bool{}, order: map[string][]ackEntry{}}
}

func (l *ledger) sent(session, content string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.session[content] = session
}

func (l *ledger) ack(client, session, content string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[content] = true
	l.order[client] = append(l.order[client], ackEntry{session, content})
}

func (l *ledger) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, fmt.Sprintf(format, args...))
}

func (l *ledger) sessionOf(content string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.session[content]
	return s, ok
}

func (l *ledger) isAcked(content string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked[content]
}

func (l *ledger) count() (sent, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.session), len(l.acked)
}

func TestCrashSafetySIGKILL(t *testing.T) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	sessDir := filepath.Join(data, "sessions")
	env := gatewayEnv(ws, data, nil)
	ids := make([]string, crashSessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%02d", i)
	}
	led := newLedger()

	g := startGateway(t, "gateway#0", env)
	for cycle := range crashCycles {
		crashLoadAndKill(t, g, led, ids, cycle)
		kills := cycle + 1
		sent, acked := led.count()
		t.Logf("cycle %d: %d messages sent so far, %d acknowledged", cycle, sent, acked)
		if acked == 0 {
			t.Fatalf("cycle %d: no message was acknowledged", cycle)
		}

		// What the crash left: complete lines all decode, a torn last line
		// is allowed, and every acknowledged exchange is there.
		st := checkTranscripts(t, "after SIGKILL", sessDir, ids, led, kills, true)
		t.Logf("cycle %d after SIGKILL: %d sessions, %d lines, %d user lines without a reply, %d torn tails", cycle, st.sessions, st.lines, st.unanswered, st.torn)
		if t.Failed() {
			t.FailNow()
		}

		// Worse than a clean kill: torn appends and lost or corrupt metas.
		injectCrashDamage(t, sessDir, ids, cycle)

		g = startGateway(t, fmt.Sprintf("gateway#%d", cycle+1), env)
		// The index is right at once; a damaged meta file of a session the
		// index snapshot still describes is rewritten in the background.
		checkIndexMatchesDisk(t, g, sessDir, "after restart", 5*time.Second)
		repairTornTails(t, g, sessDir, led, cycle)
		checkTranscripts(t, "after repair", sessDir, ids, led, kills, false)
		// Meta files follow appends within a second (they are written
		// lazily; the transcript is the truth).
		checkIndexMatchesDisk(t, g, sessDir, "after repair", 5*time.Second)
		if t.Failed() {
			t.FailNow()
		}
	}
	if code, took := g.terminate(10 * time.Second); code != 0 {
		t.Errorf("SIGTERM after the crash cycles: exit %d after %s, want 0", code, took)
	}
	des, err := os.ReadDir(sessDir)
	if err != nil {
		t.Fatal(err)
	}
	var leftovers []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			leftovers = append(leftovers, de.Name())
		}
	}
	if len(leftovers) > 0 {
		t.Logf("temporary files left in the sessions dir by the crashes: %v", leftovers)
	}
}

// crashLoadAndKill runs the clients against g for crashLoad, then SIGKILLs
// g while they are mid-flight and waits for them to notice.
func crashLoadAndKill(t *testing.T, g *gatewayProc, led *ledger, ids []string, cycle int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), crashLoad+30*time.Second)
	defer cancel()
	var killed atomic.Bool
	var wg, dialled sync.WaitGroup
	start := make(chan struct{})
	client := func(name, session string, big, hop bool) {
		dialled.Add(1)
		wg.Go(func() { crashClient(ctx, g.addr, name, session, big, hop, led, &killed, &dialled, start) })
	}
	for i, id := range ids {
		client(fmt.Sprintf("k%d-c%02d", cycle, i), id, i%8 == 3, false)
	}
	for i := range crashSharers {
		client(fmt.Sprintf("k%d-s%02d", cycle, i), ids[i/2], false, false)
	}
	for i := range crashHoppers {
		name := fmt.Sprintf("k%d-h%02d", cycle, i)
		client(name, "hop-"+name+"-home", false, true)
	}
	// Everyone connects before anyone sends (so connected events are not
	// raced by a busy session's stream, see TestConnectedIsFirstEventOnBusySession).
	dialled.Wait()
	close(start)
	time.Sleep(crashLoad)
	killed.Store(true) // before the kill, so every error it causes is expected
	g.kill()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Errorf("cycle %d: clients still running 10s after the gateway was killed", cycle)
	}
	led.mu.Lock()
	fails := led.fails
	led.fails = nil
	led.mu.Unlock()
	for _, f := range fails {
		t.Errorf("cycle %d: %s", cycle, f)
	}
}

// crashClient sends messages one after the other on its session, recording
// each as sent before sending and as acknowledged when its message_done
// arrives, until the connection dies with the gateway. A hopping client
// sends each message to a new session named in the message event, so
// crashes also hit sessions being created.
func crashClient(ctx context.Context, addr, name, home string, big, hop bool, led *ledger, killed *atomic.Bool, dialled *sync.WaitGroup, start <-chan struct{}) {
	w, err := dialSession(ctx, addr, home)
	dialled.Done()
	if err != nil {
		led.fail("client %s: dial: %v", name, err)
		return
	}
	defer w.c.CloseNow()
	<-start
	for seq := 0; ; seq++ {
		content := fmt.Sprintf("%s m%03d", name, seq)
		if big {
			content += " " + strings.Repeat("x", crashBigPayload)
		}
		session, route := home, ""
		if hop {
			session = fmt.Sprintf("hop-%s-%03d", name, seq)
			route = session
		}
		led.sent(session, content)
		err := w.exchangeIn(ctx, route, content)
		var ee *eventError
		switch {
		case errors.As(err, &ee):
			led.fail("client %s: %v", name, err)
			return
		case err != nil:
			if !killed.Load() {
				led.fail("client %s: %v before the kill", name, err)
			}
			return
		}
		led.ack(name, session, content)
	}
}

// checkTranscripts checks every session file against the ledger:
//   - every complete line decodes as a message with role, content and
//     timestamp; bytes after the last newline only when allowTorn;
//   - every user line was sent to that session, once; every assistant line
//     directly follows a user line and is its full echo, not marked failed;
//   - a user line without its reply was never acknowledged, and there are at
//     most as many of them as there were crashes (one running turn per
//     session per gateway);
//   - every acknowledged exchange is there, in each client's order.
func checkTranscripts(t *testing.T, when, sessDir string, ids []string, led *ledger, kills int, allowTorn bool) (st transcriptStats) {
	t.Helper()
	onDisk := map[string]bool{}
	for _, id := range sessionFiles(t, sessDir) {
		onDisk[id] = true
	}
	for _, id := range ids {
		if !onDisk[id] {
			t.Errorf("%s: session %s has no transcript", when, id)
		}
	}
	pos := map[string]int{} // user content → line index in its session
	for id := range onDisk {
		tr, err := readTranscript(filepath.Join(sessDir, id+".jsonl"))
		if err != nil {
			t.Errorf("%s: %v", when, err)
			continue
		}
		st.sessions++
		st.lines += len(tr.msgs)
		if len(tr.torn) > 0 {
			st.torn++
		}
		if len(tr.torn) > 0 && !allowTorn {
			t.Errorf("%s: %s ends with a torn line %q", when, id, clip(tr.torn, 80))
		}
		unanswered := 0
		for i := 0; i < len(tr.msgs); i++ {
			m := tr.msgs[i]
			if m.Role != "user" {
				t.Errorf("%s: %s line %d: %s line %q where a user line belongs", when, id, i+1, m.Role, clip([]byte(m.Content), 80))
				continue
			}
			if s, ok := led.sessionOf(m.Content); !ok || s != id {
				t.Errorf("%s: %s line %d: user line %q was never sent to this session", when, id, i+1, clip([]byte(m.Content), 80))
			}
			if _, dup := pos[m.Content]; dup {
				t.Errorf("%s: %s line %d: user message %q stored twice", when, id, i+1, clip([]byte(m.Content), 80))
			}
			pos[m.Content] = i
			if i+1 < len(tr.msgs) && tr.msgs[i+1].Role == "assistant" {
				a := tr.msgs[i+1]
				if a.Content != "echo: "+m.Content || a.Status != "" {
					t.Errorf("%s: %s line %d: reply %q (status %q) to %q, want the full echo", when, id, i+2, clip([]byte(a.Content), 80), a.Status, clip([]byte(m.Content), 80))
				}
				if a.Timestamp < m.Timestamp {
					t.Errorf("%s: %s line %d: reply is older than its message", when, id, i+2)
				}
				i++
				continue
			}
			unanswered++
			if led.isAcked(m.Content) {
				t.Errorf("%s: %s line %d: acknowledged message %q has no reply on disk", when, id, i+1, clip([]byte(m.Content), 80))
			}
		}
		st.unanswered += unanswered
		if unanswered > kills {
			t.Errorf("%s: %s has %d user lines without a reply after %d crashes; at most one per crash is possible", when, id, unanswered, kills)
		}
	}

	led.mu.Lock()
	defer led.mu.Unlock()
	for client, acks := range led.order {
		last := map[string]int{} // session → position of the client's previous ack there
		for _, a := range acks {
			p, ok := pos[a.content]
			if !ok {
				t.Errorf("%s: acknowledged message %q of client %s is missing from %s", when, clip([]byte(a.content), 80), client, a.session)
				continue
			}
			if l, ok := last[a.session]; ok && p <= l {
				t.Errorf("%s: client %s's acknowledged messages are out of order in %s", when, client, a.session)
			}
			last[a.session] = p
		}
	}
	return st
}

// transcriptStats summarise what checkTranscripts saw.
type transcriptStats struct {
	sessions, lines, unanswered, torn int
}

// tornPrefix starts the fragments the test appends to imitate an append cut
// short by a crash.
const tornPrefix = `{"role":"user","content":"torn fragment `

// injectCrashDamage imitates what a crash at a worse moment leaves: two
// transcripts end in half a line, one meta is gone and one is garbage.
func injectCrashDamage(t *testing.T, sessDir string, ids []string, cycle int) {
	t.Helper()
	n := len(ids)
	for k := range 2 {
		id := ids[(cycle*4+k)%n]
		f, err := os.OpenFile(filepath.Join(sessDir, id+".jsonl"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Half a line, or a whole JSON object whose newline never made it:
		// both are an append that did not complete, never acknowledged.
		frag := fmt.Sprintf("%s%d", tornPrefix, cycle)
		if k == 1 {
			frag = fmt.Sprintf(`%s%d whole","timestamp":%d}`, tornPrefix, cycle, time.Now().UnixMilli())
		}
		if _, err := f.WriteString(frag); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(sessDir, ids[(cycle*4+2)%n]+".meta.json")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sessDir, ids[(cycle*4+3)%n]+".meta.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkIndexMatchesDisk checks that GET /api/sessions lists exactly the
// sessions on disk, each with messageCount equal to its complete lines, and
// that every meta file on disk says so too, at once or within metaLag.
func checkIndexMatchesDisk(t *testing.T, g *gatewayProc, sessDir, when string, metaLag time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := g.listSessions(ctx)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	files := sessionFiles(t, sessDir)
	for _, id := range files {
		tr, err := readTranscript(filepath.Join(sessDir, id+".jsonl"))
		if err != nil {
			t.Errorf("%s: %v", when, err)
			continue
		}
		s, ok := listed[id]
		if !ok {
			t.Errorf("%s: GET /api/sessions does not list %s", when, id)
			continue
		}
		if s.MessageCount != len(tr.msgs) {
			t.Errorf("%s: GET /api/sessions says %s has %d messages, the file has %d complete lines", when, id, s.MessageCount, len(tr.msgs))
		}
		// The index was rebuilt from the transcripts where the meta files
		// were stale, missing or corrupt, and the repaired metas written.
		var meta struct {
			SessionID    string `json:"sessionId"`
			MessageCount int    `json:"messageCount"`
		}
		deadline := time.Now().Add(metaLag)
		for {
			b, err := os.ReadFile(filepath.Join(sessDir, id+".meta.json"))
			if err == nil {
				err = json.Unmarshal(b, &meta)
			}
			if err == nil && meta.SessionID == id && meta.MessageCount == len(tr.msgs) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %s: meta on disk %s (%v), the file has %d complete lines", when, id, b, err, len(tr.msgs))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(listed) != len(files) {
		t.Errorf("%s: GET /api/sessions lists %d sessions, %d are on disk", when, len(listed), len(files))
	}
}

// repairTornTails sends one message to every session whose transcript ends
// in a torn line, and checks that the append cut the fragment off first
// (keeping it in <id>.jsonl.torn): afterwards every line decodes and the
// exchange is the last two lines.
func repairTornTails(t *testing.T, g *gatewayProc, sessDir string, led *ledger, cycle int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	repaired := 0
	for _, id := range sessionFiles(t, sessDir) {
		path := filepath.Join(sessDir, id+".jsonl")
		before, err := readTranscript(path)
		if err != nil {
			t.Errorf("before repair: %v", err)
			continue
		}
		if len(before.torn) == 0 {
			continue
		}
		// Reads skip the torn line.
		var page struct {
			Messages []diskMsg `json:"messages"`
			Total    int       `json:"total"`
		}
		if err := g.getJSON(ctx, "/api/sessions/"+id+"?offset=0&limit=1000", &page); err != nil {
			t.Fatal(err)
		}
		if page.Total != len(before.msgs) || len(page.Messages) != min(len(before.msgs), 1000) {
			t.Errorf("%s: GET /api/sessions/%s shows %d of %d messages; the file has %d complete lines and a torn one", id, id, len(page.Messages), page.Total, len(before.msgs))
		}
		for _, m := range page.Messages {
			if strings.HasPrefix(m.Content, "torn fragment") {
				t.Errorf("%s: GET /api/sessions/%s shows the torn line %+v", id, id, m)
			}
		}
		var tail struct {
			Messages []diskMsg `json:"messages"`
			Total    int       `json:"total"`
		}
		if err := g.getJSON(ctx, "/api/sessions/"+id+"?limit=5", &tail); err != nil {
			t.Fatal(err)
		}
		if tail.Total != len(before.msgs) || len(tail.Messages) != min(len(before.msgs), 5) {
			t.Errorf("%s: GET /api/sessions/%s?limit=5 shows %d of %d messages; the file has %d complete lines and a torn one", id, id, len(tail.Messages), tail.Total, len(before.msgs))
		}
		for _, m := range tail.Messages {
			if strings.HasPrefix(m.Content, "torn fragment") {
				t.Errorf("%s: GET /api/sessions/%s?limit=5 shows the torn line %+v", id, id, m)
			}
		}

		w, err := dialSession(ctx, g.addr, id)
		if err != nil {
			t.Fatalf("repair %s: dial: %v", id, err)
		}
		content := fmt.Sprintf("repair k%d %s", cycle, id)
		led.sent(id, content)
		err = w.exchange(ctx, content)
		w.close()
		if err != nil {
			t.Fatalf("repair %s: %v", id, err)
		}
		led.ack("repair-"+id, id, content)
		repaired++

		after, err := readTranscript(path)
		if err != nil {
			t.Errorf("after an append to a torn transcript: %v", err)
			continue
		}
		if len(after.torn) > 0 {
			t.Errorf("%s: still ends in a torn line after an append: %q", id, clip(after.torn, 80))
		}
		if len(after.msgs) != len(before.msgs)+2 {
			t.Errorf("%s: %d lines after one exchange, want %d + 2", id, len(after.msgs), len(before.msgs))
		} else if last := after.msgs[len(after.msgs)-2:]; last[0].Content != content || last[1].Content != "echo: "+content {
			t.Errorf("%s: last lines after the repair are %+v, want the exchange", id, last)
		}
		if bytesHavePrefix(before.torn, tornPrefix) {
			saved, err := os.ReadFile(path + ".torn")
			if err != nil || !strings.Contains(string(saved), string(before.torn)) {
				t.Errorf("%s: the torn fragment was not kept in %s.torn (%v)", id, id+".jsonl", err)
			}
		}
	}
	if repaired < 2 {
		t.Errorf("cycle %d: only %d torn transcripts found after restart; the test injected 2", cycle, repaired)
	}
}

func bytesHavePrefix(b []byte, prefix string) bool { return strings.HasPrefix(string(b), prefix) }

// A crash between a meta write's temp file and its rename leaves a
// .<id>.meta.json.tmp* file behind (TestCrashSafetySIGKILL finds dozens
// after three kills). Nothing ever removes them, so they pile up in the
// sessions directory with every crash. A restarted gateway should clear
// temp files old enough that no live writer can own them.
func TestRestartRemovesStaleMetaTempFiles(t *testing.T) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	sessDir := filepath.Join(data, "sessions")
	if err := os.MkdirAll(sessDir, 0o700); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf(`{"role":"user","content":"hi","timestamp":%d}`+"\n", time.Now().UnixMilli())
	if err := os.WriteFile(filepath.Join(sessDir, "s1.jsonl"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(sessDir, ".s1.meta.json.tmp1234567890")
	if err := os.WriteFile(stale, []byte(`{"sessionId":"s1"`), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	g := startGateway(t, "gateway", gatewayEnv(ws, data, nil))
	if code, took := g.terminate(10 * time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d after %s", code, took)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("a meta temp file an hour old, left by a crashed writer, is still in %s after a gateway start and stop", sessDir)
	}
}
