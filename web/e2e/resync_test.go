package e2e

import (
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// A resync event (events relayed from another gateway may have been lost)
// makes the WebChat reload the session's history: a turn whose events it
// never got shows.
func TestResyncReloadsHistory(t *testing.T) {
	relay := make(testutil.ResyncRelay)
	g := startGateway(t, gwConfig{relay: relay})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("first")
	want := []shown{{"user", "first"}, {"assistant", "echo: first"}}
	tb.waitMessages("the first turn", want)

	// A turn of another gateway, whose events were lost on the way.
	now := time.Now().UnixMilli()
	if _, err := g.store.Append(tb.sessionID(),
		core.Message{Role: core.RoleUser, Content: "from elsewhere", Timestamp: now},
		core.Message{Role: core.RoleAssistant, Content: "a reply nobody streamed here", Timestamp: now}); err != nil {
		t.Fatal(err)
	}
	select {
	case relay <- struct{}{}:
	case <-time.After(waitFor):
		t.Fatal("the gateway's relay listener is not running")
	}
	tb.waitMessages("history after the resync", append(want, shown{"user", "from elsewhere"}, shown{"assistant", "a reply nobody streamed here"}))
}
