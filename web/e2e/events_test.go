package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// release lets one held model call (gwConfig.gate) go on.
func release(t *testing.T, gate chan<- struct{}) {
	t.Helper()
	select {
	case gate <- struct{}{}:
	case <-time.After(waitFor):
		t.Fatal("no model call waited at the gate")
	}
}

// A message sent in one tab shows in the other when its turn starts, before
// any of the reply (here the model has not answered yet), and once in the
// tab that sent it.
func TestOtherTabsMessageShowsBeforeItsReply(t *testing.T) {
	gate := make(chan struct{})
	g := startGateway(t, gwConfig{gate: gate})
	browser := newBrowser(t)
	a := openTab(t, browser, g.url())
	a.waitConnected()
	a.send("first")
	release(t, gate)
	want := []shown{{"user", "first"}, {"assistant", "echo: first"}}
	a.waitMessages("tab a's first turn", want)
	b := openTab(t, browser, g.url()+"#s="+a.sessionID())
	b.waitConnected()
	b.waitMessages("tab b's history", want)

	a.send("hello from tab a")
	b.waitJS("tab a's question in tab b while the model has not answered", `(() => {
		const m = [...document.querySelectorAll("#log > .msg")];
		return m.length === 3 && m[2].className === "msg user" && m[2].textContent === "hello from tab a" })()`)
	release(t, gate)
	want = append(want, shown{"user", "hello from tab a"}, shown{"assistant", "echo: hello from tab a"})
	b.waitMessages("tab b's transcript", want)
	a.waitMessages("tab a's transcript, its question once", want)
}

// progressTool reports how far it got, then waits until the test lets it
// finish.
type progressTool struct{ done chan struct{} }

func (progressTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "download", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (progressTool) ReadOnly() bool { return false }
func (p progressTool) Run(ctx context.Context, _ json.RawMessage) (string, error) {
	tools.ProgressReporter(ctx)(tools.Progress{Progress: 3, Total: 10, Message: "Downloading"})
	select {
	case <-p.done:
		return "downloaded", nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// A running tool's progress shows on its line, until its result.
func TestToolProgressOnTheToolLine(t *testing.T) {
	pt := progressTool{done: make(chan struct{})}
	g := startGateway(t, gwConfig{
		extra: []tools.Tool{pt},
		script: script(
			scripted.Turn{ToolCalls: []scripted.ToolCall{{Name: "download", Input: json.RawMessage(`{}`)}}},
			scripted.Turn{Text: "Fetched."},
		),
	})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("fetch it")
	tb.waitJS("the progress on the running tool's line", `(() => {
		const s = document.querySelector("#log details.tool.running summary");
		return s && s.querySelector(".tool-name").textContent === "download" && s.querySelector(".tool-progress")?.textContent === "3/10 Downloading" })()`)
	tb.shot("webchat-tool-progress")
	close(pt.done)
	tb.waitJS("the tool's result in place of its progress", settledJS+` && document.querySelector("#log details.tool.ok") && !document.querySelector("#log .tool-progress")`)
}
