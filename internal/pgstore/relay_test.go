package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

const relayWait = 10 * time.Second

// received is what a relay's Listen delivered.
type received struct {
	session, kind, data string
}

// listening runs Listen of r until the test ends, and returns what it
// delivers.
func listening(t *testing.T, r *Relay) <-chan received {
	t.Helper()
	out := make(chan received, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		r.Listen(ctx, func(session, kind string, data []byte) { out <- received{session, kind, string(data)} })
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-r.Ready():
	case <-time.After(relayWait):
		t.Fatalf("relay %s does not listen", r.Gateway())
	}
	return out
}

func newTestRelay(t *testing.T, url string, opt RelayOptions) *Relay {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), relayWait)
	defer cancel()
	r, err := NewRelay(ctx, url, opt)
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func nextDelivered(t *testing.T, ch <-chan received) received {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(relayWait):
		t.Fatalf("nothing delivered within %s", relayWait)
		return received{}
	}
}

// TestRelayQueueFullDropsThenResyncs: while the publishing connection is
// busy, notices past the queue's bound are dropped and counted, those kept
// arrive in order, then a resync of their session; chunks waiting together
// are merged, equal notices are not; the publisher's own listener delivers
// none of its notices.
func TestRelayQueueFullDropsThenResyncs(t *testing.T) {
	url := testutil.NeedPostgres(t)
	a := newTestRelay(t, url, RelayOptions{MaxQueue: 8})
	b := newTestRelay(t, url, RelayOptions{})
	fromA, fromB := listening(t, a), listening(t, b)

	// Hold the publisher's only connection: what is published waits.
	ctx := context.Background()
	held, err := a.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"a", "b", "c"} {
		a.Publish("s1", RelayChunk, []byte(text))
	}
	a.Publish("s2", RelayChunk, []byte("d"))
	a.Publish("s1", RelayChunk, []byte("e"))
	// The same notice twice in one batch (one transaction), which
	// PostgreSQL would deliver once if the payloads were equal.
	a.Publish("s2", RelayChunk, []byte("d"))
	const total = 30
	for i := range total {
		a.Publish("s1", RelayEvent, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	held.Release()
	// Every Publish has returned: the drops are counted. The publisher may
	// have taken a full queue while the notices above were being published
	// (it waits for the connection with it), so the kept ones can come in
	// two batches, each followed by the resync of what was lost before it.
	dropped := a.Dropped()

	chunks := map[string]string{}
	nchunks, last, events, resynced := 0, -1, 0, false
	for !resynced || int64(events)+dropped < total {
		m := nextDelivered(t, fromB)
		switch m.kind {
		case RelayResync:
			if m.session != "s1" {
				t.Fatalf("resync of %q, want s1", m.session)
			}
			resynced = true
		case RelayChunk:
			chunks[m.session] += m.data
			nchunks++
		case RelayEvent:
			var ev struct{ N int }
			if err := json.Unmarshal([]byte(m.data), &ev); err != nil || ev.N <= last {
				t.Fatalf("event %s after event %d: want them in order", m.data, last)
			}
			last = ev.N
			events++
		}
	}
	if chunks["s1"] != "abce" || chunks["s2"] != "dd" || nchunks >= 6 {
		t.Errorf("chunks: %d notices, s1 %q, s2 %q; want fewer than 6 (merged), abce and dd", nchunks, chunks["s1"], chunks["s2"])
	}
	if dropped == 0 || a.Dropped() != dropped || int64(events)+dropped != total {
		t.Errorf("%d events delivered, %d dropped (%d after), of %d: want some dropped and none missing besides", events, dropped, a.Dropped(), total)
	}

	// B's reply comes after every notice of A; A's listener, which got
	// them too, delivered none.
	b.Publish("s1", RelayEvent, []byte(`{"from":"b"}`))
	if m := nextDelivered(t, fromA); m.data != `{"from":"b"}` {
		t.Errorf("A's listener delivered %+v, want only B's notice", m)
	}
}

// TestRelaySpillsBigNotices: a notice over the NOTIFY limit arrives whole,
// through relay_spill; a spilled row a listener reads after it was
// deleted (over a minute behind) becomes a resync of its session.
func TestRelaySpillsBigNotices(t *testing.T) {
	url := testutil.NeedPostgres(t)
	a := newTestRelay(t, url, RelayOptions{})
	b := newTestRelay(t, url, RelayOptions{})
	fromB := listening(t, b)
	big := strings.Repeat("x", 20000)
	a.Publish("s", RelayChunk, []byte(big))
	if m := nextDelivered(t, fromB); m.kind != RelayChunk || m.data != big {
		t.Fatalf("delivered a %s of %d bytes, want the 20000-byte chunk", m.kind, len(m.data))
	}
	// A row deleted before the listener reads it: here, at once.
	if _, err := a.pool.Exec(context.Background(), `CREATE FUNCTION gone() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN DELETE FROM relay_spill WHERE id = NEW.id; RETURN NULL; END$$;
		CREATE TRIGGER gone AFTER INSERT ON relay_spill FOR EACH ROW EXECUTE FUNCTION gone()`); err != nil {
		t.Fatal(err)
	}
	a.Publish("s", RelayEvent, []byte(`{"big":"`+big+`"}`))
	if m := nextDelivered(t, fromB); m.kind != RelayResync || m.session != "s" {
		t.Fatalf("delivered %s of %q, want a resync of s", m.kind, m.session)
	}
}
