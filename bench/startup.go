package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const startupTarget = 50 * time.Millisecond

// measureStartup times process start → first /readyz 200 (polled every
// millisecond once the port is known from the log), with an empty store and
// with -startup-sessions sessions on disk. The first start on the fixture
// has no index snapshot (the fixture is written without one) and reads
// every meta file; each gateway is then stopped with SIGTERM, as a service
// manager would, and the next runs are restarts, reported as the median of
// -startup-runs. The page cache is warm: this is a restart time, not a cold
// boot from disk.
func measureStartup(ctx context.Context, b *bench) error {
	counts := []int{0}
	if b.cfg.startupSessions > 0 {
		counts = append(counts, b.cfg.startupSessions)
	}
	for _, n := range counts {
		o, err := b.sessionsFixture(n)
		if err != nil {
			return err
		}
		var first time.Duration
		var ready, listen []time.Duration
		var lastChild *child
		for i := range b.cfg.startupRuns + 1 {
			c, err := startChild(b.bin, o)
			if err != nil {
				return err
			}
			d, err := c.waitReady(30 * time.Second)
			if err != nil {
				c.kill()
				return err
			}
			st, body, err := getBody(ctx, c.base+"/readyz")
			if err != nil || st != 200 || !strings.Contains(string(body), fmt.Sprintf(`"sessions":%d`, n)) {
				c.kill()
				return fmt.Errorf("readyz after start does not report %d sessions: %d %s %v", n, st, body, err)
			}
			if i == 0 {
				first = d
			} else {
				ready = append(ready, d)
				listen = append(listen, c.listen)
			}
			logf("  run %d: ready after %s (log line after %s)", i, ms(d), ms(c.listen))
			lastChild = c
			if !c.stop(30 * time.Second) {
				return fmt.Errorf("gateway did not stop cleanly on SIGTERM: %s", c.stderrTail())
			}
		}
		s := sortedDurations(ready)
		result := fmt.Sprintf("median %s (min %s, max %s; listening logged at %s); first start, no index snapshot: %s", ms(pct(s, 50)), ms(s[0]), ms(s[len(s)-1]), ms(median(listen)), ms(first))
		name := fmt.Sprintf("restart to /readyz, %d sessions", n)
		if n >= 10000 {
			b.add(name, result, "< 50 ms", verdict(pct(s, 50) < startupTarget))
		} else {
			b.add(name, result, "—", "info")
		}
		b.noteWarnings(lastChild, name)
	}
	b.note("startup: time from just before fork/exec of the binary to the first 200 from /readyz; the port is parsed from the `miniclaw gateway listening` log line, then /readyz is polled every 1 ms. The first start on a fixture has no index snapshot and reads every meta file; every gateway is stopped with SIGTERM (it then writes the snapshot), and the median is of the %d restarts after the first. Page cache warm (files just written), so it is the restart time rather than a cold-disk boot.", b.cfg.startupRuns)
	return nil
}

// measureIdleMemory reads the gateway's memory right after /readyz, with an
// empty store and with -startup-sessions sessions indexed.
func measureIdleMemory(ctx context.Context, b *bench) error {
	counts := []int{0}
	if b.cfg.startupSessions > 0 {
		counts = append(counts, b.cfg.startupSessions)
	}
	for _, n := range counts {
		o, err := b.sessionsFixture(n)
		if err != nil {
			return err
		}
		c, err := b.launch(o)
		if err != nil {
			return err
		}
		m, err := readProcMem(c.pid)
		time.Sleep(time.Second)
		m2, err2 := readProcMem(c.pid)
		c.kill()
		if err != nil {
			return err
		}
		if err2 != nil {
			return err2
		}
		anon := mib(m.Anonymous)
		if m.AnonymousErr != nil {
			anon = "n/a (the gateway is not dumpable: run the bench as root to read its smaps_rollup)"
		}
		result := fmt.Sprintf("VmRSS %s (RssAnon %s, RssFile %s, smaps Anonymous %s); 1 s later VmRSS %s",
			mib(m.VmRSS), mib(m.RssAnon), mib(m.RssFile), anon, mib(m2.VmRSS))
		b.add(fmt.Sprintf("idle memory after readyz, %d sessions", n), result, "RSS < 20 MB", verdict(m.VmRSS < 20*1024))
		b.noteWarnings(c, fmt.Sprintf("idle memory, %d sessions", n))
	}
	b.note("idle memory: /proc/PID/status VmRSS, RssAnon, RssFile and /proc/PID/smaps_rollup Anonymous of the gateway read right after its first 200 from /readyz (MB = MiB). RssFile is mostly the binary's own pages.")
	return nil
}

// sessionsFixture returns a data dir holding n sessions of 4 messages,
// written once and shared by the startup and idle measurements (their
// gateways run one at a time and leave the sessions as they are).
func (b *bench) sessionsFixture(n int) (childOpts, error) {
	b.mu.Lock()
	o, ok := b.fixtures[n]
	b.mu.Unlock()
	if ok {
		return o, nil
	}
	o, err := b.dataDirs(fmt.Sprintf("fixture-%d", n))
	if err != nil {
		return o, err
	}
	if n > 0 {
		t0 := time.Now()
		if err := writeSessions(o.sessionsDir(), "s", n, 4); err != nil {
			return o, fmt.Errorf("writing %d sessions: %w", n, err)
		}
		logf("  wrote %d sessions in %s", n, time.Since(t0).Round(time.Millisecond))
	}
	b.mu.Lock()
	if b.fixtures == nil {
		b.fixtures = map[int]childOpts{}
	}
	b.fixtures[n] = o
	b.mu.Unlock()
	return o, nil
}
