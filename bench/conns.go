package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

const perConnTargetKB = 30

// measureConnMemory opens idle WebSocket connections in steps (-conns, e.g.
// 1,000 then 10,000 in total), each waiting for `connected`, and reports the
// gateway's RSS growth per connection against the RSS right after readyz.
// Connections are spread round robin over -conn-sessions sessions written to
// disk beforehand, so the figure is the cost of connections, not of
// creating session files.
func measureConnMemory(ctx context.Context, b *bench) error {
	o, err := b.dataDirs("conns")
	if err != nil {
		return err
	}
	if err := writeSessions(o.sessionsDir(), "c", b.cfg.connSessions, 2); err != nil {
		return err
	}
	need := uint64(b.cfg.connCounts[len(b.cfg.connCounts)-1]) + 200
	if lim := nofileLimit(); lim < need {
		return fmt.Errorf("RLIMIT_NOFILE of the bench is %d, %d connections need about %d (raise the hard limit: ulimit -Hn)", lim, need-200, need)
	}
	c, err := b.launch(o)
	if err != nil {
		return err
	}
	defer c.kill()
	b.note("idle connections: the gateway ran with RLIMIT_NOFILE %s (inherited from the bench, which raised its soft limit to the hard limit)", childNofile(c.pid))

	time.Sleep(b.cfg.connSettle)
	base, err := readProcMem(c.pid)
	if err != nil {
		return err
	}
	logf("  baseline VmRSS %s RssAnon %s", mib(base.VmRSS), mib(base.RssAnon))

	var conns []*websocket.Conn
	defer func() { closeAll(conns) }()
	for _, target := range b.cfg.connCounts {
		ids := make([]string, target-len(conns))
		for i := range ids {
			ids[i] = fmt.Sprintf("c-%d", (len(conns)+i)%b.cfg.connSessions)
		}
		t0 := time.Now()
		more, err := dialMany(ctx, []*child{c}, ids, 64)
		if err != nil {
			return fmt.Errorf("opening connections %d..%d: %w", len(conns), target, err)
		}
		conns = append(conns, more...)
		took := time.Since(t0)
		for _, ws := range more {
			// Answer the server's pings and notice closes without a
			// goroutine of our own reading data.
			ws.CloseRead(context.Background())
		}
		time.Sleep(b.cfg.connSettle)
		m, err := readProcMem(c.pid)
		if err != nil {
			return err
		}
		st, body, err := getBody(ctx, c.base+"/readyz")
		var h struct {
			Connections int `json:"connections"`
		}
		if err != nil || st != 200 || json.Unmarshal(body, &h) != nil {
			return fmt.Errorf("readyz with %d connections: %d %s %v", target, st, body, err)
		}
		if h.Connections != target {
			return fmt.Errorf("readyz reports %d connections, %d are open", h.Connections, target)
		}
		perRSS := float64(m.VmRSS-base.VmRSS) / float64(target)
		perAnon := float64(m.RssAnon-base.RssAnon) / float64(target)
		logf("  %d connections (opened in %s): VmRSS %s, %.1f KB/conn", target, took.Round(time.Millisecond), mib(m.VmRSS), perRSS)
		b.add(fmt.Sprintf("memory per idle WebSocket, %d conns", target),
			fmt.Sprintf("%.1f KB/conn by VmRSS (%.1f KB by RssAnon; VmRSS %s → %s)", perRSS, perAnon, mib(base.VmRSS), mib(m.VmRSS)),
			fmt.Sprintf("< %d KB", perConnTargetKB), verdict(perRSS < perConnTargetKB))
	}
	b.noteWarnings(c, "idle connections")
	b.note("memory per idle connection: (gateway VmRSS after N connections − VmRSS right after readyz) / N, read %s after the last `connected` arrived; readyz's `connections` is checked to equal N. Connections are spread round robin over %d sessions written to disk before start (?sessionId=c-K), so no session files are created during the measurement. KB = KiB. The client side lives in the bench process and is not counted.", b.cfg.connSettle, b.cfg.connSessions)
	return nil
}
