package chatclient

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// When the gateway says that events from another gateway may have been
// lost, a terminal shows its message and the session's last turns again
// from history.
func TestResyncShowsHistoryAgain(t *testing.T) {
	t.Parallel()
	relay := make(testutil.ResyncRelay)
	g := startGatewayOpts(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), gateway.Options{
		Runtime: &agent.Runtime{Provider: scripted.Echo(), Model: "test", Workspace: t.TempDir()},
		Relay:   relay,
	})
	var out strings.Builder
	if err := Run(context.Background(), Options{URL: g.addr, SessionID: "resync", In: strings.NewReader("t1\nt2\n"), Out: &out}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	c := startPTY(t, Options{URL: g.addr, SessionID: "resync"}, 120)
	c.waitScreen("Type a message and press Enter")
	relay <- struct{}{}
	c.expectScreen(slices.Concat(
		[]string{"(events of this session relayed from another gateway may have been lost; its last turns again:)"},
		turnRows("t1", "t2"), []string{"──", ">"})...)
	c.quit()
}
