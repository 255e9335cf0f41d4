package gateway_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedSequence plays the seed's exchange field for field: connected,
// a message, its chunks and message_done, then both lines on disk.
func TestSeedSequence(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws")

	if c.resumed {
		t.Errorf("first connection to an empty store: resumed = true, want false")
	}
	if len(c.sessionID) == 0 {
		t.Fatal("connected without a sessionId")
	}

	c.sendRaw(`{"type":"message","content":"hello world"}`)
	var chunks []string
	var done event
	for done.Type == "" {
		ev := c.next()
		switch ev.Type {
		case "chunk":
			f := ev.fields(t)
			if len(f) != 3 || f["sessionId"] != c.sessionID {
				t.Fatalf("chunk %s: want exactly type, sessionId=%s, content", ev.Raw, c.sessionID)
			}
			if _, ok := f["content"].(string); !ok {
				t.Fatalf("chunk %s: content is not a string", ev.Raw)
			}
			chunks = append(chunks, ev.Content)
		case "message_done":
			done = ev
		default:
			t.Fatalf("unexpected event %s", ev.Raw)
		}
	}
	if got := strings.Join(chunks, ""); got != "echo: hello world" {
		t.Errorf("chunks add up to %q, want %q", got, "echo: hello world")
	}
	if len(chunks) < 2 {
		t.Errorf("the reply came in %d chunk(s), want it streamed in several: %q", len(chunks), chunks)
	}
	if done.SessionID != c.sessionID || done.Content != "echo: hello world" || done.StopReason == "" {
		t.Errorf("message_done = %s, want sessionId %s, content %q and a stopReason", done.Raw, c.sessionID, "echo: hello world")
	}

	// message_done promises both lines are on disk.
	lines := ts.readJSONL(t, c.sessionID)
	wantTranscript(t, lines, "user", "hello world", "assistant", "echo: hello world")
	for i, l := range lines {
		stamp, ok := l.Fields["timestamp"].(float64)
		if !ok || stamp < 1e12 {
			t.Errorf("line %d: timestamp %v, want Unix milliseconds", i+1, l.Fields["timestamp"])
		}
		if _, ok := l.Fields["status"]; ok {
			t.Errorf("line %d of a completed turn has a status: %v", i+1, l.Fields)
		}
	}
	if lines[1].Timestamp < lines[0].Timestamp {
		t.Errorf("assistant timestamp %d is before the user's %d", lines[1].Timestamp, lines[0].Timestamp)
	}
	meta := ts.readMeta(t, c.sessionID)
	if meta.SessionID != c.sessionID || meta.MessageCount != 2 || meta.Channel != "webchat" || meta.Title != "hello world" {
		t.Errorf("meta = %+v, want sessionId %s, messageCount 2, channel webchat, title %q", meta, c.sessionID, "hello world")
	}
	// The meta is written atomically: no temp file is left beside it.
	entries, err := os.ReadDir(ts.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover file in the sessions dir: %s", e.Name())
		}
	}
}

// TestRootPathUpgrades: new WebSocket("ws://host:port") without a path works
// like /ws, and a plain GET / still serves the page.
func TestRootPathUpgrades(t *testing.T) {
	t.Parallel()
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>webchat</html>")) })
	ts := echoServer(t, withPage(page))

	c := ts.dial(t, "")
	tn := c.chat("hello world")
	if tn.done.Content != "echo: hello world" || tn.done.SessionID != c.sessionID {
		t.Fatalf("message_done on / = %s", tn.done.Raw)
	}
	wantTranscript(t, ts.readJSONL(t, c.sessionID), "user", "hello world", "assistant", "echo: hello world")

	// A second client on / joins the same (most recent) session.
	c2 := ts.dial(t, "/?sessionId="+c.sessionID)
	if !c2.resumed || c2.sessionID != c.sessionID {
		t.Fatalf("connected on /?sessionId= = %s resumed %v, want %s resumed", c2.sessionID, c2.resumed, c.sessionID)
	}

	status, body := ts.do(t, "GET", "/", nil, nil)
	if status != http.StatusOK || string(body) != "<html>webchat</html>" {
		t.Fatalf("GET / = %d %q, want the page", status, body)
	}
	if status, _ := ts.do(t, "GET", "/nope", nil, nil); status != http.StatusNotFound {
		t.Fatalf("GET /nope = %d, want 404", status)
	}
}

// TestEventsAreOneJSONObjectPerTextFrame checks the framing of every event a
// plain exchange produces, and that the data dir holds only plain files.
func TestEventsAreOneJSONObjectPerTextFrame(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=frames")
	c.message("a b c")
	for {
		ev := c.next() // next fails on a binary or non-JSON frame
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(ev.Raw, &obj); err != nil {
			t.Fatalf("frame %s is not one JSON object: %v", ev.Raw, err)
		}
		if ev.Type == "message_done" {
			break
		}
	}
	for _, name := range []string{"frames.jsonl", "frames.meta.json"} {
		if _, err := os.Stat(filepath.Join(ts.dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
