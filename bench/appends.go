package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// maxLatencySamples bounds the per-worker latency samples of appends.
const maxLatencySamples = 200_000

// measureAppends drives internal/session in process: -append-workers
// goroutines append one message at a time, each to its own session and then
// all to one shared session, with Fsync off and on. The store is reopened
// afterwards and its message counts checked against what was appended.
func measureAppends(ctx context.Context, b *bench) error {
	for _, mode := range b.cfg.fsyncModes {
		fsync := mode == "always"
		for _, workers := range b.cfg.appendWorkers {
			for _, shared := range []bool{false, true} {
				if shared && workers == 1 {
					continue // the same as one goroutine on its own session
				}
				what := fmt.Sprintf("%d goroutines → %d sessions", workers, workers)
				if workers == 1 {
					what = "1 goroutine → 1 session"
				} else if shared {
					what = fmt.Sprintf("%d goroutines → 1 session", workers)
				}
				dir := filepath.Join(b.tmp, fmt.Sprintf("appends-%s-%d-%v", mode, workers, shared))
				n, took, lat, err := appendRun(dir, fsync, shared, workers, b.cfg.appendDuration, b.cfg.appendMax)
				if err != nil {
					return fmt.Errorf("appends %s fsync=%s: %w", what, mode, err)
				}
				rate := float64(n) / took.Seconds()
				b.add(fmt.Sprintf("appends/s in process, %s, Fsync=%v", what, fsync),
					fmt.Sprintf("**%s appends/s** (%d in %s; per append p50 %s, p99 %s)", thousands(rate), n, took.Round(time.Millisecond), ms(pct(lat, 50)), ms(pct(lat, 99))),
					"—", "info")
				os.RemoveAll(dir)
			}
		}
	}
	if err := fsProbe(b); err != nil {
		return fmt.Errorf("file system probe: %w", err)
	}
	b.note("appends/s: session.Store.Append of one user message (a ~95-byte JSONL line) per call, in the bench process (no gateway); each call opens the JSONL, takes its flock, checks the tail, writes the line and fsyncs when Fsync is on; the meta file is rewritten (temp file + rename) at most once a second by the store's flusher, not per append. Counts verified by opening a second store on the directory.")
	return nil
}

func appendRun(dir string, fsync, shared bool, workers int, dur time.Duration, maxN int) (int, time.Duration, []time.Duration, error) {
	st, err := session.Open(dir, session.Options{Fsync: fsync})
	if err != nil {
		return 0, 0, nil, err
	}
	defer st.Close()
	ids := make([]string, workers)
	for i := range ids {
		ids[i] = fmt.Sprintf("a-%d", i)
		if shared {
			ids[i] = "shared"
		}
		if _, _, err := st.Create(ids[i], "bench"); err != nil {
			return 0, 0, nil, err
		}
	}
	var (
		total    atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		lat      []time.Duration
	)
	perWorker := make([]int, workers)
	start := time.Now()
	deadline := start.Add(dur)
	for w := range workers {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) && total.Add(1) <= int64(maxN) {
				msg := core.Message{Role: core.RoleUser, Content: fmt.Sprintf("append bench message %d from worker %d", perWorker[w], w), Timestamp: time.Now().UnixMilli()}
				t := time.Now()
				if _, err := st.Append(ids[w], msg); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if len(mine) < maxLatencySamples {
					mine = append(mine, time.Since(t))
				}
				perWorker[w]++
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		return 0, 0, nil, firstErr
	}
	n := 0
	want := map[string]int{}
	for w, c := range perWorker {
		n += c
		want[ids[w]] += c
	}
	// Reopen beside the first store, as the CLI would beside a gateway:
	// the counts must match even though meta files are written lazily.
	st2, err := session.Open(dir, session.Options{})
	if err != nil {
		return 0, 0, nil, err
	}
	defer st2.Close()
	for id, c := range want {
		m, err := st2.Get(id)
		if err != nil {
			return 0, 0, nil, err
		}
		if m.MessageCount != c {
			return 0, 0, nil, fmt.Errorf("session %s: meta counts %d messages after reopening, %d were appended", id, m.MessageCount, c)
		}
	}
	return n, took, sortedDurations(lat), nil
}

func fileSizeMB(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return mib(fi.Size() / 1024)
}

// fsProbe times, on the scratch file system and single-threaded, the file
// operations an append is made of, so the appends/s figures can be read
// against what the disk and kernel cost.
func fsProbe(b *bench) error {
	dir := filepath.Join(b.tmp, "fsprobe")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const n = 1000
	line := []byte(`{"role":"user","content":"append bench message 1 from worker 1","timestamp":1700000000000}` + "\n")
	meta := filepath.Join(dir, "x.meta.json")
	if err := os.WriteFile(meta, []byte("{}\n"), 0o600); err != nil {
		return err
	}
	timeit := func(count int, f func() error) (time.Duration, error) {
		t := time.Now()
		for range count {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return time.Since(t) / time.Duration(count), nil
	}
	jf, err := os.OpenFile(filepath.Join(dir, "x.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer jf.Close()
	write, err := timeit(n, func() error { _, err := jf.Write(line); return err })
	if err != nil {
		return err
	}
	sync, err := timeit(n/5, func() error {
		if _, err := jf.Write(line); err != nil {
			return err
		}
		return jf.Sync()
	})
	if err != nil {
		return err
	}
	openClose, err := timeit(n, func() error {
		f, err := os.OpenFile(filepath.Join(dir, "x.jsonl"), os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		return err
	}
	replace, err := timeit(n, func() error {
		f, err := os.CreateTemp(dir, ".x.meta.json.tmp*")
		if err != nil {
			return err
		}
		if _, err := f.Write(line); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), meta)
	})
	if err != nil {
		return err
	}
	b.add("file system costs (single thread, scratch dir)",
		fmt.Sprintf("O_APPEND write %s; write+fsync %s; open+close %s; temp file+write+close+rename (one meta rewrite) %s", ms(write), ms(sync), ms(openClose), ms(replace)),
		"—", "info")
	return nil
}
