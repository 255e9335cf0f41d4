package e2e

import (
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
)

// After a reply whose message_done carries usage, a muted line under it
// says what the turn used and how much of it a prompt cache served; it
// stays when history replaces the streamed copy, and goes when the next
// turn starts.
func TestReplyShowsUsage(t *testing.T) {
	g := startGateway(t, gwConfig{usage: core.Usage{InputTokens: 500, CacheReadTokens: 9_000, CacheWriteTokens: 500, OutputTokens: 20}})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("hello")
	tb.waitMessages("the reply", []shown{{"user", "hello"}, {"assistant", "echo: hello"}})
	tb.waitJS("the usage line after the reply", `(() => {
		const u = document.querySelector("#log > .usage");
		return u && u.textContent === "10k tokens in · 20 out · 90% cached" && u.previousElementSibling?.classList.contains("assistant");
	})()`)
	if color := eval[string](tb, `getComputedStyle(document.querySelector("#log > .usage")).color`); color == eval[string](tb, `getComputedStyle(document.querySelector("#log .msg.assistant")).color`) {
		t.Errorf("the usage line is not muted: color %s", color)
	}
	tb.shot("usage")
	tb.send("again")
	tb.waitMessages("the second reply", []shown{{"user", "hello"}, {"assistant", "echo: hello"}, {"user", "again"}, {"assistant", "echo: again"}})
	tb.waitJS("one usage line, after the last reply", `document.querySelectorAll("#log > .usage").length === 1 && document.querySelector("#log > .usage").previousElementSibling.textContent.includes("echo: again")`)
}
