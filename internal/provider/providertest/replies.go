package providertest

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Fixture reads testdata/<name> of the package under test (tests run in
// their package's folder), and stops the test if it cannot.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SSEEvents splits a raw SSE body into its events, each with the blank line
// that ends it, so the fake server can send them one at a time.
func SSEEvents(body []byte) [][]byte {
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

// setHeaders sets headers given as name, value pairs.
func setHeaders(w http.ResponseWriter, headers []string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
}

// writeEvents starts an event stream, with the extra headers given as name,
// value pairs (a provider's request id header, say), and writes the events,
// flushing after each one as the APIs do, until one cannot be written.
func writeEvents(w http.ResponseWriter, headers []string, events [][]byte) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	setHeaders(w, headers)
	w.WriteHeader(http.StatusOK)
	for _, ev := range events {
		if _, err := w.Write(ev); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// SSE streams the fixture name event by event, flushing after each one as
// the APIs do, with extra response headers given as name, value pairs (a
// provider's request id header, say).
func SSE(t testing.TB, name string, headers ...string) Reply {
	events := SSEEvents(Fixture(t, name))
	return func(w http.ResponseWriter, r *http.Request) {
		writeEvents(w, headers, events)
	}
}

// SSEThenHang streams the first n events of the fixture name, as SSE does,
// and then blocks until the client goes away (or the test ends).
func SSEThenHang(t testing.TB, name string, n int, headers ...string) Reply {
	events := SSEEvents(Fixture(t, name))
	return func(w http.ResponseWriter, r *http.Request) {
		writeEvents(w, headers, events[:n])
		<-r.Context().Done()
	}
}

// SSEThenDrop streams the first n events of the fixture name, as SSE does,
// and then closes the TCP connection without ending the chunked body: a
// connection cut.
func SSEThenDrop(t testing.TB, name string, n int, headers ...string) Reply {
	events := SSEEvents(Fixture(t, name))
	return func(w http.ResponseWriter, r *http.Request) {
		writeEvents(w, headers, events[:n])
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		buf.Flush()
		conn.Close()
	}
}

// APIError answers with the HTTP error status and the JSON error body of the
// fixture name, with extra headers given as name, value pairs.
func APIError(t testing.TB, status int, name string, headers ...string) Reply {
	body := Fixture(t, name)
	return func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w, headers)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body)
	}
}
