package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/miniclaw/miniclaw/internal/session"
)

// Tests of the sidebar: sessions stored on the first message, renamed,
// archived, searched, and kept in step with changes made beside the page.

// api calls the test gateway's JSON API as another client would (the CLI,
// a script), not as the page: what it changes the page must find by itself.
func (g *testGateway) api(method, path string, body any, out any) {
	g.t.Helper()
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			g.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, "http://"+g.addr+path, &rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		g.t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			g.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// listed is GET /api/sessions: the sessions' titles by ID.
func (g *testGateway) listed() map[string]string {
	g.t.Helper()
	var list struct {
		Sessions []session.Meta `json:"sessions"`
	}
	g.api("GET", "/api/sessions", nil, &list)
	out := map[string]string{}
	for _, m := range list.Sessions {
		out[m.SessionID] = m.Title
	}
	return out
}

// onDisk lists the IDs of the transcripts in dir, sorted.
func onDisk(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// wantStored checks that the gateway lists exactly the sessions ids and
// that exactly their transcripts are in the sessions directory.
func (g *testGateway) wantStored(when string, ids ...string) {
	g.t.Helper()
	slices.Sort(ids)
	listed := make([]string, 0, len(ids))
	for id := range g.listed() {
		listed = append(listed, id)
	}
	slices.Sort(listed)
	if disk := onDisk(g.t, g.dir); !slices.Equal(listed, ids) || !slices.Equal(disk, ids) {
		g.t.Fatalf("%s: GET /api/sessions lists %v and the sessions directory holds %v, want %v", when, listed, disk, ids)
	}
}

// sidebarJS is the titles the sidebar shows, top to bottom, joined by "|".
const sidebarJS = `[...document.querySelectorAll("#sessions .s-title")].map(e => e.textContent).join("|")`

// item is a CSS selector inside the sidebar entry of session id.
func item(id, sel string) string {
	return `#sessions li[data-id="` + id + `"] ` + sel
}

// "+ New chat" shows an empty chat but stores nothing: the first message
// creates the session, which then shows in the sidebar with its title.
func TestNewChatIsStoredByItsFirstMessage(t *testing.T) {
	g := startGateway(t, gwConfig{})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.waitJS("an empty new chat", `document.querySelector("#log .empty") && document.querySelector("#title").textContent === "New chat"`)
	g.wantStored("a page opened on an empty gateway")

	tb.send("first chat")
	tb.waitMessages("the first chat", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})
	first := tb.sessionID()
	g.wantStored("after the first message", first)

	drafts := map[string]bool{}
	for range 3 {
		before := tb.sessionID()
		tb.do(chromedp.Click(chromedp.CSS("#new")))
		tb.waitJS("a new empty chat", `new URLSearchParams(location.hash.slice(1)).get("s") !== `+jsString(before)+
			` && document.querySelector("#log .empty") && document.querySelector("#title").textContent === "New chat" && document.querySelector("#status").dataset.state === "connected"`)
		drafts[tb.sessionID()] = true
		tb.do(chromedp.Click(chromedp.CSS(item(first, ".session"))))
		tb.waitMessages("the first chat again", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})
	}
	if len(drafts) != 3 {
		t.Errorf("three clicks on + New chat gave %d new chats, want 3", len(drafts))
	}
	tb.do(chromedp.KeyEvent("n", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	tb.waitJS("Alt+N to show a new chat", `document.querySelector("#log .empty") && new URLSearchParams(location.hash.slice(1)).get("s") !== `+jsString(first))
	draft := tb.sessionID()
	if eval[bool](tb, `!document.querySelector("#fork").disabled || !document.querySelector("#archive").disabled`) {
		t.Error("Fork and Archive are enabled on a chat that is not stored")
	}
	// A reload of the new chat keeps it new, and still stores nothing.
	tb.do(chromedp.Reload())
	tb.waitConnected()
	tb.waitJS("the new chat after a reload", `document.querySelector("#log .empty")`)
	if got := tb.sessionID(); got != draft {
		t.Errorf("after a reload the page shows %q, want the new chat %q", got, draft)
	}
	if got := eval[string](tb, sidebarJS); got != "first chat" {
		t.Errorf("the sidebar shows %q, want only the stored chat", got)
	}
	g.wantStored("after three clicks on + New chat, Alt+N and a reload", first)

	tb.send("second chat")
	tb.waitMessages("the second chat", []shown{{"user", "second chat"}, {"assistant", "echo: second chat"}})
	tb.waitJS("the second chat in the sidebar with its title", sidebarJS+` === "second chat|first chat"`)
	g.wantStored("after the new chat's first message", first, draft)
	if msgs := g.transcript(draft); len(msgs) != 2 || msgs[0].Content != "second chat" {
		t.Errorf("the new chat's transcript: %+v", msgs)
	}
}

// A title is renamed in place from the sidebar: the pencil (or F2, or a
// double click) opens it for editing, Enter saves through the API, Esc
// cancels; the title is stored, shown as text, and kept over a reload.
func TestRenameFromTheSidebar(t *testing.T) {
	g := startGateway(t, gwConfig{})
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("first chat")
	tb.waitMessages("the first chat", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})
	id := tb.sessionID()
	tb.waitJS("the chat in the sidebar", sidebarJS+` === "first chat"`)

	const editing = `document.activeElement?.matches("#sessions input.s-edit")`
	tb.do(chromedp.Click(chromedp.CSS(item(id, ".s-rename"))))
	tb.waitJS("the title to open for editing", editing+` && document.activeElement.value === "first chat"`)
	const title = `Trip <b>plans</b> **now**`
	tb.do(chromedp.SendKeys(chromedp.CSS("#sessions input.s-edit"), kb.End+strings.Repeat(kb.Backspace, len("first chat"))+title), pressEnter())
	tb.waitJS("the new title in the sidebar and the header", sidebarJS+` === `+jsString(title)+` && document.querySelector("#title").textContent === `+jsString(title)+` && !document.querySelector("#sessions input")`)
	if n := eval[int](tb, `document.querySelectorAll("#sessions b, #title b").length`); n != 0 {
		t.Errorf("the title became %d HTML elements", n)
	}
	if got := g.listed()[id]; got != title {
		t.Errorf("GET /api/sessions titles it %q, want %q", got, title)
	}
	b, err := os.ReadFile(filepath.Join(g.dir, id+".meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta session.Meta
	if err := json.Unmarshal(b, &meta); err != nil || meta.Title != title {
		t.Errorf("meta.json title %q (%v), want %q", meta.Title, err, title)
	}
	tb.shot("webchat-renamed")

	// F2 on the entry opens it too; Esc cancels and changes nothing.
	tb.do(chromedp.Focus(chromedp.CSS(item(id, ".session"))), chromedp.KeyEvent(kb.F2))
	tb.waitJS("F2 to open the title", editing)
	tb.do(chromedp.SendKeys(chromedp.CSS("#sessions input.s-edit"), "nope"), chromedp.KeyEvent(kb.Escape))
	tb.waitJS("Esc to cancel", sidebarJS+` === `+jsString(title)+` && !document.querySelector("#sessions input")`)
	if got := g.listed()[id]; got != title {
		t.Errorf("after Esc the title is %q, want %q", got, title)
	}

	// A title over the limit is refused with the gateway's reason, and the
	// edit stays open to fix it.
	tb.do(chromedp.DoubleClick(chromedp.CSS(item(id, ".session"))))
	tb.waitJS("a double click to open the title", editing)
	tb.do(chromedp.SendKeys(chromedp.CSS("#sessions input.s-edit"), strings.Repeat("x", 90)), pressEnter())
	tb.waitJS("the refusal", `!document.querySelector("#toast").hidden && document.querySelector("#toast").textContent.includes("the limit is 80") && document.querySelector("#sessions input.s-edit")`)
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS("Esc to cancel", sidebarJS+` === `+jsString(title))

	tb.do(chromedp.Reload())
	tb.waitConnected()
	tb.waitJS("the title after a reload", sidebarJS+` === `+jsString(title)+` && document.querySelector("#title").textContent === `+jsString(title))
}

// twoChats starts a gateway and a tab that holds two chats, "first chat"
// and then "second chat" (open), both in the sidebar; it returns their IDs.
func twoChats(t *testing.T) (g *testGateway, tb *tab, first, second string) {
	g = startGateway(t, gwConfig{})
	tb = openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.send("first chat")
	tb.waitMessages("the first chat", []shown{{"user", "first chat"}, {"assistant", "echo: first chat"}})
	first = tb.sessionID()
	tb.do(chromedp.Click(chromedp.CSS("#new")))
	tb.waitJS("a new chat", `document.querySelector("#log .empty")`)
	tb.send("second chat")
	tb.waitMessages("the second chat", []shown{{"user", "second chat"}, {"assistant", "echo: second chat"}})
	second = tb.sessionID()
	tb.waitJS("both in the sidebar", sidebarJS+` === "second chat|first chat"`)
	return g, tb, first, second
}

// The sidebar's archive button asks first; then the session moves to the
// archive and leaves the sidebar, and the page leaves it if it was open.
func TestArchiveFromTheSidebar(t *testing.T) {
	g, tb, first, second := twoChats(t)

	// One click arms the button; nothing is archived yet.
	tb.do(chromedp.Click(chromedp.CSS(item(first, ".s-archive"))))
	tb.waitJS("the button to ask", `document.querySelector(`+jsString(item(first, ".s-archive"))+`).textContent === "Archive?"`)
	g.wantStored("after one click", first, second)
	tb.do(chromedp.Click(chromedp.CSS(item(first, ".s-archive"))))
	tb.waitJS("the first chat to leave the sidebar", sidebarJS+` === "second chat"`)
	g.wantStored("after archiving the first chat", second)
	if m, _ := filepath.Glob(filepath.Join(g.dir, "archive", first+".*.jsonl")); len(m) != 1 {
		t.Errorf("sessions/archive/ holds %v, want the archived transcript", m)
	}
	if got := tb.sessionID(); got != second {
		t.Errorf("archiving another chat moved the page to %q", got)
	}

	// The open chat, from the keyboard: the page moves to a new empty chat.
	tb.do(chromedp.Focus(chromedp.CSS(item(second, ".s-archive"))), chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Enter))
	tb.waitJS("the open chat to be archived", sidebarJS+` === "" && document.querySelector("#log .empty") && new URLSearchParams(location.hash.slice(1)).get("s") !== `+jsString(second))
	g.wantStored("after archiving the open chat")
}

// The search box filters the sidebar by title as one types, ignoring case,
// and keeps filtering as the list changes.
func TestSearchTheSidebar(t *testing.T) {
	g := startGateway(t, gwConfig{})
	for id, title := range map[string]string{"a": "Trip plans", "b": "Grocery list", "c": "Paris TRIP notes"} {
		if _, _, err := g.store.Create(id, session.DefaultChannel); err != nil {
			t.Fatal(err)
		}
		if _, err := g.store.Rename(id, title); err != nil {
			t.Fatal(err)
		}
	}
	tb := openTab(t, newBrowser(t), g.url())
	tb.waitConnected()
	tb.waitJS("three chats", `document.querySelectorAll("#sessions .session").length === 3`)

	tb.do(chromedp.SendKeys(chromedp.CSS("#search"), "trip"))
	tb.waitJS("the matches", `[...document.querySelectorAll("#sessions .s-title")].map(e => e.textContent).sort().join("|") === "Paris TRIP notes|Trip plans"`)
	tb.shot("webchat-search")
	g.api("POST", "/api/sessions/b/rename", map[string]string{"title": "Trip to the grocer"}, nil)
	tb.waitJS("a renamed chat that now matches", `document.querySelectorAll("#sessions .session").length === 3 && document.querySelector("#search").value === "trip"`)
	tb.do(chromedp.SendKeys(chromedp.CSS("#search"), "zzz"))
	tb.waitJS("no match", `document.querySelectorAll("#sessions .session").length === 0 && document.querySelector("#sessions").textContent === "No matching chats"`)
	tb.do(chromedp.SendKeys(chromedp.CSS("#search"), strings.Repeat(kb.Backspace, len("tripzzz"))))
	tb.waitJS("all chats again", `document.querySelector("#search").value === "" && document.querySelectorAll("#sessions .session").length === 3`)
}

// Sessions archived, forked or renamed beside the page (the CLI, another
// client) show in the sidebar by themselves within a few seconds; the open
// chat, archived, is left for another.
func TestSidebarFollowsChangesBesideIt(t *testing.T) {
	g, tb, first, second := twoChats(t)
	tb.do(chromedp.SendKeys(chromedp.CSS("#search"), "chat"))

	g.api("POST", "/api/sessions/"+first+"/fork", map[string]string{"sessionId": "the-fork"}, nil)
	tb.waitJS("the fork to show", `document.querySelector(`+jsString(item("the-fork", ".session"))+`)`)
	g.api("POST", "/api/sessions/"+first+"/rename", map[string]string{"title": "renamed chat"}, nil)
	tb.waitJS("the new title to show", `document.querySelector(`+jsString(item(first, ".s-title"))+`)?.textContent === "renamed chat"`)

	// A title open for editing is not redrawn away by a poll that brings a
	// change: the edit, its text and its focus stay until it ends.
	tb.do(chromedp.Click(chromedp.CSS(item("the-fork", ".s-rename"))), chromedp.SendKeys(chromedp.CSS("#sessions input.s-edit"), "half-typed"))
	g.api("POST", "/api/sessions/"+first+"/rename", map[string]string{"title": "renamed chat again"}, nil)
	const listLoads = `performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/sessions")).length`
	loads := eval[int](tb, listLoads)
	tb.waitJS("two more list loads", listLoads+` >= `+fmt.Sprint(loads+2))
	if got := eval[string](tb, `document.activeElement?.matches("#sessions input.s-edit") ? document.activeElement.value : "(no edit focused)"`); got != "half-typed" {
		t.Errorf("after the list changed, the edit holds %q, want %q", got, "half-typed")
	}
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS("the change to show once the edit ends", `document.querySelector(`+jsString(item(first, ".s-title"))+`)?.textContent === "renamed chat again"`)

	g.api("POST", "/api/sessions/"+first+"/archive", nil, nil)
	tb.waitJS("the archived chat to drop", `!document.querySelector(`+jsString(item(first, ".session"))+`) && document.querySelectorAll("#sessions .session").length === 2`)
	if got := eval[string](tb, `document.querySelector("#search").value`); got != "chat" {
		t.Errorf("the search box holds %q after the sidebar changed, want %q", got, "chat")
	}

	// The open chat is archived beside the page: the page moves on.
	g.api("POST", "/api/sessions/"+second+"/archive", nil, nil)
	tb.waitJS("the page to leave the archived chat", `new URLSearchParams(location.hash.slice(1)).get("s") !== `+jsString(second)+` && !document.querySelector(`+jsString(item(second, ".session"))+`)`)
	tb.waitConnected()
	g.wantStored("after the archives", "the-fork")
}
