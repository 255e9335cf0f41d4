package turn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
)

// losingStore is the files store whose turns' leases are lost when the
// test closes lost (as pgstore's are when their connection fails).
type losingStore struct {
	*session.Store
	lost  chan struct{}
	saved *strings.Builder // the text the turn gave its lease to keep
}

type losingLease struct {
	session.Lease
	lost  chan struct{}
	saved *strings.Builder
}

func (l losingLease) SaveText(chunk string) { l.saved.WriteString(chunk) }

func (l losingLease) Lost() <-chan struct{} { return l.lost }

func (s losingStore) LockTurn(ctx context.Context, id string, timeout time.Duration, waiting func()) (session.Lease, error) {
	l, err := s.Store.LockTurn(ctx, id, timeout, waiting)
	if err != nil {
		return nil, err
	}
	return losingLease{l, s.lost, s.saved}, nil
}

// streamer streams "partial " and then waits for the turn's end.
type streamer struct{}

func (streamer) Name() string { return "streamer" }

func (streamer) Complete(ctx context.Context, _ core.Request, onText func(string)) (core.Response, error) {
	onText("partial ")
	<-ctx.Done()
	return core.Response{Text: "partial "}, context.Cause(ctx)
}

// TestPlayStopsWhenTheLeaseIsLost: a turn whose lease is lost mid-reply
// ends with an error event saying so, and writes nothing more: the
// session's transcript keeps only the user message (another gateway marks
// the turn interrupted, with the text the lease kept), and the after-turn
// hook does not run.
func TestPlayStopsWhenTheLeaseIsLost(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	files, err := session.Open(filepath.Join(t.TempDir(), "sessions"), session.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	if _, _, err := files.Create("s1", session.DefaultChannel); err != nil {
		t.Fatal(err)
	}
	store := losingStore{files, make(chan struct{}), &strings.Builder{}}
	p := &Player{Store: store, Log: log, MaxContext: 100, Runtime: &agent.Runtime{
		Provider: streamer{}, Model: "m", Workspace: t.TempDir(),
		AfterTurn: func(core.Message, []core.Message) error {
			t.Error("the after-turn hook ran for a turn whose lease was lost")
			return nil
		},
	}}
	// A turn that does not stop runs until the test's context ends.
	ctx, cancel := context.WithTimeoutCause(context.Background(), 10*time.Second, errors.New("the turn ran on 10 s after its lease was lost"))
	defer cancel()
	done := p.Play(ctx, "s1", "hello", Events{Text: func(string) { close(store.lost) }})
	var ev protocol.Error
	if err := json.Unmarshal(done, &ev); err != nil || ev.Type != protocol.TypeError || ev.Code != protocol.CodeInternal ||
		!strings.Contains(ev.Message, core.ErrLeaseLost.Error()) {
		t.Fatalf("Play ended with %s, want an internal error saying the lease was lost", done)
	}
	msgs, _, err := files.Load("s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Role != core.RoleUser {
		t.Fatalf("transcript %+v, want only the user message", msgs)
	}
	if store.saved.String() != "partial " {
		t.Fatalf("the lease kept %q of the reply, want %q", store.saved, "partial ")
	}
}
