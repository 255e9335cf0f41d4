package providertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
)

// longReply is the number of chunks of the long replies the providers'
// benchmarks stream: 100,000, as a model's longest answers reach.
const longReply = 100_000

// linearChunks is the longer reply WantLinear streams: long enough for a
// quadratic cost to dominate even the Anthropic SDK's decoding of each
// event (7 kB a delta, by 13 times), short enough to take a second or two
// under -race.
const linearChunks = 40_000

// allocated returns how many bytes the heap allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// WantLinear checks that what a provider allocates grows linearly with the
// number of chunks of a reply, not with its square (a reply built with +=
// copies everything received so far on each chunk). complete must run one
// completion of a reply of the given number of chunks, and check it. A
// reply of 40,000 chunks must cost less than 8 times one of a quarter as
// many: about 4 when linear, about 16 when quadratic. Bytes, not time, are
// measured, so a busy machine does not change the verdict; the test must
// not be parallel, as other tests' allocations would count.
func WantLinear(t *testing.T, complete func(t testing.TB, chunks int)) {
	t.Helper()
	n := linearChunks
	small := allocated(func() { complete(t, n/4) })
	large := allocated(func() { complete(t, n) })
	if ratio := float64(large) / float64(small); ratio >= 8 {
		t.Errorf("a reply of %d chunks allocated %d bytes, %.1f times as much as one of %d chunks (%d bytes): the cost grows with the square of the reply",
			n, large, ratio, n/4, small)
	}
}

// BenchLongReply runs complete on a reply of 100,000 chunks in b's loop
// and reports the cost per chunk.
func BenchLongReply(b *testing.B, complete func(t testing.TB, chunks int)) {
	for b.Loop() {
		complete(b, longReply)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*longReply), "ns/chunk")
}

// CompleteLong sends req through p, whose reply is n chunks of "x ", and
// checks that n chunks and 2n bytes of text came back; it returns the
// response for the caller's own checks.
func CompleteLong(t testing.TB, p core.Provider, req core.Request, n int) core.Response {
	t.Helper()
	got := 0
	resp, err := p.Complete(context.Background(), req, func(string) { got++ })
	if err != nil || got != n || len(resp.Text) != 2*n {
		t.Fatalf("%d chunks relayed, %d bytes of text, err %v; want %d chunks", got, len(resp.Text), err, n)
	}
	return resp
}

// CompleteLongHTTP is CompleteLong for an HTTP provider: a local server
// answers with stream, the SSE form of the reply, and newProvider builds
// the provider for the server's URL. The server is closed on return, not
// at the test's end, so a benchmark's loop does not pile servers up.
func CompleteLongHTTP(t testing.TB, stream []byte, newProvider func(baseURL string) core.Provider, req core.Request, n int) core.Response {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(stream)
	}))
	defer srv.Close()
	return CompleteLong(t, newProvider(srv.URL), req, n)
}
