package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// BenchmarkOpen measures rebuilding the index of 10,000 sessions with valid
// metas (a gateway restart), per Open.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s := openStore(b, dir, Options{})
	ts := time.Now().UnixMilli()
	for i := range 10_000 {
		id := fmt.Sprintf("s%05d", i)
		mustCreate(b, s, id, DefaultChannel)
		mustAppend(b, s, id, testutil.UserMsg("hello", ts), testutil.AsstMsg("echo: hello", ts))
	}
	s.Close() // writes the index snapshot, as a gateway's shutdown does
	for b.Loop() {
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
}

// BenchmarkAppend measures one append of a short message to one session.
func BenchmarkAppend(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			s := openStore(b, b.TempDir(), Options{Fsync: fsync})
			mustCreate(b, s, "a", DefaultChannel)
			ts := time.Now().UnixMilli()
			for b.Loop() {
				if _, err := s.Append("a", testutil.UserMsg("bench says hello", ts)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkList10k measures List of 10,000 sessions of two messages each
// (from the index in memory). pgstore has the same benchmark.
func BenchmarkList10k(b *testing.B) {
	s, _ := newStore(b)
	for i := range 10_000 {
		id := fmt.Sprintf("s%05d", i)
		mustCreate(b, s, id, DefaultChannel)
		mustAppend(b, s, id, testutil.UserMsg("hello", int64(i)), testutil.AsstMsg("echo: hello", int64(i)))
	}
	for b.Loop() {
		if l := mustList(b, s); len(l) != 10_000 {
			b.Fatalf("List: %d sessions", len(l))
		}
	}
}
