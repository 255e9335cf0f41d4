package anthropic

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// TestMain keeps the SDK's environment defaults (credentials, base URL,
// custom headers, profiles) from leaking into the tests: every test passes
// what it needs through Options.
func TestMain(m *testing.M) {
	for _, k := range []string{
		"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
		"ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_PROFILE",
	} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// recorded is one request the fake API received.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time // when it arrived
}

// reply answers one request. The fake server plays replies in order, the
// last one for every request after that.
type reply func(w http.ResponseWriter, r *http.Request)

type fakeAPI struct {
	t       *testing.T
	srv     *httptest.Server
	replies []reply
	stop    chan struct{} // closed at cleanup, releases blocked handlers

	mu   sync.Mutex
	reqs []recorded
}

func newFakeAPI(t *testing.T, replies ...reply) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, replies: replies, stop: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake API: reading request body: %v", err)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
	f.mu.Unlock()
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

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeAPI) provider(maxRetries int) *Provider {
	return New(Options{APIKey: "test-key", BaseURL: f.srv.URL, MaxRetries: maxRetries})
}

// retryGap is the time between the first two requests: a retry's wait.
func (f *fakeAPI) retryGap(t *testing.T) time.Duration {
	t.Helper()
	reqs := f.requests()
	if len(reqs) < 2 {
		t.Fatalf("%d requests, no retry", len(reqs))
	}
	return reqs[1].At.Sub(reqs[0].At)
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sseEvents splits a raw SSE body into its events, each with the blank line
// that ends it, so the fake server can send them one at a time.
func sseEvents(body []byte) [][]byte {
	var out [][]byte
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\n\n"))
		if i < 0 {
			out = append(out, body)
			break
		}
		out = append(out, body[:i+2])
		body = body[i+2:]
	}
	return out
}

func writeSSEHeader(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("request-id", "req_011CSHoEeqs5C35K2UUqR7Ft")
	w.WriteHeader(http.StatusOK)
}

// sse streams a fixture event by event, flushing after each one as the API
// does.
func sse(t testing.TB, name string) reply {
	events := sseEvents(fixture(t, name))
	return func(w http.ResponseWriter, r *http.Request) {
		writeSSEHeader(w)
		for _, ev := range events {
			if _, err := w.Write(ev); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// sseThenHang streams the first n events of a fixture and then blocks until
// the client goes away (or the test ends).
func sseThenHang(t testing.TB, name string, n int) reply {
	events := sseEvents(fixture(t, name))
	return func(w http.ResponseWriter, r *http.Request) {
		writeSSEHeader(w)
		for _, ev := range events[:n] {
			w.Write(ev)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}
}

// sseThenDrop streams the first n events of a fixture and then closes the
// TCP connection without ending the chunked body: a connection cut.
func sseThenDrop(t testing.TB, name string, n int) reply {
	events := sseEvents(fixture(t, name))
	return func(w http.ResponseWriter, r *http.Request) {
		writeSSEHeader(w)
		for _, ev := range events[:n] {
			w.Write(ev)
			w.(http.Flusher).Flush()
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		buf.Flush()
		conn.Close()
	}
}

// apiError answers with an HTTP error status and a JSON error body from a
// fixture, with extra headers given as name, value pairs.
func apiError(t testing.TB, status int, name string, headers ...string) reply {
	body := fixture(t, name)
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body)
	}
}

// collector records the text chunks a provider relays.
type collector struct {
	mu     sync.Mutex
	chunks []string
}

func (c *collector) onText(s string) {
	c.mu.Lock()
	c.chunks = append(c.chunks, s)
	c.mu.Unlock()
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.chunks...)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func simpleRequest() core.Request {
	return core.Request{
		Model:    "claude-sonnet-4-20250514",
		System:   "You are a test.",
		Messages: []core.Message{{Role: core.RoleUser, Content: "Hi"}},
	}
}
