package chatclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// attacks are what a web page, a file or a model can put in text that
// reaches the terminal: an OSC 52 clipboard write, a clear screen, an 8-bit
// CSI (a raw byte, and the rune U+009B), a window title change, a lone ESC.
const attacks = "\x1b]52;c;ZXZpbA==\x07 \x1b[2J \x9b31m \u009b31m \x1b]0;owned\x07 \x1b"

// evilTool answers every call with attacks.
type evilTool struct{}

func (evilTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "evil", Description: "prints escapes (test)", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (evilTool) ReadOnly() bool { return true }
func (evilTool) Run(context.Context, json.RawMessage) (string, error) {
	return attacks + "\nsecond line", nil
}

// linesTool answers every call with twelve numbered lines.
type linesTool struct{}

func (linesTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "lines", Description: "prints twelve lines (test)", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (linesTool) ReadOnly() bool { return true }
func (linesTool) Run(context.Context, json.RawMessage) (string, error) {
	var b strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String(), nil
}

// startEvilGateway serves a gateway whose model writes attacks in its text,
// calls the evil tool (which prints them) with them in its input, and
// calls a tool whose name is one.
func startEvilGateway(t *testing.T) *testGateway {
	t.Helper()
	input, _ := json.Marshal(map[string]string{"x": attacks})
	return startScriptedGateway(t, []scripted.Turn{
		{Text: "first " + attacks, ToolCalls: []scripted.ToolCall{{Name: "evil", Input: input}, {Name: "\x1b]0;name\x07", Input: json.RawMessage("{}")}}},
		{Text: "done " + attacks + "\n"},
	})
}

// startScriptedGateway starts a gateway whose model plays turns, with
// evilTool and linesTool as its tools.
func startScriptedGateway(t *testing.T, turns []scripted.Turn) *testGateway {
	t.Helper()
	script, _ := json.Marshal(turns)
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := scripted.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt := &agent.Runtime{Provider: p, Model: "test", Workspace: t.TempDir(), Tools: tools.NewSet(evilTool{}, linesTool{})}
	return startGatewayRuntime(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", rt)
}

// termOwn matches the sequences term.Terminal itself writes: cursor moves
// and erasing to the end of the line.
var termOwn = regexp.MustCompile(`\x1b\[[0-9]*[ABCDK]`)

// wantNoControls checks that out holds no control character but newline,
// tab and (on a terminal) carriage return, and the attacks shown visibly.
func wantNoControls(t *testing.T, out string, allowed string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("output is not valid UTF-8: %q", out)
	}
	for _, r := range out {
		if (r < 0x20 || r >= 0x7f && r < 0xa0) && !strings.ContainsRune(allowed, r) {
			t.Errorf("output holds the control character %U:\n%q", r, out)
			break
		}
	}
	if !strings.Contains(out, `\x1b]52;c;ZXZpbA==\x07`) {
		t.Errorf("output does not show the escape sequence visibly:\n%s", out)
	}
}

// Model text, tool names, inputs and outputs, and session titles reach the
// terminal with their control characters shown, not obeyed: in line mode
// (a pipe) and on a terminal, where term.Terminal's own cursor moves are
// the only escapes written.
func TestEscapesAreShownNotObeyed(t *testing.T) {
	t.Parallel()
	g := startEvilGateway(t)
	var out strings.Builder
	err := Run(context.Background(), Options{
		URL: "ws://" + g.addr + "/ws", SessionID: "evil-1",
		In: strings.NewReader("title " + attacks + "\n/sessions\n"), Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"done ", "⚙ evil", "✓ evil: ", "* evil-1", `title \x1b]52`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	wantNoControls(t, out.String(), "\n\t")

	// Keys typed on a terminal are not escapes: the title with them comes
	// from evil-1's.
	w, tout, done := runAsync(t, Options{URL: "ws://" + g.addr + "/ws", SessionID: "evil-2", Terminal: true})
	waitOutput(t, tout, "/help lists the commands") // typed before the connection, a line is refused
	io.WriteString(w, "hello\r")
	waitOutput(t, tout, "done ")
	io.WriteString(w, "/sessions\r")
	waitOutput(t, tout, "  evil-1")
	io.WriteString(w, "\x04") // Ctrl-D
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("the client did not quit on Ctrl-D")
	}
	wantNoControls(t, termOwn.ReplaceAllString(tout.String(), ""), "\n\t\r")
}
