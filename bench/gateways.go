package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// gatewaysRun is one store and gateway count the gateways measurement
// loads.
type gatewaysRun struct {
	store    string // files | postgres
	gateways int
}

func (r gatewaysRun) String() string {
	s := fmt.Sprintf("%s, %d gateway", r.store, r.gateways)
	if r.gateways > 1 {
		s += "s"
		if r.store == "files" {
			s += " on one data dir"
		}
	}
	return s
}

// measureGateways loads 1 and 3 gateways on one PostgreSQL database,
// beside the files store (1 gateway, and 3 on one shared data dir), then
// times the fan-out of a turn's events to a second client on the gateway
// that runs it and to a client on another gateway.
func measureGateways(ctx context.Context, b *bench) error {
	pg, err := startPostgres(b.cfg.databaseURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pg.close()
	b.note("gateways: PostgreSQL is %s; each run has a database of its own. Every gateway runs FSYNC=never.", pg.where())

	for _, r := range []gatewaysRun{{"files", 1}, {"files", 3}, {"postgres", 1}, {"postgres", 3}} {
		if err := b.gatewaysLoad(ctx, pg, r); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	for _, r := range []gatewaysRun{{"files", 1}, {"postgres", 3}} {
		if err := b.gatewaysFanout(ctx, pg, r); err != nil {
			return fmt.Errorf("fan-out, %s: %w", r, err)
		}
	}
	b.note("gateways: the closed loop runs -gateway-sessions sessions, one WebSocket each, spread round robin over the gateways (as a load balancer would), for %s after %s of warm-up; **turn** = send → message_done at the sender, **first chunk** = send → first chunk; the CPU per turn is the gateways' and, on a throwaway cluster, PostgreSQL's (its postmaster and backends; not measured on -database-url). The fan-out runs one session: a client on gateway A sends -fanout-turns messages one after the other, a second client on A and one on C only watch; for each chunk and message_done, the delay is its arrival at the watcher minus its arrival at the sender (which A's hub serves first-hand; negative when A's hub happened to serve the watcher first), the first 10 turns left out. On the files store a client of another gateway sees nothing of the turn (there is no relay between gateways on files), so only the local figure is given.", b.cfg.loadDuration, b.cfg.loadWarmup)
	return nil
}

// startGateways starts r.gateways gateways for run name: on the files
// store, all on one data dir; on PostgreSQL, each with a data dir of its
// own and all on one new database.
func (b *bench) startGateways(ctx context.Context, pg *pgServer, name string, r gatewaysRun) ([]*child, []childOpts, error) {
	var env []string
	if r.store == "postgres" {
		db, err := pg.newDatabase(ctx)
		if err != nil {
			return nil, nil, err
		}
		env = []string{"MINI_OPENCLAW_DATABASE_URL=" + db}
	}
	var cs []*child
	var opts []childOpts
	var err error
	for i := range r.gateways {
		// The files store's gateways share one data dir (the same name
		// gives the same folders); PostgreSQL's each have their own.
		dir := name
		if r.store == "postgres" {
			dir = fmt.Sprintf("%s-%d", name, i)
		}
		var o childOpts
		if o, err = b.dataDirs(dir); err != nil {
			break
		}
		o.env = env
		var c *child
		if c, err = b.launch(o); err != nil {
			break
		}
		cs, opts = append(cs, c), append(opts, o)
	}
	if err != nil {
		killGateways(cs)
		return nil, nil, err
	}
	return cs, opts, nil
}

func killGateways(cs []*child) {
	for _, c := range cs {
		c.kill()
	}
}

// checkStore fails a PostgreSQL run whose gateways wrote transcripts into
// their data dirs: the binary ignored MINI_OPENCLAW_DATABASE_URL, and the
// figures would be the files store's.
func checkStore(r gatewaysRun, opts []childOpts) error {
	if r.store != "postgres" {
		return nil
	}
	for _, o := range opts {
		found, _ := filepath.Glob(filepath.Join(o.sessionsDir(), "*.jsonl"))
		if len(found) > 0 {
			return fmt.Errorf("the gateway wrote %d transcripts into %s: it does not store sessions in PostgreSQL (a binary without MINI_OPENCLAW_DATABASE_URL?)", len(found), o.sessionsDir())
		}
	}
	return nil
}

// gatewaysLoad runs the closed loop on r and adds its row.
func (b *bench) gatewaysLoad(ctx context.Context, pg *pgServer, r gatewaysRun) error {
	name := fmt.Sprintf("gw-%s-%d-%d", r.store, r.gateways, time.Now().UnixNano())
	cs, opts, err := b.startGateways(ctx, pg, name, r)
	if err != nil {
		return err
	}
	defer killGateways(cs)
	logf("  %s, %d sessions: %s warm-up + %s", r, b.cfg.gwSessions, b.cfg.loadWarmup, b.cfg.loadDuration)
	sp := loadSpec{sessions: b.cfg.gwSessions, prefix: "gw", warmup: b.cfg.loadWarmup, duration: b.cfg.loadDuration, turnTimeout: b.cfg.turnTimeout}
	if r.store == "postgres" {
		sp.dbCPU = pg.cpuFunc()
	}
	res, err := runLoad(ctx, cs, sp)
	if err != nil {
		return err
	}
	if err := checkStore(r, opts); err != nil {
		return err
	}
	if len(res.turn) == 0 {
		return fmt.Errorf("no turn completed in the measured window (failures %d: %v)", res.failures, res.samples)
	}
	label := fmt.Sprintf("gateways: %s, %d sessions", r, b.cfg.gwSessions)
	perTurn := func(d time.Duration) string { return ms(d / time.Duration(max(1, res.completed))) }
	cpu := "gateways' CPU " + perTurn(res.serverCPU) + "/turn"
	if sp.dbCPU != nil {
		cpu += ", PostgreSQL's " + perTurn(res.dbCPU) + "/turn"
	}
	b.add(label,
		fmt.Sprintf("**%s turns/s**; turn p50 %s, p99 %s; first chunk p50 %s, p99 %s (%s, %d failures, %d wrong replies)",
			thousands(res.turnsPerSec()), ms(pct(res.turn, 50)), ms(pct(res.turn, 99)), ms(pct(res.first, 50)), ms(pct(res.first, 99)),
			cpu, res.failures, res.mismatches),
		"—", "info")
	if res.failures > 0 || res.mismatches > 0 {
		b.note("%s: %d failed turns and %d wrong replies, e.g. %s", label, res.failures, res.mismatches, oneLine(fmt.Sprint(res.samples)))
	}
	for i, c := range cs {
		b.noteWarnings(c, fmt.Sprintf("%s (gateway %d)", label, i+1))
	}
	return nil
}

// gatewaysFanout times the fan-out of one session's turns on r's first
// gateway to a second client there and, with several gateways, to a
// client of the last one; it adds their rows.
func (b *bench) gatewaysFanout(ctx context.Context, pg *pgServer, r gatewaysRun) error {
	name := fmt.Sprintf("fan-%s-%d-%d", r.store, r.gateways, time.Now().UnixNano())
	cs, opts, err := b.startGateways(ctx, pg, name, r)
	if err != nil {
		return err
	}
	defer killGateways(cs)
	watchers := []*child{cs[0]}
	if len(cs) > 1 {
		watchers = append(watchers, cs[len(cs)-1])
	}
	logf("  fan-out, %s: %d turns", r, b.cfg.fanoutTurns)
	res, err := runFanout(ctx, cs[0], watchers, "fanout", b.cfg.fanoutTurns, b.cfg.turnTimeout)
	if err != nil {
		return err
	}
	if err := checkStore(r, opts); err != nil {
		return err
	}
	label := "gateways: fan-out, " + r.String()
	b.add(label+": send → message_done at the sender", fmt.Sprintf("p50 %s, p99 %s (%d turns, one session)", ms(pct(res.turn, 50)), ms(pct(res.turn, 99)), len(res.turn)), "—", "info")
	where := []string{"a second client on A", "a client on C"}
	for i, lag := range res.lag {
		b.add(fmt.Sprintf("%s: event on A → %s", label, where[i]),
			fmt.Sprintf("p50 %s, p99 %s, max %s (%d chunks and message_done)", ms(pct(lag, 50)), ms(pct(lag, 99)), ms(lag[len(lag)-1]), len(lag)), "—", "info")
	}
	for i, c := range cs {
		b.noteWarnings(c, fmt.Sprintf("%s (gateway %d)", label, i+1))
	}
	return nil
}

// fanoutWarm is how many first turns the fan-out figures leave out.
const fanoutWarm = 10

// fanoutGrace is how long the watchers may lag behind the sender's last
// message_done before the run fails.
const fanoutGrace = 10 * time.Second

// fanoutResult is what runFanout measured.
type fanoutResult struct {
	turn []time.Duration   // send → message_done at the sender, sorted
	lag  [][]time.Duration // per watcher: arrival there − arrival at the sender, sorted
}

// mark is when a client had received a reply up to byte end (math.MaxInt:
// its message_done).
type mark struct {
	end int
	at  time.Time
}

// seenTurn is one turn's reply as one client received it. A gateway may
// merge the chunks queued for a client that lags into one, so clients
// are compared by how far into the reply they are, not chunk by chunk.
type seenTurn struct {
	marks      []mark // one per chunk, then the message_done's
	text, done string // the chunks' text; message_done's content
}

// runFanout sends turns messages on session from a client of sender, one
// after the other, while a client of each of watchers only reads; it
// returns the sender's turn times and, per watcher, how much later than
// the sender it received each chunk and message_done.
func runFanout(ctx context.Context, sender *child, watchers []*child, session string, turns int, turnTimeout time.Duration) (*fanoutResult, error) {
	ws, err := dialSession(ctx, sender.wsURL(session), session)
	if err != nil {
		return nil, err
	}
	defer ws.CloseNow()
	wconns, err := dialMany(ctx, watchers, slices.Repeat([]string{session}, len(watchers)), len(watchers))
	if err != nil {
		return nil, err
	}
	defer closeAll(wconns)

	// Each watcher reads until it has seen every turn's message_done, or
	// until fanoutGrace after the sender's last one.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make([][]seenTurn, len(wconns))
	errs := make([]error, len(wconns))
	var wg sync.WaitGroup
	for i, wc := range wconns {
		wg.Go(func() { seen[i], errs[i] = readTurns(rctx, wc, turns) })
	}

	var mine []seenTurn
	res := &fanoutResult{}
	for k := range turns {
		msg := fmt.Sprintf("fan-out turn %d of the bench", k)
		tctx, tcancel := context.WithTimeout(rctx, turnTimeout)
		sent, err := sendMessage(tctx, ws, msg)
		var got []seenTurn
		if err == nil {
			got, err = readTurns(tctx, ws, 1)
		}
		tcancel()
		if err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("sender, turn %d: %w", k, err)
		}
		if k >= fanoutWarm {
			res.turn = append(res.turn, got[0].marks[len(got[0].marks)-1].at.Sub(sent))
		}
		mine = append(mine, got[0])
	}
	late := time.AfterFunc(fanoutGrace, cancel)
	wg.Wait()
	late.Stop()
	for i, w := range seen {
		if errs[i] != nil {
			return nil, fmt.Errorf("watcher %d (on %s): %w", i+1, watchers[i].base, errs[i])
		}
		var lag []time.Duration
		for k := fanoutWarm; k < turns; k++ {
			if w[k].text != mine[k].text || w[k].done != mine[k].done {
				return nil, fmt.Errorf("watcher %d (on %s), turn %d: chunks %q and message_done %q, the sender's %q and %q", i+1, watchers[i].base, k, w[k].text, w[k].done, mine[k].text, mine[k].done)
			}
			for _, m := range mine[k].marks {
				// The watcher's first mark as far into the reply (one
				// exists: its texts are the same, and done is last).
				j := slices.IndexFunc(w[k].marks, func(o mark) bool { return o.end >= m.end })
				lag = append(lag, w[k].marks[j].at.Sub(m.at))
			}
		}
		res.lag = append(res.lag, sortedDurations(lag))
	}
	res.turn = sortedDurations(res.turn)
	if len(res.turn) == 0 {
		return nil, errors.New("no turn measured: raise -fanout-turns")
	}
	return res, nil
}

// readTurns reads the replies of the next turns turns, up to each one's
// message_done; an error event ends it.
func readTurns(ctx context.Context, ws *websocket.Conn, turns int) ([]seenTurn, error) {
	var got []seenTurn
	var cur seenTurn
	for len(got) < turns {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return got, fmt.Errorf("after %d message_done: %w", len(got), err)
		}
		at := time.Now()
		if !isType(data, prefixChunk) && !isType(data, prefixDone) && !isType(data, prefixError) {
			continue // user_message, status
		}
		var ev turnEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return got, fmt.Errorf("bad event %.200s: %w", data, err)
		}
		switch ev.Type {
		case "chunk":
			cur.text += ev.Content
			cur.marks = append(cur.marks, mark{len(cur.text), at})
		case "message_done":
			cur.done = ev.Content
			cur.marks = append(cur.marks, mark{math.MaxInt, at})
			got, cur = append(got, cur), seenTurn{}
		default:
			return got, fmt.Errorf("error event: %s", data)
		}
	}
	return got, nil
}
