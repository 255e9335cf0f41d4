// Package providertest holds what the tests of the HTTP providers
// (internal/provider/anthropic, internal/provider/openai) share: a fake API
// server that plays scripted replies and records the requests, replies built
// from the calling package's testdata fixtures (SSE streams, JSON errors),
// checks of what a completion gave, and the check that a long reply costs
// in proportion to its length (which the scripted provider's tests use too).
//
// It is a normal package so that both providers' tests can import it, but
// only tests import it: nothing in miniclaw itself does.
package providertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Recorded is one request the fake API received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time // when it arrived
}

// Reply answers one request to the fake API.
type Reply func(w http.ResponseWriter, r *http.Request)

// FakeAPI is an HTTP server that plays its replies in order, the last one
// for every request after that, and records every request it receives.
type FakeAPI struct {
	t       *testing.T
	srv     *httptest.Server
	replies []Reply
	stop    chan struct{} // closed at cleanup, releases blocked handlers

	mu   sync.Mutex
	reqs []Recorded
}

// NewFakeAPI starts a fake API that answers with replies (at least one), and
// stops it when the test ends.
func NewFakeAPI(t *testing.T, replies ...Reply) *FakeAPI {
	t.Helper()
	if len(replies) == 0 {
		t.Fatal("providertest: a fake API needs at least one reply")
	}
	f := &FakeAPI{t: t, replies: replies, stop: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

func (f *FakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake API: reading request body: %v", err)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body)) // for replies that read it

	// A handler that waits for the client also gives up when the test ends,
	// so a failing test cannot hang the server's Close.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	f.replies[min(n, len(f.replies)-1)](w, r.WithContext(ctx))
}

// URL is the server's root, "http://127.0.0.1:port" with no trailing slash.
func (f *FakeAPI) URL() string { return f.srv.URL }

// Requests returns the requests received so far, in order.
func (f *FakeAPI) Requests() []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Recorded(nil), f.reqs...)
}

// WantRequests checks that the API received exactly n requests.
func (f *FakeAPI) WantRequests(t testing.TB, n int) {
	t.Helper()
	if got := len(f.Requests()); got != n {
		t.Errorf("%d requests, want %d", got, n)
	}
}

// Only returns the one request the API received, and stops the test if it
// received another number.
func (f *FakeAPI) Only(t testing.TB) Recorded {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// RetryGap is the time between the first two requests: a retry's wait. It
// stops the test if there was no second request.
func (f *FakeAPI) RetryGap(t testing.TB) time.Duration {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) < 2 {
		t.Fatalf("%d requests, no retry", len(reqs))
	}
	return reqs[1].At.Sub(reqs[0].At)
}

// WantRetriedAtOnce checks that the API received exactly two requests, the
// second within 350 ms of the first: sooner than any backoff of the
// providers (at least 375 ms), so a zero Retry-After was honoured.
func (f *FakeAPI) WantRetriedAtOnce(t testing.TB) {
	t.Helper()
	f.WantRequests(t, 2)
	if d := f.RetryGap(t); d > 350*time.Millisecond {
		t.Errorf("retried after %v: a Retry-After of 0 was not honoured", d)
	}
}
