package chatclient

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/provider/scripted"
)

// In pipe mode stdout carries the replies alone, each on a line of its
// own, so that `miniclaw chat < questions > answers` gets just the answers;
// connection notes, usage lines and the rest go to Stderr.
func TestPipeModeStdoutHoldsRepliesOnly(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", usageProvider{scripted.Echo()})
	var out, errOut strings.Builder
	err := Run(context.Background(), Options{
		URL:       g.addr,
		SessionID: "pipe-1",
		In:        strings.NewReader("hello\n/abort\nsecond line\n"),
		Out:       &out,
		Stderr:    &errOut,
	})
	if err != nil {
		t.Fatalf("Run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	if want := "echo: hello\necho: second line\n"; out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	for _, want := range []string{
		"Connected to http://" + g.addr + ": session pipe-1 (new session).\n",
		"(10k tokens in · 20 out · 90% cached)\n",
		"error [not_running]: ",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(errOut.String(), "echo:") {
		t.Errorf("a reply went to stderr:\n%s", errOut.String())
	}
}

// Tool lines go to stderr too; the reply text around them stays on stdout,
// on lines of its own.
func TestPipeModeToolLinesOnStderr(t *testing.T) {
	t.Parallel()
	g := startScriptedGateway(t, []scripted.Turn{
		{Text: "Looking.", ToolCalls: []scripted.ToolCall{{Name: "evil", Input: json.RawMessage(`{"a":1}`)}}},
		{Text: "Done."},
	})
	var out, errOut strings.Builder
	if err := Run(context.Background(), Options{URL: g.addr, In: strings.NewReader("go\n"), Out: &out, Stderr: &errOut}); err != nil {
		t.Fatalf("Run: %v\n%s", err, errOut.String())
	}
	if want := "Looking.\nDone.\n"; out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	for _, want := range []string{"⚙ evil {\"a\":1}\n", "✓ evil: "} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}
