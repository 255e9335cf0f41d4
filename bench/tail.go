package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

const tailTarget = 5 * time.Millisecond

// measureTail writes one session of -tail-messages messages (valid JSONL and
// a meta whose size matches), then times GET /api/sessions/ID?limit=50, which
// reads the last 50 lines from the end of the file: -tail-requests requests
// on an idle gateway, then as many while -tail-load closed-loop sessions run.
func measureTail(ctx context.Context, b *bench) error {
	o, err := b.dataDirs("tail")
	if err != nil {
		return err
	}
	o.fsync = b.cfg.tailFsync
	const id = "tail-big"
	t0 := time.Now()
	if err := writeSession(o.sessionsDir(), id, b.cfg.tailMessages, time.Now().Add(-48*time.Hour)); err != nil {
		return err
	}
	logf("  wrote %d messages in %s", b.cfg.tailMessages, time.Since(t0).Round(time.Millisecond))
	c, err := b.launch(o)
	if err != nil {
		return err
	}
	defer c.kill()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}}
	url := c.base + "/api/sessions/" + id + "?limit=50"
	want := fixtureMessage(b.cfg.tailMessages-1, time.Time{}).Content
	get := func() (time.Duration, error) {
		t := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: %s", resp.Status, body)
		}
		var page struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
			Total int `json:"total"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return 0, err
		}
		if len(page.Messages) != 50 || page.Total != b.cfg.tailMessages || page.Messages[49].Content != want {
			return 0, fmt.Errorf("wrong page: %d messages, total %d (want 50 of %d)", len(page.Messages), page.Total, b.cfg.tailMessages)
		}
		return d, nil
	}
	series := func() ([]time.Duration, error) {
		for range 5 { // warm the connection and the page cache
			if _, err := get(); err != nil {
				return nil, err
			}
		}
		var ds []time.Duration
		for range b.cfg.tailRequests {
			d, err := get()
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		return sortedDurations(ds), nil
	}

	idle, err := series()
	if err != nil {
		return fmt.Errorf("idle tail read: %w", err)
	}
	b.add(fmt.Sprintf("tail read ?limit=50 of %d messages, idle", b.cfg.tailMessages),
		fmt.Sprintf("p50 %s, p99 %s", ms(pct(idle, 50)), ms(pct(idle, 99))), "< 5 ms", verdict(pct(idle, 99) < tailTarget))

	// underLoad runs the tail reads while sp's sessions load the gateway.
	underLoad := func(sp loadSpec) ([]time.Duration, *loadResult, error) {
		stop := make(chan struct{})
		measuring := make(chan struct{})
		sp.warmup, sp.duration, sp.turnTimeout, sp.stop, sp.measuring = time.Second, 10*time.Minute, b.cfg.turnTimeout, stop, measuring
		type out struct {
			r   *loadResult
			err error
		}
		res := make(chan out, 1)
		go func() {
			r, err := runLoad(ctx, []*child{c}, sp)
			res <- out{r, err}
		}()
		select {
		case <-measuring:
		case o := <-res:
			return nil, nil, fmt.Errorf("background load: %v", o.err)
		case <-time.After(2 * time.Minute):
			close(stop)
			return nil, nil, fmt.Errorf("background load did not start within 2 minutes")
		}
		loaded, lerr := series()
		close(stop)
		o := <-res
		if lerr != nil {
			return nil, nil, fmt.Errorf("tail read under load: %w", lerr)
		}
		if o.err != nil {
			return nil, nil, fmt.Errorf("background load: %w", o.err)
		}
		return loaded, o.r, nil
	}

	if n := b.cfg.tailLoad; n > 0 {
		loaded, r, err := underLoad(loadSpec{sessions: n, prefix: "tl"})
		if err != nil {
			return err
		}
		b.add(fmt.Sprintf("tail read ?limit=50 of %d messages, %d sessions loading flat out", b.cfg.tailMessages, n),
			fmt.Sprintf("p50 %s, p99 %s (background %s turns/s, %d failures)", ms(pct(loaded, 50)), ms(pct(loaded, 99)), thousands(r.turnsPerSec()), r.failures),
			"< 5 ms", verdict(pct(loaded, 99) < tailTarget))

		// The same sessions offered half the throughput they reached: a busy
		// gateway that is not overloaded, as in the paced load runs.
		think := time.Duration(float64(n) / (0.5 * r.turnsPerSec()) * float64(time.Second))
		think = min(max(think, 20*time.Millisecond), 60*time.Second)
		loaded, pr, err := underLoad(loadSpec{sessions: n, prefix: "tp", think: think})
		if err != nil {
			return err
		}
		b.add(fmt.Sprintf("tail read ?limit=50 of %d messages, %d sessions loading at 50%%", b.cfg.tailMessages, n),
			fmt.Sprintf("p50 %s, p99 %s (background %s turns/s, think %s, %d failures)", ms(pct(loaded, 50)), ms(pct(loaded, 99)), thousands(pr.turnsPerSec()), ms(think), pr.failures),
			"< 5 ms", verdict(pct(loaded, 99) < tailTarget))
	}
	b.noteWarnings(c, "tail read")
	b.note("tail read: one session of %d messages (%s of JSONL, meta size matching) written before start; %d sequential GET /api/sessions/%s?limit=50 on one keep-alive connection after 5 warm-up requests, timed to the last body byte, each checked to hold the last 50 messages and total=%d. The first loaded figure runs while %d closed-loop WebSocket sessions (FSYNC=%s) saturate the gateway, so it includes waiting for the CPU; the second while the same sessions, with a think time, offer half the throughput the first run reached.", b.cfg.tailMessages, fileSizeMB(o.sessionsDir()+"/"+id+".jsonl"), b.cfg.tailRequests, id, b.cfg.tailMessages, b.cfg.tailLoad, b.cfg.tailFsync)
	return nil
}
