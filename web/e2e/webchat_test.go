package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// A reply streams into the page chunk by chunk, renders as Markdown, and is
// there again, once, after a reload.
func TestStreamsMarkdownAndKeepsHistoryOverReload(t *testing.T) {
	reply := "Here is **bold**, *italic* and `code`:\n\n- one\n- two\n\n```go\nfmt.Println(\"hi\")\n```\n\nSee [the docs](https://example.com/docs) for more."
	g := startGateway(t, gwConfig{
		warning: scriptedWarning,
		script:  script(scripted.Turn{Text: reply, ChunkDelayMs: 40}),
	})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.waitJS("the provider banner", `!document.querySelector("#banner").hidden && document.querySelector("#banner").textContent.includes("scripted provider")`)

	// Shift+Enter is a new line, Enter sends.
	tb.do(chromedp.SendKeys(chromedp.CSS("#input"), "Show me"), chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)))
	tb.send("some *Markdown*")
	// Mid-stream: part of the reply is on the page, not all of it.
	tb.waitJS("a partial reply", `(() => { const l = document.querySelector("#log .msg.live"); return l && l.textContent.includes("bold") && !l.textContent.includes("docs") })()`)
	tb.waitJS("the finished reply", settledJS+` && document.querySelector("#log .msg.assistant")?.textContent.includes("for more.")`)

	checkRendered := func() {
		t.Helper()
		got := eval[map[string]any](tb, `(() => { const a = document.querySelector("#log .msg.assistant .md"); return {
			strong: a.querySelector("strong")?.textContent, em: a.querySelector("em")?.textContent,
			code: a.querySelector("p code")?.textContent, items: a.querySelectorAll("ul > li").length,
			pre: a.querySelector("pre > code")?.textContent, lang: a.querySelector("pre > code")?.dataset.lang,
			href: a.querySelector("a")?.href, rel: a.querySelector("a")?.rel, linkText: a.querySelector("a")?.textContent,
			user: document.querySelector("#log .msg.user").textContent } })()`)
		want := map[string]any{
			"strong": "bold", "em": "italic", "code": "code", "items": float64(2),
			"pre": "fmt.Println(\"hi\")", "lang": "go",
			"href": "https://example.com/docs", "rel": "noopener noreferrer", "linkText": "the docs",
			"user": "Show me\nsome *Markdown*", // the user's text is shown as typed
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %#v, want %#v", k, got[k], v)
			}
		}
	}
	checkRendered()
	id := tb.sessionID()
	if id == "" {
		t.Fatal("the URL does not name the session")
	}
	tb.shot("webchat")

	tb.do(chromedp.Reload())
	tb.waitConnected()
	if got := tb.sessionID(); got != id {
		t.Errorf("after reload the page shows session %q, want %q", got, id)
	}
	tb.waitJS("the history after reload", `document.querySelectorAll("#log > .msg").length === 2`)
	checkRendered()
	if n := eval[int](tb, `document.querySelectorAll("#sessions .session").length`); n != 1 {
		t.Errorf("the sidebar lists %d sessions, want 1", n)
	}
}

// Tool calls show as collapsible cards with name, input, output and error
// state, live and from history.
func TestToolCallsShowAsCards(t *testing.T) {
	g := startGateway(t, gwConfig{
		files: map[string]string{"notes.txt": "remember the milk\n", "src/main.go": "package main\n"},
		script: script(
			scripted.Turn{Text: "Let me look around.", ToolCalls: []scripted.ToolCall{
				{Name: "list_files", Input: json.RawMessage(`{"directory":"."}`)},
				{Name: "read_file", Input: json.RawMessage(`{"path":"missing.txt"}`)},
			}},
			scripted.Turn{Text: "The workspace has **notes.txt** and a `src` folder; `missing.txt` does not exist."},
		),
	})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("What is in my workspace?")
	tb.waitJS("two finished tool cards", settledJS+` && document.querySelectorAll("#log details.tool.ok, #log details.tool.error").length === 2 && document.querySelector("#log").textContent.includes("does not exist")`)

	check := func(when string) {
		t.Helper()
		got := eval[[]map[string]any](tb, `[...document.querySelectorAll("#log details.tool")].map(d => ({
			name: d.querySelector(".tool-name").textContent, state: d.className,
			input: d.querySelector(".tool-input").textContent, output: d.querySelector(".tool-output").textContent }))`)
		if len(got) != 2 {
			t.Fatalf("%s: %d tool cards, want 2: %v", when, len(got), got)
		}
		ls, rf := got[0], got[1]
		if ls["name"] != "list_files" || ls["state"] != "tool ok" || !strings.Contains(ls["output"].(string), "notes.txt") ||
			ls["input"] != "{\n  \"directory\": \".\"\n}" {
			t.Errorf("%s: list_files card = %v", when, ls)
		}
		if rf["name"] != "read_file" || rf["state"] != "tool error" || !strings.Contains(rf["output"].(string), "missing.txt") {
			t.Errorf("%s: read_file card = %v", when, rf)
		}
	}
	check("live")
	tb.do(chromedp.Click(chromedp.CSS("#log details.tool summary")))
	tb.waitJS("the card to open", `document.querySelector("#log details.tool").open`)
	tb.shot("webchat-tools")

	tb.do(chromedp.Reload())
	tb.waitConnected()
	tb.waitMessages("the history with tools", []shown{
		{"user", "What is in my workspace?"},
		{"assistant", "Let me look around."},
		{"assistant", "The workspace has notes.txt and a src folder; missing.txt does not exist."},
	})
	check("from history")
}

// Two tabs on one session both see the stream, and both end with the same
// transcript, the sender's message included. A tab open on a new chat's
// link follows when another tab stores it with its first message.
func TestTwoTabsShareTheStream(t *testing.T) {
	g := startGateway(t, gwConfig{script: script(scripted.Turn{Text: words(15), ChunkDelayMs: 60})})
	browser := newBrowser(t)
	a := openTab(t, browser, g.url())
	a.waitConnected()
	id := a.sessionID()
	b := openTab(t, browser, g.url()+"#s="+id)
	b.waitConnected()
	if got := b.sessionID(); got != id {
		t.Fatalf("tab b shows session %q, want %q", got, id)
	}

	a.send("hello from tab a")
	want := []shown{{"user", "hello from tab a"}, {"assistant", words(15)}}
	a.waitMessages("tab a's transcript", want)
	b.waitMessages("tab b's transcript, once tab a stored the chat", want)

	streamed := b.watchJS("sawPartial", `(() => { const l = document.querySelector("#log .msg.live"); return l && l.textContent.includes("w3") && !l.textContent.includes("w15") })()`)
	a.send("more from tab a")
	b.waitJS("tab b to see the reply stream", streamed)
	want = append(want, shown{"user", "more from tab a"}, shown{"assistant", words(15)})
	a.waitMessages("tab a's transcript", want)
	b.waitMessages("tab b's transcript", want)

	// Tab b sends the same text twice: the second waits in the session's
	// queue, shown below the reply that streams for the first.
	queued := b.watchJS("sawQueued", `(() => {
		const m = [...document.querySelectorAll("#log > .msg")].slice(-3).map(e => e.className);
		return m.length === 3 && m[0].startsWith("msg user") && m[1] === "msg assistant live" && m[2] === "msg user pending" })()`)
	b.send("again")
	b.send("again")
	b.waitJS("the queued message below the streaming reply", queued)
	want = append(want, shown{"user", "again"}, shown{"assistant", words(15)}, shown{"user", "again"}, shown{"assistant", words(15)})
	b.waitMessages("tab b's transcript after the queue", want)
	a.waitMessages("tab a's transcript after the queue", want)
}

// The Stop button and Esc abort a slow reply; the page shows the partial
// reply marked aborted.
func TestAbortByButtonAndEsc(t *testing.T) {
	g := startGateway(t, gwConfig{script: script(scripted.Turn{Text: words(60), ChunkDelayMs: 100})})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()

	const streaming = `document.querySelector("#log .msg.live")?.textContent.includes("w3")`
	tb.send("go slowly")
	tb.waitJS("the reply to stream", streaming)
	tb.do(chromedp.Click(chromedp.CSS("#abort")))
	tb.waitJS("the aborted badge", settledJS+` && document.querySelectorAll("#log .status-note.aborted").length === 1`)
	tb.shot("webchat-aborted")

	tb.send("again, slowly")
	tb.waitJS("the second reply to stream", streaming)
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS("the second aborted badge", settledJS+` && document.querySelectorAll("#log .status-note.aborted").length === 2`)
	if eval[bool](tb, `!document.querySelector("#abort").disabled`) {
		t.Error("the Stop button is still enabled with nothing running")
	}

	msgs := g.transcript(tb.sessionID())
	if len(msgs) != 4 {
		t.Fatalf("transcript has %d messages, want 4", len(msgs))
	}
	for i := 1; i < len(msgs); i += 2 {
		if m := msgs[i]; m.Status != "aborted" || strings.Contains(m.Content, "w60") {
			t.Errorf("reply %+v: want a partial reply marked aborted", m)
		}
	}
	tb.waitMessages("the aborted transcript", fromDisk(msgs))
}

// Lost connections, a reload mid-stream and a gateway restart lose no
// message and show none twice.
func TestReconnectLosesAndDuplicatesNothing(t *testing.T) {
	g := startGateway(t, gwConfig{script: script(
		scripted.Turn{Text: "first reply"},
		scripted.Turn{Text: words(20), ChunkDelayMs: 80},
		scripted.Turn{Text: words(25), ChunkDelayMs: 80},
	)})
	px := testutil.StartProxy(t, g.addr)
	tb := openTab(t, newBrowser(t), "http://"+px.Addr()+"/")
	tb.waitConnected()
	id := tb.sessionID()

	tb.send("one")
	tb.waitMessages("the first turn", []shown{{"user", "one"}, {"assistant", "first reply"}})

	// The network goes away mid-reply; the reply finishes on the gateway
	// while the page is offline, and shows once when it is back.
	tb.send("two")
	tb.waitJS("the second reply to stream", `document.querySelector("#log .msg.live")?.textContent.includes("w2")`)
	px.Cut()
	tb.waitJS("the page to notice", `document.querySelector("#status").dataset.state === "offline"`)
	waitTrue(t, "the second reply to be persisted", func() bool { return len(g.transcript(id)) == 4 })
	tb.shot("webchat-offline")
	px.Resume()
	tb.waitConnected()
	tb.waitMessages("the transcript after reconnecting", fromDisk(g.transcript(id)))

	// A reload while a reply streams: history has the question, the stream
	// brings the rest of the reply, and the reply shows once.
	tb.send("three")
	tb.waitJS("the third reply to stream", `document.querySelector("#log .msg.live")?.textContent.includes("w2")`)
	tb.do(chromedp.Reload())
	tb.waitConnected()
	tb.waitJS("the stream to go on after the reload, marked as joined midway", `document.querySelector("#log .msg.live.joined")`)
	waitTrue(t, "the third reply to be persisted", func() bool { return len(g.transcript(id)) == 6 })
	tb.waitMessages("the transcript after the reload", fromDisk(g.transcript(id)))

	// The gateway restarts on the same port and data directory.
	g.stop()
	tb.waitJS("the page to notice the gateway is gone", `document.querySelector("#status").dataset.state !== "connected"`)
	g.start()
	tb.waitConnected()
	tb.send("four") // the new gateway's script starts over: "first reply"
	waitTrue(t, "the fourth turn to be persisted", func() bool { return len(g.transcript(id)) == 8 })
	msgs := g.transcript(id)
	if msgs[7].Content != "first reply" {
		t.Fatalf("last reply %q, want %q", msgs[7].Content, "first reply")
	}
	tb.waitMessages("the transcript after the restart", fromDisk(msgs))
}

// With a token, the page asks for it, refuses a wrong one, connects with the
// right one and remembers it.
func TestAsksForTheToken(t *testing.T) {
	g := startGateway(t, gwConfig{token: "s3cret-token"})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitJS("the token prompt", `document.querySelector("#auth").open`)
	tb.shot("webchat-token")

	tb.do(chromedp.SendKeys(chromedp.CSS("#token"), "wrong"+kb.Enter))
	tb.waitJS("the prompt to refuse it", `document.querySelector("#auth").open && document.querySelector("#auth-msg").textContent.includes("not accepted")`)
	tb.do(chromedp.SendKeys(chromedp.CSS("#token"), "s3cret-token"+kb.Enter))
	tb.waitConnected()
	tb.send("hi")
	tb.waitMessages("the reply", []shown{{"user", "hi"}, {"assistant", "echo: hi"}})

	tb.do(chromedp.Reload())
	tb.waitConnected()
	if eval[bool](tb, `document.querySelector("#auth").open`) {
		t.Error("the token prompt shows again after a reload")
	}
	tb.waitMessages("the history", []shown{{"user", "hi"}, {"assistant", "echo: hi"}})
}

// HTML in model output, in tool output and in the user's own message is
// shown as text: nothing runs, no element is made from it.
func TestHTMLInRepliesIsText(t *testing.T) {
	evil := `<img src=x onerror="window.__pwned='img'"> <script>window.__pwned='script'</script> [click](javascript:window.__pwned='link') <b>**bold**</b>`
	g := startGateway(t, gwConfig{
		files: map[string]string{`<img src=y onerror="window.__pwned='file'">.txt`: "x"},
		script: script(
			scripted.Turn{Text: evil, ToolCalls: []scripted.ToolCall{{Name: "list_files", Input: json.RawMessage(`{"directory":"."}`)}}},
			scripted.Turn{Text: "done"},
		),
	})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send(`<img src=z onerror="window.__pwned='user'"><script>window.__pwned='user2'</script>`)
	tb.waitJS("the reply", settledJS+` && document.querySelector("#log").textContent.includes("done")`)

	check := func(when string) {
		t.Helper()
		got := eval[map[string]any](tb, `({
			pwned: String(window.__pwned),
			made: document.querySelectorAll("#log img, #log script, #log b, #sessions img, #sessions script, #log a[href^='javascript'], #title *").length,
			text: document.querySelector("#log").textContent,
			bold: document.querySelector("#log .msg.assistant strong")?.textContent ?? "" })`)
		if got["pwned"] != "undefined" || got["made"] != float64(0) {
			t.Errorf("%s: injected HTML became live: %v", when, got)
		}
		text := got["text"].(string)
		for _, s := range []string{`<img src=x onerror=`, `<script>window.__pwned='script'</script>`, `[click](javascript:`, `<img src=y onerror=`, `<img src=z onerror=`} {
			if !strings.Contains(text, s) {
				t.Errorf("%s: the page does not show %q as text", when, s)
			}
		}
		if got["bold"] != "bold" {
			t.Errorf("%s: Markdown next to the HTML not rendered: %v", when, got["bold"])
		}
	}
	tb.do(chromedp.Click(chromedp.CSS("#log details.tool summary")))
	check("live")
	tb.shot("webchat-injection")
	tb.do(chromedp.Reload())
	tb.waitConnected()
	tb.waitJS("the history", `document.querySelector("#log").textContent.includes("done")`)
	check("from history")
}

// The sidebar makes, switches, forks and archives sessions, from the mouse
// and the keyboard, and folds away at phone width.
func TestSessionsSidebar(t *testing.T) {
	g := startGateway(t, gwConfig{})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("first chat")
	tb.waitMessages("the first chat", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})
	first := tb.sessionID()

	tb.do(chromedp.Click(chromedp.CSS("#new")))
	tb.waitJS("a new session", `new URLSearchParams(location.hash.slice(1)).get("s") !== `+jsString(first)+` && document.querySelector("#status").dataset.state === "connected"`)
	second := tb.sessionID()
	tb.waitJS("an empty log", `document.querySelector("#log .empty")`)
	tb.send("second chat")
	tb.waitMessages("the second chat", []shown{{"user", "second chat"}, {"assistant", "echo: second chat"}})
	tb.waitJS("both in the sidebar, newest first", `[...document.querySelectorAll("#sessions .s-title")].map(e => e.textContent).join("|") === "second chat|first chat"`)

	tb.do(chromedp.Click(chromedp.CSS(`#sessions .session[data-id="` + first + `"]`)))
	tb.waitConnected()
	tb.waitMessages("the first chat again", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})
	if got := tb.sessionID(); got != first {
		t.Fatalf("URL names %q, want %q", got, first)
	}

	tb.do(chromedp.Click(chromedp.CSS("#fork")))
	tb.waitJS("the fork", `!["`+first+`", "`+second+`"].includes(new URLSearchParams(location.hash.slice(1)).get("s")) && document.querySelectorAll("#sessions .session").length === 3`)
	tb.waitConnected()
	fork := tb.sessionID()
	tb.waitMessages("the fork's copy of the chat", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})

	tb.do(chromedp.Click(chromedp.CSS("#archive")), chromedp.Click(chromedp.CSS("#archive")))
	tb.waitJS("the fork to be archived", `document.querySelectorAll("#sessions .session").length === 2 && !document.querySelector('#sessions .session[data-id="`+fork+`"]') && new URLSearchParams(location.hash.slice(1)).get("s") !== "`+fork+`"`)
	tb.waitConnected()

	// Keyboard: Alt+N shows a new chat (stored by its first message).
	before := tb.sessionID()
	tb.do(chromedp.KeyEvent("n", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	tb.waitJS("Alt+N to show a new chat", `document.querySelector("#log .empty") && new URLSearchParams(location.hash.slice(1)).get("s") !== "`+before+`"`)
	tb.waitConnected()
	if n := eval[int](tb, `document.querySelectorAll("#sessions .session").length`); n != 2 {
		t.Errorf("the sidebar lists %d sessions after Alt+N, want 2", n)
	}

	// Phone width: the sidebar is a drawer behind the menu button.
	tb.do(chromedp.EmulateViewport(390, 760))
	const sidebarShown = `document.querySelector("#sidebar").getBoundingClientRect().right > 0`
	tb.waitJS("the sidebar to fold away", `!(`+sidebarShown+`)`)
	tb.do(chromedp.Click(chromedp.CSS("#menu")))
	tb.waitJS("the drawer to open", `document.body.classList.contains("side-open") && document.querySelector("#sidebar").getBoundingClientRect().left === 0`)
	tb.shot("webchat-phone")
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS("Esc to close the drawer", `!document.body.classList.contains("side-open")`)
}

// /compact typed in the composer summarises the older messages: a muted
// line says so (not a user message), and after a reload the history shows
// the summary record as that line, with the summary folded inside, and
// still every message.
func TestCompactCommand(t *testing.T) {
	g := startGateway(t, gwConfig{})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	for _, m := range []string{"one", "two", "three"} {
		tb.send(m)
		tb.waitJS("the reply to "+m, settledJS+` && document.querySelector("#log").textContent.includes("echo: `+m+`")`)
	}
	tb.send("/compact")
	tb.waitJS("the compaction line", `document.querySelector("#log .msg.compaction")?.textContent.startsWith("Compacted: 4 earlier messages summarised (")`)
	if n := eval[int](tb, `document.querySelectorAll("#log .msg.user").length`); n != 3 {
		t.Errorf("%d user messages shown, want 3 (/compact is not one)", n)
	}
	tb.do(chromedp.Reload())
	tb.waitConnected()
	tb.waitJS("the summary from history", `document.querySelector("#log .msg.compaction details summary")?.textContent === "Compacted: 4 earlier messages summarised"`)
	if n := eval[int](tb, `document.querySelectorAll("#log .msg.user, #log .msg.assistant").length`); n != 6 {
		t.Errorf("%d messages shown after the reload, want all 6", n)
	}
}
