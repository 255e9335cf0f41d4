package chatclient

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/provider/scripted"
)

// /switch takes a unique prefix of an ID, lists the matches of an
// ambiguous one, and asks before creating a session nothing starts with:
// no keeps the current session.
func TestSwitchPrefixAndAsk(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	for _, id := range []string{"alpha-1", "alpha-2", "beta-1"} {
		if _, _, err := g.store.Create(id, "cli"); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	err := Run(context.Background(), Options{
		URL: g.addr, SessionID: "alpha-1", Out: &out,
		In: strings.NewReader("/switch alpha\n/switch gamma\nn\n/switch bet\n/switch gamma\ny\nhi\n"),
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	want := []string{
		"alpha starts 2 sessions: alpha-",
		"No session starts with gamma. Create a new session gamma? [y/N]\nStaying in session alpha-1.\n",
		"Session beta-1 (resumed).\n",
		"No session starts with gamma. Create a new session gamma? [y/N]\nSession gamma (new session).\n",
		"echo: hi\n",
	}
	rest := out.String()
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output lacks %q (in order):\n%s", w, out.String())
		}
		rest = rest[i+len(w):]
	}
	for _, id := range []string{"alpha", "bet"} {
		if _, err := g.store.Get(id); err == nil {
			t.Errorf("/switch %s created a session %s", id, id)
		}
	}
	if m, err := g.store.Get("gamma"); err != nil || m.MessageCount != 2 {
		t.Errorf("gamma: %+v, %v; want the message and its reply", m, err)
	}

	// At start, --session takes a unique prefix too; an ambiguous one is
	// an error naming its matches.
	err = Run(context.Background(), Options{URL: g.addr, SessionID: "alpha", In: strings.NewReader(""), Out: io.Discard})
	if want := "session ID alpha starts several sessions: alpha-"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("--session alpha: %v, want an error starting %q", err, want)
	}
}

// Tool lines are numbered; /tool N shows the whole input and output of
// call N, /tool the last one.
func TestToolShowsWholeCall(t *testing.T) {
	t.Parallel()
	g := startScriptedGateway(t, []scripted.Turn{
		{ToolCalls: []scripted.ToolCall{{Name: "evil", Input: json.RawMessage(`{}`)}, {Name: "lines", Input: json.RawMessage(`{"n":1}`)}}},
		{Text: "Done."},
	})
	var out strings.Builder
	err := Run(context.Background(), Options{URL: g.addr, Out: &out, In: strings.NewReader("/tool\ngo\n/tool 2\n/tool\n/tool 3\n")})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	whole := "[2] ⚙ lines\n{\n  \"n\": 1\n}\n[2] ✓ lines:\nline 1\nline 2\n"
	want := []string{
		"no tool call has been shown yet\n",
		"[1] ⚙ evil\n",
		"[2] ⚙ lines {\"n\":1}\n",
		"[1] ✓ evil: ",
		"[2] ✓ lines: line 1… (12 lines)\n",
		"Done.\n",
		whole, "line 12\n",
		whole, "line 12\n",
		"usage: /tool [N]: N is the number of a tool call shown, 1 to 2\n",
	}
	rest := out.String()
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output lacks %q (in order):\n%s", w, out.String())
		}
		rest = rest[i+len(w):]
	}
}
