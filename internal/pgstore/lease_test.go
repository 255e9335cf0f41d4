package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// lostBound is how long a lost connection may take to be seen, on either
// side: the 15 s docs/postgres-turns.md promises.
const lostBound = 15 * time.Second

// gateways opens n stores on one new database, as n gateways would, and an
// admin connection to it; session id exists. Each store's OnInterrupted
// markers are sent on the store's channel of marks.
func gateways(t *testing.T, n int, id string) ([]*Store, []chan core.Message, *pgx.Conn) {
	t.Helper()
	url := testutil.NeedPostgres(t)
	ctx := context.Background()
	stores := make([]*Store, n)
	marks := make([]chan core.Message, n)
	for i := range stores {
		ch := make(chan core.Message, 10)
		s, err := Open(ctx, url, Options{Gateway: fmt.Sprintf("gw%d", i), OnInterrupted: func(sid string, m core.Message) {
			if sid != id {
				t.Errorf("OnInterrupted(%q), want session %q", sid, id)
			}
			ch <- m
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		stores[i], marks[i] = s, ch
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	if _, _, err := stores[0].Create(id, session.DefaultChannel); err != nil {
		t.Fatal(err)
	}
	return stores, marks, admin
}

// waitFor polls cond (a query of the server's state: there is no event to
// wait for) until it holds, failing the test after bound.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waiters is how many connections wait for an advisory lock on admin's
// database.
func waiters(t *testing.T, admin *pgx.Conn) int {
	t.Helper()
	var n int
	err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testLease is a lease a test took: its Unlock runs once, by the test or
// when it ends (before the stores close: a pool's Close waits for its
// connections), so a failed test does not hang.
type testLease struct {
	session.Lease
	once sync.Once
}

func (l *testLease) Unlock() { l.once.Do(l.Lease.Unlock) }

// held is the store's lease behind l.
func (l *testLease) held() *lease { return l.Lease.(*lease) }

// lock takes id's turn on s, failing the test on an error.
func lock(t *testing.T, s *Store, id string) *testLease {
	t.Helper()
	l, err := s.LockTurn(context.Background(), id, lostBound, nil)
	if err != nil {
		t.Fatalf("LockTurn: %v", err)
	}
	tl := &testLease{Lease: l}
	t.Cleanup(tl.Unlock)
	return tl
}

// TestLockTurnOneHolderAcrossGateways: turns of one session taken by many
// goroutines of three stores never overlap.
func TestLockTurnOneHolderAcrossGateways(t *testing.T) {
	stores, _, _ := gateways(t, 3, "s1")
	var holders, turns atomic.Int32
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					l, err := s.LockTurn(context.Background(), "s1", 30*time.Second, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if n := holders.Add(1); n != 1 {
						t.Errorf("%d holders of the turn at once", n)
					}
					// A write of the turn, through the lease's connection.
					if _, err := s.Append("s1", core.Message{Role: core.RoleUser, Content: "hi", Timestamp: 1}); err != nil {
						t.Error(err)
					}
					holders.Add(-1)
					turns.Add(1)
					l.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if turns.Load() != 60 {
		t.Fatalf("%d turns ran, want 60", turns.Load())
	}
}

// TestLockTurnWaitersInOrder: three turns that wait for a fourth, from
// three gateways, run in the order they came.
func TestLockTurnWaitersInOrder(t *testing.T) {
	stores, _, admin := gateways(t, 3, "s1")
	first := lock(t, stores[0], "s1")
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, s := range []*Store{stores[1], stores[2], stores[0]} {
		name := fmt.Sprintf("waiter %d (gateway %s)", i, s.gateway)
		waited := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.LockTurn(context.Background(), "s1", 30*time.Second, func() { close(waited) })
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			l.Unlock()
		}()
		<-waited
		waitFor(t, 10*time.Second, name+" does not wait in the server's queue", func() bool { return waiters(t, admin) == i+1 })
	}
	first.Unlock()
	wg.Wait()
	want := []string{"waiter 0 (gateway gw1)", "waiter 1 (gateway gw2)", "waiter 2 (gateway gw0)"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("turns ran in the order %q, want %q", order, want)
	}
}

// TestLockTurnCancelAndTimeout: a wait that times out or is cancelled ends
// with its error and leaves nothing behind on the server: no waiter in the
// lock's queue, so the next turn gets the lock as soon as it is free.
func TestLockTurnCancelAndTimeout(t *testing.T) {
	stores, _, admin := gateways(t, 2, "s1")
	held := lock(t, stores[0], "s1")

	_, err := stores[1].LockTurn(context.Background(), "s1", 300*time.Millisecond, nil)
	if !errors.Is(err, session.ErrTurnLockTimeout) || !strings.Contains(err.Error(), "gave up after waiting 300ms") {
		t.Fatalf("LockTurn past its timeout: %v", err)
	}

	stop := errors.New("the client left")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() {
		_, err := stores[1].LockTurn(ctx, "s1", 0, nil)
		done <- err
	}()
	waitFor(t, 10*time.Second, "the second turn does not wait", func() bool { return waiters(t, admin) > 0 })
	cancel(stop)
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("cancelled LockTurn: %v, want %v", err, stop)
	}
	waitFor(t, lostBound, "a cancelled wait is still queued for the lock on the server", func() bool { return waiters(t, admin) == 0 })

	held.Unlock()
	ctx, cancelWait := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelWait()
	l, err := stores[1].LockTurn(ctx, "s1", 0, func() { t.Error("the free turn was waited for") })
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
}

// markers are the interrupted markers in session id's transcript.
func markers(t *testing.T, s *Store, id string) []core.Message {
	t.Helper()
	msgs, _, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []core.Message
	for _, m := range msgs {
		if m.Status == core.StatusInterrupted {
			out = append(out, m)
		}
	}
	return out
}

// TestLostLeaseFencesTheHolder: when the connection holding a turn ends
// (its backend killed, as a lost network ends it), the holder sees Lost
// close and can no longer write the session, and another gateway takes
// the turn and marks the lost one interrupted.
func TestLostLeaseFencesTheHolder(t *testing.T) {
	stores, marks, admin := gateways(t, 2, "s1")
	ctx := context.Background()
	l := lock(t, stores[0], "s1")
	if _, err := stores[0].Append("s1", core.Message{Role: core.RoleUser, Content: "question", Timestamp: 1}); err != nil {
		t.Fatal(err)
	}
	pid := l.held().conn.Conn().PgConn().PID()
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(lostBound):
		t.Fatalf("Lost not closed %s after the lease's connection ended", lostBound)
	}
	next := lock(t, stores[1], "s1")
	if _, err := stores[0].Append("s1", core.Message{Role: core.RoleAssistant, Content: "late reply", Timestamp: 2}); err == nil {
		t.Fatal("the gateway that lost the turn could still append to the session")
	}
	select {
	case m := <-marks[1]:
		if m.Status != core.StatusInterrupted || !strings.Contains(m.Error, "gw0") {
			t.Fatalf("marker %+v", m)
		}
	case <-time.After(lostBound):
		t.Fatal("no interrupted marker for the lost turn")
	}
	l.Unlock()
	next.Unlock()
	if got := markers(t, stores[1], "s1"); len(got) != 1 {
		t.Fatalf("%d interrupted markers, want 1: %+v", len(got), got)
	}
	// The first gateway runs turns again.
	lock(t, stores[0], "s1").Unlock()
}

// die ends the lease's connection as a gateway's death would: without
// Unlock, so its turns row stays.
func die(l *testLease) {
	ls := l.held()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.conn.Conn().Close(context.Background())
}

// TestDeadGatewaysTurnMarkedOnce: a turn left by a gateway that died is
// marked interrupted exactly once, with the reply text it had saved, by
// the next turn or by the sweepers, whichever comes first. The text is
// saved on the turns row by the lease's health check.
func TestDeadGatewaysTurnMarkedOnce(t *testing.T) {
	for _, next := range []string{"LockTurn", "sweep"} {
		t.Run(next, func(t *testing.T) {
			stores, marks, admin := gateways(t, 3, "s1")
			ctx := context.Background()
			l := lock(t, stores[0], "s1")
			if _, err := stores[0].Append("s1", core.Message{Role: core.RoleUser, Content: "question", Timestamp: time.Now().UnixMilli()}); err != nil {
				t.Fatal(err)
			}
			l.held().SaveText("half ")
			l.held().SaveText("a rep")
			waitFor(t, 10*time.Second, "the reply text so far is not saved", func() bool {
				var partial string
				err := admin.QueryRow(ctx, "SELECT partial FROM turns").Scan(&partial)
				return err == nil && partial == "half a rep"
			})
			die(l)
			var wg sync.WaitGroup
			for _, s := range stores[1:] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if next == "sweep" {
						if err := s.sweep(ctx); err != nil {
							t.Error(err)
						}
						return
					}
					lock(t, s, "s1").Unlock()
				}()
			}
			wg.Wait()
			got := markers(t, stores[1], "s1")
			if len(got) != 1 || got[0].Content != "half a rep" || got[0].Role != core.RoleAssistant {
				b, _ := json.Marshal(got)
				t.Fatalf("markers %s, want one with the saved text", b)
			}
			if n := len(marks[1]) + len(marks[2]); n != 1 {
				t.Fatalf("OnInterrupted called %d times, want 1", n)
			}
			var rows int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM turns").Scan(&rows); err != nil || rows != 0 {
				t.Fatalf("%d turns rows left (%v)", rows, err)
			}
		})
	}
}

// TestLeftoverRowOfAnAnsweredTurnIsNoMarker: a turns row is also left by a
// turn whose database went away after its reply was stored (the row could
// not be deleted) or before its user message was: the next turn deletes it
// and appends no interrupted reply after an exchange that is whole.
func TestLeftoverRowOfAnAnsweredTurnIsNoMarker(t *testing.T) {
	for _, stored := range [][]string{{core.RoleUser, core.RoleAssistant}, {}} {
		t.Run(fmt.Sprintf("%d messages", len(stored)), func(t *testing.T) {
			stores, marks, admin := gateways(t, 2, "s1")
			l := lock(t, stores[0], "s1")
			for _, role := range stored {
				if _, err := stores[0].Append("s1", core.Message{Role: role, Content: role + " text", Timestamp: time.Now().UnixMilli()}); err != nil {
					t.Fatal(err)
				}
			}
			die(l)
			lock(t, stores[1], "s1").Unlock()
			msgs, _, err := stores[1].Load("s1")
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(stored) || len(marks[1]) != 0 {
				b, _ := json.Marshal(msgs)
				t.Fatalf("transcript %s, %d OnInterrupted calls; want the %d messages stored and no marker", b, len(marks[1]), len(stored))
			}
			var rows int
			if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM turns").Scan(&rows); err != nil || rows != 0 {
				t.Fatalf("%d turns rows left (%v)", rows, err)
			}
		})
	}
}

// TestDeadWaiterLeavesTheQueue: a gateway that dies while its turn waits
// (its socket closes with no word to the server, as on SIGKILL) leaves the
// lock's queue within the bound, instead of being granted the lock later
// and holding up the turns behind it. The dead waiter is psql, killed,
// with the lease connections' settings.
func TestDeadWaiterLeavesTheQueue(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("no psql:", err)
	}
	stores, _, admin := gateways(t, 2, "s1")
	lock(t, stores[0], "s1")
	var opts []string
	for k, v := range leaseParams() {
		if !strings.Contains(v, " ") {
			opts = append(opts, "-c "+k+"="+v)
		}
	}
	cmd := exec.Command(psql, "-X", "-c", fmt.Sprintf("SELECT pg_advisory_lock(%d)", turnKey("s1")), stores[1].leasePool.Config().ConnString())
	cmd.Env = append(os.Environ(), "PGOPTIONS="+strings.Join(opts, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the dead gateway's turn does not wait", func() bool { return waiters(t, admin) == 1 })
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, lostBound, "a dead gateway's wait is still queued for the lock", func() bool { return waiters(t, admin) == 0 })
}
