package chatclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// Two clients on one session: each must take only its own turns' ends as
// the answers to its messages, whichever order the gateway runs them in.

// gateProvider is the echo provider whose model calls each wait for a
// release, so that a test holds a turn running while other clients act.
type gateProvider struct {
	core.Provider
	entered chan struct{} // one value per call, as it starts waiting
	release chan struct{} // one value lets one call go on
}

func newGateProvider() gateProvider {
	return gateProvider{Provider: scripted.Echo(), entered: make(chan struct{}, 16), release: make(chan struct{}, 16)}
}

func (p gateProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	p.entered <- struct{}{}
	select {
	case <-p.release:
	case <-ctx.Done():
		return core.Response{}, context.Cause(ctx)
	}
	return p.Provider.Complete(ctx, req, onText)
}

// wait waits for a model call to start.
func (p gateProvider) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.entered:
	case <-time.After(waitFor):
		t.Fatalf("no model call started within %s", waitFor)
	}
}

// open lets n model calls go on.
func (p gateProvider) open(n int) {
	for range n {
		p.release <- struct{}{}
	}
}

// pipeChat is a client in pipe mode whose stdout and stderr the test reads.
type pipeChat struct {
	in     *io.PipeWriter
	out    *testutil.Buffer
	errOut *testutil.Buffer
	done   chan error
}

func startPipe(t *testing.T, g *testGateway, session string) *pipeChat {
	t.Helper()
	errOut := &testutil.Buffer{}
	w, out, done := runAsync(t, Options{URL: g.addr, SessionID: session, Stderr: errOut})
	waitOutput(t, errOut, "session "+session+" (")
	return &pipeChat{in: w, out: out, errOut: errOut, done: done}
}

func (c *pipeChat) send(t *testing.T, lines string) {
	t.Helper()
	if _, err := io.WriteString(c.in, lines); err != nil {
		t.Fatal(err)
	}
}

// finish ends the input and checks that the client exits without an error
// and that its stdout is exactly want.
func (c *pipeChat) finish(t *testing.T, name, want string) {
	t.Helper()
	c.in.Close()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("client %s: Run: %v", name, err)
		}
	case <-time.After(waitFor):
		t.Fatalf("client %s did not end:\nstdout:\n%s\nstderr:\n%s", name, c.out.String(), c.errOut.String())
	}
	if got := c.out.String(); got != want {
		t.Errorf("client %s: stdout = %q, want %q\nstderr:\n%s", name, got, want, c.errOut.String())
	}
}

// waitQueued waits until the gateway holds n bytes of messages waiting for
// their turn: a message a client sent has reached the session's queue.
func waitQueued(t *testing.T, g *testGateway, n int) {
	t.Helper()
	gw, err := parseGateway(g.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		QueuedBytes int `json:"queuedBytes"`
	}
	for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
		if err := gw.call(context.Background(), http.MethodGet, "/readyz", nil, http.StatusOK, &h); err != nil {
			t.Fatal(err)
		}
		if h.QueuedBytes == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes queued after %s, want %d", h.QueuedBytes, waitFor, n)
		}
	}
}

// Client B sends while A's turn runs (announced to B by user_message), so
// A's reply ends while B awaits its own: B's stdout holds B's replies
// alone, and each client reads its next line only after its own reply.
func TestPipeClientsShareASession(t *testing.T) {
	t.Parallel()
	p := newGateProvider()
	g := startGatewayWith(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", p)
	a := startPipe(t, g, "s2")
	b := startPipe(t, g, "s2")
	a.send(t, "one from A\ntwo from A\n")
	p.wait(t)
	waitOutput(t, b.errOut, "› one from A\n")
	b.send(t, "one from B\ntwo from B\n")
	waitQueued(t, g, len("one from B"))
	p.open(4)
	a.finish(t, "A", "echo: one from A\necho: two from A\n")
	b.finish(t, "B", "echo: one from B\necho: two from B\n")
	// Stderr notes the other's turns: its message, then its reply.
	waitOutput(t, b.errOut, "› one from A\necho: one from A\n")
	waitOutput(t, a.errOut, "› one from B\necho: one from B\n")
}

// Client B attaches while A's turn runs: B saw no user_message for it, and
// takes it for another client's all the same (the session was busy when B
// attached), so B's message, queued behind it, gets its own reply.
func TestPipeClientAttachesDuringAnotherTurn(t *testing.T) {
	t.Parallel()
	p := newGateProvider()
	g := startGatewayWith(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", p)
	a := startPipe(t, g, "s3")
	a.send(t, "one from A\n")
	p.wait(t)
	b := startPipe(t, g, "s3")
	b.send(t, "one from B\n")
	waitQueued(t, g, len("one from B"))
	p.open(2)
	a.finish(t, "A", "echo: one from A\n")
	b.finish(t, "B", "echo: one from B\n")
}

// Another client's turn that fails is not this script's failure: B aborts
// A's turn, and B's exit status stays 0 (A's is 1).
func TestPipeClientIgnoresAnotherTurnsError(t *testing.T) {
	t.Parallel()
	p := newGateProvider()
	g := startGatewayWith(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", p)
	a := startPipe(t, g, "s4")
	b := startPipe(t, g, "s4")
	a.send(t, "one from A\n")
	p.wait(t)
	waitOutput(t, b.errOut, "› one from A\n")
	b.send(t, "/abort\n")
	waitOutput(t, b.errOut, "error [aborted]: ")
	b.finish(t, "B", "")
	a.in.Close()
	if err := <-a.done; !errors.Is(err, ErrTurnFailed) {
		t.Errorf("client A, whose turn was aborted: Run = %v, want ErrTurnFailed", err)
	}
}

// On a terminal another client's turn shows as today: its message and its
// reply. A message typed meanwhile waits for it: its echo goes, and its own
// reply, after the other's, is headed by it.
func TestTerminalShowsAnotherTurnBeforeItsOwn(t *testing.T) {
	t.Parallel()
	p := newGateProvider()
	g := startGatewayWith(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", p)
	c := startPTY(t, Options{URL: g.addr, SessionID: "s5"}, 80)
	c.waitScreen("/help lists the commands")
	a := startPipe(t, g, "s5")
	a.send(t, "one from A\n")
	p.wait(t)
	c.waitScreen("› one from A")
	c.typeKeys("mine\r")
	waitQueued(t, g, len("mine"))
	p.open(2)
	c.expectScreen("› one from A", "echo: one from A", "↳ reply to: mine", "echo: mine", ">")
	a.finish(t, "A", "echo: one from A\n")
	c.quit()
}
