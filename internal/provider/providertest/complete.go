package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Ctx is a context for one call to the provider, cancelled when the test
// ends and after 20 s at the most, so that a hung call fails the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Collector records the text chunks a provider relays. It is safe for
// concurrent use.
type Collector struct {
	mu     sync.Mutex
	chunks []string
}

// OnText is the onText callback to give the provider.
func (c *Collector) OnText(s string) {
	c.mu.Lock()
	c.chunks = append(c.chunks, s)
	c.mu.Unlock()
}

// Got returns the chunks relayed so far.
func (c *Collector) Got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.chunks...)
}

// Result is what one call to Complete gave: its response and error, and
// the text chunks it relayed.
type Result struct {
	core.Response
	Err     error
	Relayed []string
}

// Complete sends req through p with a Ctx, recording the text relayed.
func Complete(t testing.TB, p core.Provider, req core.Request) Result {
	t.Helper()
	var c Collector
	resp, err := p.Complete(Ctx(t), req, c.OnText)
	return Result{Response: resp, Err: err, Relayed: c.Got()}
}

// MustComplete is Complete for a call that must succeed: it stops the test
// on an error.
func MustComplete(t testing.TB, p core.Provider, req core.Request) Result {
	t.Helper()
	r := Complete(t, p, req)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r
}

// CompleteCancelled sends req through p on ctx, recording each text chunk
// relayed and then calling cancel (which should cancel ctx). It stops the
// test if Complete has not returned 5 s after it started.
func CompleteCancelled(t testing.TB, p core.Provider, ctx context.Context, req core.Request, cancel func()) Result {
	t.Helper()
	var c Collector
	done := make(chan Result, 1)
	go func() {
		resp, err := p.Complete(ctx, req, func(s string) {
			c.OnText(s)
			cancel()
		})
		done <- Result{Response: resp, Err: err}
	}()
	select {
	case r := <-done:
		r.Relayed = c.Got()
		return r
	case <-time.After(5 * time.Second):
	}
	t.Fatal("Complete did not return after the context was cancelled")
	return Result{}
}

// CompleteConcurrently sends req through p from n goroutines at once and
// checks that every call succeeds with a response that ok accepts.
func CompleteConcurrently(t testing.TB, p core.Provider, req core.Request, n int, ok func(core.Response) bool) {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, err := p.Complete(Ctx(t), req, func(string) {})
			if err == nil && !ok(resp) {
				err = errors.New("wrong response")
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Answer is what a successful completion must give: exactly the text
// chunks Relayed (none if nil), hence a Text that is their join, exactly
// the tool calls ToolCalls, and the stop reason and usage.
type Answer struct {
	Relayed    []string
	ToolCalls  []core.ToolCall
	StopReason string
	Usage      core.Usage
}

// WantAnswer checks that r succeeded with the answer want; it stops the test
// on an error or a wrong number of tool calls.
func WantAnswer(t testing.TB, r Result, want Answer) {
	t.Helper()
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	WantText(t, r, want.Relayed...)
	WantToolCalls(t, r.ToolCalls, want.ToolCalls...)
	if r.StopReason != want.StopReason {
		t.Errorf("StopReason = %q, want %q", r.StopReason, want.StopReason)
	}
	if r.Usage != want.Usage {
		t.Errorf("Usage = %+v, want %+v", r.Usage, want.Usage)
	}
}

// WantText checks that r relayed exactly the text chunks relayed (none if
// there are none) and that its (possibly partial) Text is their join.
func WantText(t testing.TB, r Result, relayed ...string) {
	t.Helper()
	if !slices.Equal(r.Relayed, relayed) {
		t.Errorf("relayed %q, want %q", r.Relayed, relayed)
	}
	if want := strings.Join(relayed, ""); r.Text != want {
		t.Errorf("Text = %q, want %q", r.Text, want)
	}
}

// WantToolCalls checks that got holds exactly the calls want, in order, the
// inputs byte for byte; it stops the test if the number differs.
func WantToolCalls(t testing.TB, got []core.ToolCall, want ...core.ToolCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("ToolCalls = %+v, want %d", got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Name != w.Name || string(g.Input) != string(w.Input) {
			t.Errorf("ToolCalls[%d] = %s %s %s, want %s %s %s", i, g.ID, g.Name, g.Input, w.ID, w.Name, w.Input)
		}
	}
}

// WantErr checks that err is an error whose message contains each of want;
// it stops the test if not.
func WantErr(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one that contains %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("err = %q, want it to contain %q", err, w)
		}
	}
}

// JSONEqual checks that got is the same JSON value as want, whatever the
// spacing and the order of object keys; what names it in messages.
func JSONEqual(t testing.TB, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		pretty, _ := json.MarshalIndent(g, "", "  ")
		t.Errorf("%s:\ngot  %s\nwant %s", what, pretty, want)
	}
}

// JSONFields decodes a JSON object, a request body, into its fields; it
// stops the test if body is not one.
func JSONFields(t testing.TB, body []byte) map[string]json.RawMessage {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return fields
}

// WantOverflow checks that the provider newProvider builds on a fake API
// answering 400 with the error fixture makes req fail as
// core.ErrContextOverflow naming tokens and limit (0 for a wording that
// names none), after one request.
func WantOverflow(t *testing.T, newProvider func(*FakeAPI) core.Provider, req core.Request, fixture string, tokens, limit int64) {
	t.Helper()
	api := NewFakeAPI(t, APIError(t, 400, fixture))
	err := Complete(t, newProvider(api), req).Err
	var oe *core.OverflowError
	if !errors.Is(err, core.ErrContextOverflow) || !errors.As(err, &oe) {
		t.Fatalf("err = %v, want a core.OverflowError", err)
	}
	if oe.Tokens != tokens || oe.Limit != limit {
		t.Errorf("sizes %d > %d, want %d > %d", oe.Tokens, oe.Limit, tokens, limit)
	}
	api.WantRequests(t, 1)
}
