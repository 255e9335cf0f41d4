package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const relayTarget = 2 * time.Millisecond

// maxTurnsPerClient bounds every client loop independently of the clock.
const maxTurnsPerClient = 1_000_000

// loadSpec describes one load run.
type loadSpec struct {
	sessions    int
	prefix      string // session IDs are prefix-N
	warmup      time.Duration
	duration    time.Duration
	think       time.Duration // mean think time (uniform 0.5x-1.5x); 0 = closed loop without pause
	turnTimeout time.Duration
	stop        <-chan struct{} // optional: ends the run early
	// dbCPU, when set, is the CPU time the database server has used (the
	// gateways' store on PostgreSQL), sampled with the gateways'.
	dbCPU     func() time.Duration
	measuring chan struct{} // optional: closed when the warm-up ends
}

// clientStats is what one client saw; merged after the run.
type clientStats struct {
	first, turn, gap []time.Duration
	completed        int // turns finished inside the measured window
	chunks, turns    int // of measured turns
	failures         int
	mismatches       int
	samples          []string
}

func (s *clientStats) fail(msg string) {
	s.failures++
	if len(s.samples) < 2 {
		s.samples = append(s.samples, msg)
	}
}

// loadResult is a finished load run.
type loadResult struct {
	spec                loadSpec
	first, turn, gap    []time.Duration // sorted
	completed           int
	window              time.Duration
	failures            int
	mismatches          int
	samples             []string
	serverCPU, benchCPU time.Duration
	dbCPU               time.Duration // in the window, with spec.dbCPU
	chunksPerTurn       float64
	otherShare          float64 // CPU share of all cores used by other processes in the window
	stealShare          float64 // CPU share stolen by the hypervisor in the window
}

func (r *loadResult) turnsPerSec() float64 { return float64(r.completed) / r.window.Seconds() }

// runLoad opens one connection per session, spread over the gateways cs
// (see dialMany), then every client sends a message, waits for
// message_done and repeats (after a think time, if any) until the warm-up
// plus the duration have passed. Latencies are recorded for turns sent
// after the warm-up; the gateway CPU is that of all of cs.
func runLoad(ctx context.Context, cs []*child, sp loadSpec) (*loadResult, error) {
	ids := make([]string, sp.sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", sp.prefix, i)
	}
	conns, err := dialMany(ctx, cs, ids, 64)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	start := time.Now()
	warmEnd := start.Add(sp.warmup)
	runCtx, cancel := context.WithDeadline(ctx, warmEnd.Add(sp.duration))
	defer cancel()
	if sp.stop != nil {
		go func() {
			select {
			case <-sp.stop:
				cancel()
			case <-runCtx.Done():
			}
		}()
	}
	stats := make([]clientStats, len(conns))
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Go(func() { runClient(runCtx, ws, i, sp, warmEnd, &stats[i]) })
	}

	select {
	case <-time.After(time.Until(warmEnd)):
	case <-runCtx.Done():
	}
	cpu0, self0, sys0, db0 := gatewaysCPU(cs), cpuTime(os.Getpid()), readSysCPU(), sp.databaseCPU()
	measureStart := time.Now()
	if sp.measuring != nil {
		close(sp.measuring)
	}
	<-runCtx.Done()
	window := time.Since(measureStart)
	cpu1, self1, sys1, db1 := gatewaysCPU(cs), cpuTime(os.Getpid()), readSysCPU(), sp.databaseCPU()

	// Clients finish the turn they are in, each bounded by turnTimeout.
	if err := waitClients(&wg, conns, sp.turnTimeout+5*time.Second); err != nil {
		return nil, fmt.Errorf("load clients: %w", err)
	}

	r := &loadResult{spec: sp, window: window, serverCPU: cpu1 - cpu0, benchCPU: self1 - self0, dbCPU: db1 - db0}
	if all := sys1.total - sys0.total; all > 0 {
		r.otherShare = float64(sys1.busy-sys0.busy-r.serverCPU-r.benchCPU-r.dbCPU) / float64(all)
		r.stealShare = float64(sys1.steal-sys0.steal) / float64(all)
	}
	var chunks, turns int
	for i := range stats {
		s := &stats[i]
		r.first = append(r.first, s.first...)
		r.turn = append(r.turn, s.turn...)
		r.gap = append(r.gap, s.gap...)
		r.completed += s.completed
		r.failures += s.failures
		r.mismatches += s.mismatches
		chunks += s.chunks
		turns += s.turns
		if len(r.samples) < 3 {
			r.samples = append(r.samples, s.samples...)
		}
	}
	r.first, r.turn, r.gap = sortedDurations(r.first), sortedDurations(r.turn), sortedDurations(r.gap)
	if turns > 0 {
		r.chunksPerTurn = float64(chunks) / float64(turns)
	}
	return r, nil
}

// databaseCPU is sp.dbCPU(), or 0 without one.
func (sp loadSpec) databaseCPU() time.Duration {
	if sp.dbCPU == nil {
		return 0
	}
	return sp.dbCPU()
}

// gatewaysCPU is the CPU time the gateways cs have used, summed.
func gatewaysCPU(cs []*child) time.Duration {
	var d time.Duration
	for _, c := range cs {
		d += cpuTime(c.pid)
	}
	return d
}

func runClient(ctx context.Context, ws *websocket.Conn, i int, sp loadSpec, warmEnd time.Time, st *clientStats) {
	rng := rand.New(rand.NewPCG(uint64(i)+1, 0x6d63))
	for k := range maxTurnsPerClient {
		if sp.think > 0 {
			d := sp.think/2 + time.Duration(rng.Int64N(int64(sp.think)))
			if k == 0 {
				d = time.Duration(rng.Int64N(int64(sp.think))) // spread the first messages
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		msg := fmt.Sprintf("bench says hello number %d from client %d", k, i)
		want := "echo: " + msg
		payload, _ := json.Marshal(map[string]string{"type": "message", "content": msg})
		if !runTurn(ws, payload, want, sp.turnTimeout, ctx, warmEnd, st) {
			return
		}
	}
}

// runTurn sends one message and reads until its message_done. It returns
// false when the connection is no longer usable.
func runTurn(ws *websocket.Conn, payload []byte, want string, timeout time.Duration, run context.Context, warmEnd time.Time, st *clientStats) bool {
	tctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	measured := !t0.Before(warmEnd) && run.Err() == nil
	if err := ws.Write(tctx, websocket.MessageText, payload); err != nil {
		st.fail("write: " + err.Error())
		return false
	}
	var firstAt, lastAt time.Time
	chunks := 0
	for range 10_000 { // far more events than an echo turn has
		_, data, err := ws.Read(tctx)
		if err != nil {
			st.fail("read: " + err.Error())
			return false
		}
		now := time.Now()
		switch {
		case isType(data, prefixChunk):
			if chunks == 0 {
				firstAt = now
			} else if measured {
				st.gap = append(st.gap, now.Sub(lastAt))
			}
			lastAt = now
			chunks++
		case isType(data, prefixDone):
			var ev struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(data, &ev); err != nil || ev.Content != want {
				st.mismatches++
				if len(st.samples) < 2 {
					st.samples = append(st.samples, fmt.Sprintf("message_done %q, want %q", ev.Content, want))
				}
			}
			if chunks == 0 {
				st.fail("message_done without any chunk")
				return true
			}
			if measured {
				st.first = append(st.first, firstAt.Sub(t0))
				st.turn = append(st.turn, now.Sub(t0))
				st.chunks += chunks
				st.turns++
			}
			if !now.Before(warmEnd) && run.Err() == nil {
				st.completed++
			}
			return true
		case isType(data, prefixError):
			st.fail("error event: " + string(data))
			return true
		}
	}
	st.fail("no message_done after 10000 events")
	return false
}

// measureLoad runs the closed loop at each -load-sessions under each -fsync
// mode, then the paced run, each on a fresh gateway and data dir.
func measureLoad(ctx context.Context, b *bench) error {
	var saturated []*loadResult
	for _, mode := range b.cfg.fsyncModes {
		var mine []*loadResult
		for _, n := range b.cfg.loadSessions {
			r, err := b.loadRun(ctx, mode, loadSpec{sessions: n, prefix: "load", warmup: b.cfg.loadWarmup, duration: b.cfg.loadDuration, think: b.cfg.think, turnTimeout: b.cfg.turnTimeout})
			if err != nil {
				return fmt.Errorf("load %d sessions fsync=%s: %w", n, mode, err)
			}
			mine = append(mine, r)
		}
		saturated = append(saturated, mine...)
		if b.cfg.pacedSession <= 0 {
			continue
		}
		think := b.cfg.pacedThink
		how := "set by -paced-think"
		if think == 0 {
			// Offer -paced-utilization of the throughput the closed loop
			// reached with as many sessions (or the best run of this mode).
			var ref *loadResult
			for _, r := range mine {
				if ref == nil || r.spec.sessions == b.cfg.pacedSession || ref.spec.sessions != b.cfg.pacedSession && r.turnsPerSec() > ref.turnsPerSec() {
					ref = r
				}
			}
			think = time.Second
			how = "default, no closed-loop run to derive it from"
			if ref != nil && ref.turnsPerSec() > 0 {
				think = time.Duration(float64(b.cfg.pacedSession) / (b.cfg.pacedUtil * ref.turnsPerSec()) * float64(time.Second))
				think = min(max(think, 20*time.Millisecond), 60*time.Second)
				how = fmt.Sprintf("auto: %d sessions / (%.0f%% of the %s turns/s the closed loop reached with %d sessions)", b.cfg.pacedSession, b.cfg.pacedUtil*100, thousands(ref.turnsPerSec()), ref.spec.sessions)
			}
		}
		r, err := b.loadRun(ctx, mode, loadSpec{sessions: b.cfg.pacedSession, prefix: "paced", warmup: b.cfg.loadWarmup, duration: b.cfg.loadDuration, think: think, turnTimeout: b.cfg.turnTimeout})
		if err != nil {
			return fmt.Errorf("paced load %d sessions fsync=%s: %w", b.cfg.pacedSession, mode, err)
		}
		b.note("paced run fsync=%s: mean think time %s (%s); each client's first message is sent at a uniform random time within one think time, so arrivals are spread from the start. Offered ≈ %s turns/s, served %s turns/s.", mode, ms(think), how, thousands(float64(b.cfg.pacedSession)/think.Seconds()), thousands(r.turnsPerSec()))
		if len(r.turn) < 500 {
			b.note("paced run fsync=%s: only %d turns measured; its p99 rests on few samples (raise -load-duration)", mode, len(r.turn))
		}
	}
	b.note("load: one WebSocket per session (?sessionId=load-N, created by the gateway on connect); each client sends `bench says hello number K from client N`, reads until message_done (checking its content is exactly `echo: ` + the message), and sends again. Warm-up %s, then %s measured. **first chunk** = send → first chunk: it includes persisting the user message (one JSONL append + meta rewrite, plus an fsync with FSYNC=always), reading the transcript tail and starting the provider, so it is an upper bound of the relay latency. **inter-chunk gap** = time between consecutive chunks of one reply: the echo provider yields its words back to back, so this is the gateway's pure per-chunk relay cost (encode, fan-out, send queue, WebSocket write) plus the client's read. **turn** = send → message_done (it includes the assistant reply's append). turns/s counts turns finished in the measured window; CPU/turn is the gateway's user+system CPU in the window divided by those turns; \"others\" is the CPU share (of all cores) that processes other than the gateway and the bench used meanwhile.", b.cfg.loadWarmup, b.cfg.loadDuration)
	if b.cfg.think == 0 && len(saturated) > 0 {
		r := saturated[len(saturated)-1]
		b.note("saturation: without think time the closed loop keeps every session busy, so the gateway runs flat out and by Little's law a turn waits about N / throughput (here %d / %s turns/s ≈ %s) whatever the relay costs. The closed-loop runs measure throughput; the **paced** runs, offered about %.0f%% of that throughput, show the latency a user sees.", r.spec.sessions, thousands(r.turnsPerSec()), ms(time.Duration(float64(r.spec.sessions)/r.turnsPerSec()*float64(time.Second))), b.cfg.pacedUtil*100)
	}
	return nil
}

// loadRun runs one load spec on a fresh gateway and adds its rows.
func (b *bench) loadRun(ctx context.Context, mode string, sp loadSpec) (*loadResult, error) {
	kind := "closed loop"
	if sp.think > 0 {
		kind = fmt.Sprintf("paced (think ~%s)", ms(sp.think))
	}
	name := fmt.Sprintf("%s-%d-%s-%d", sp.prefix, sp.sessions, mode, time.Now().UnixNano())
	o, err := b.dataDirs(name)
	if err != nil {
		return nil, err
	}
	o.fsync = mode
	c, err := b.launch(o)
	if err != nil {
		return nil, err
	}
	defer c.kill()
	logf("  %s, %d sessions, fsync=%s: %s warm-up + %s", kind, sp.sessions, mode, sp.warmup, sp.duration)
	r, err := runLoad(ctx, []*child{c}, sp)
	if err != nil {
		return nil, err
	}
	if len(r.turn) == 0 {
		return nil, fmt.Errorf("no turn completed in the measured window (failures %d: %v)", r.failures, r.samples)
	}
	label := fmt.Sprintf("%s, %d sessions, fsync=%s", kind, sp.sessions, mode)
	target, status := "—", "info"
	if sp.sessions >= 1000 {
		target = "relay p99 < 2 ms"
	}
	st := func(p99 time.Duration) string {
		if target == "—" {
			return status
		}
		return verdict(p99 < relayTarget)
	}
	b.add(label+": first chunk", fmt.Sprintf("p50 %s, p99 %s", ms(pct(r.first, 50)), ms(pct(r.first, 99))), target, st(pct(r.first, 99)))
	b.add(label+": inter-chunk gap", fmt.Sprintf("p50 %s, p99 %s, max %s", ms(pct(r.gap, 50)), ms(pct(r.gap, 99)), ms(r.gap[len(r.gap)-1])), target, st(pct(r.gap, 99)))
	perTurn := time.Duration(0)
	if r.completed > 0 {
		perTurn = r.serverCPU / time.Duration(r.completed)
	}
	b.add(label+": turn, turns/s",
		fmt.Sprintf("p50 %s, p99 %s; **%s turns/s** (%d turns, %.1f chunks/turn, gateway CPU %s/turn, bench CPU %s/turn, others %.0f%%, %d failures, %d wrong replies)",
			ms(pct(r.turn, 50)), ms(pct(r.turn, 99)), thousands(r.turnsPerSec()), r.completed, r.chunksPerTurn, ms(perTurn), ms(r.benchCPU/time.Duration(max(1, r.completed))), 100*max(0, r.otherShare), r.failures, r.mismatches),
		"—", "info")
	if r.failures > 0 || r.mismatches > 0 {
		b.note("%s: %d failed turns and %d wrong replies, e.g. %s", label, r.failures, r.mismatches, oneLine(fmt.Sprint(r.samples)))
	}
	logf("  gateway CPU %s, bench CPU %s over %s", r.serverCPU, r.benchCPU, r.window.Round(time.Millisecond))
	b.noteWarnings(c, label)
	return r, nil
}

// waitClients waits for the clients counted by wg to finish. Past grace it
// closes their connections, which fails reads stuck on a gateway that
// stopped answering, and gives them 10 s more.
func waitClients(wg *sync.WaitGroup, conns []*websocket.Conn, grace time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		closeAll(conns)
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("did not stop")
	}
}
