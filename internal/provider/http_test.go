package provider

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestHTTPClientReusesConnections: two waves of 16 concurrent requests
// (16 sessions calling the model at once) need 16 connections, not 30: the
// second wave finds the first wave's connections idle in the pool.
func TestHTTPClientReusesConnections(t *testing.T) {
	var opened atomic.Int64
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release // hold every request of a wave open together
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := HTTPClient()
	const n = 16
	for wave := range 2 {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		// Only once all n are in flight at once may any finish: an early
		// finisher's connection would serve a later request of the wave.
		for range n {
			<-arrived
		}
		for range n {
			release <- struct{}{}
		}
		wg.Wait()
		if got := opened.Load(); got != n {
			t.Fatalf("after wave %d: %d connections opened, want %d", wave+1, got, n)
		}
	}
}
