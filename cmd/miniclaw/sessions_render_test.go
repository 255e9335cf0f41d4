package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// escapes is what a web page, a file or a model can put in a transcript:
// an OSC 52 clipboard write, a clear screen, an 8-bit CSI (U+009B), a
// window title change, a lone ESC.
const escapes = "\x1b]52;c;ZXZpbA==\x07 \x1b[2J \u009b31m \x1b]0;owned\x07 \x1b"

// `miniclaw sessions list` and `show` (and an export printed on the
// terminal) show the control characters of titles, channels, messages and
// tool records as escapes instead of writing them to the terminal.
func TestSessionsShowEscapesVisibly(t *testing.T) {
	t.Parallel()
	onBothStores(t, testSessionsShowEscapesVisibly)
}

func testSessionsShowEscapesVisibly(t *testing.T, store string) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	dir := filepath.Join(data, "sessions")
	st, err := session.Open(dir, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UnixMilli()
	if _, _, err := st.Create("evil-1", "webchat"); err != nil {
		t.Fatal(err)
	}
	_, err = st.Append("evil-1",
		core.Message{Role: core.RoleUser, Content: "title " + escapes, Timestamp: ts},
		core.Message{Role: core.RoleAssistant, Content: "text " + escapes, Timestamp: ts, ToolCalls: []core.ToolCallRecord{
			{ID: "call_1", Name: "bash" + escapes, Input: json.RawMessage(`{"command":"printf '\u001b]52;c;ZXZpbA==\u0007 \u009b'"}`), Output: escapes + "\nmore"},
		}},
		core.Message{Role: core.RoleAssistant, Content: "half", Timestamp: ts, Status: core.StatusError, Error: "boom " + escapes},
	)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// A channel from before channels were validated: in the meta file, and
	// not in the index snapshot, which would otherwise be trusted.
	metaPath := filepath.Join(dir, "evil-1.meta.json")
	var meta map[string]any
	b, err := os.ReadFile(metaPath)
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil {
		t.Fatal(err)
	}
	meta["channel"] = "chan " + escapes
	b, _ = json.Marshal(meta)
	if err := os.WriteFile(metaPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, ".index"))

	env := sessionsEnvOn(t, store, ws, data)
	for _, args := range [][]string{
		{"list"},
		{"list", "--json"},
		{"show", "evil-1"},
		{"show", "evil-1", "--full"},
		{"export", "evil-1", "--format", "md"},
	} {
		r := sessionsOK(t, env, args...)
		if !utf8.ValidString(r.stdout) {
			t.Errorf("sessions %v: output is not UTF-8: %q", args, r.stdout)
		}
		for _, c := range r.stdout {
			if c < 0x20 && c != '\n' && c != '\t' || c >= 0x7f && c < 0xa0 {
				t.Errorf("sessions %v: output holds the control character %U:\n%q", args, c, r.stdout)
				break
			}
		}
		visible := `\x1b]52;c;ZXZpbA==\x07`
		if len(args) > 1 && args[1] == "--json" {
			visible = `\u001b]52;c;ZXZpbA==\u0007 \u001b[2J \u009b31m` // the same value, in JSON
		}
		if !strings.Contains(r.stdout, visible) {
			t.Errorf("sessions %v: output lacks %s:\n%s", args, visible, r.stdout)
		}
	}
}

// `sessions show`, `export` and `list --json` show a tool input and a title
// holding shell operators as typed, not HTML-escaped (\u0026\u0026).
func TestSessionsShowAsTyped(t *testing.T) {
	t.Parallel()
	onBothStores(t, testSessionsShowAsTyped)
}

func testSessionsShowAsTyped(t *testing.T, store string) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	st, err := session.Open(filepath.Join(data, "sessions"), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const typed = `echo a && echo b > out.txt 2>&1 <in`
	if _, _, err := st.Create("typed-1", "cli"); err != nil {
		t.Fatal(err)
	}
	_, err = st.Append("typed-1",
		core.Message{Role: core.RoleUser, Content: "run " + typed, Timestamp: 1},
		core.Message{Role: core.RoleAssistant, Content: "done", Timestamp: 2, ToolCalls: []core.ToolCallRecord{
			{ID: "call_1", Name: "bash", Input: json.RawMessage(`{"command":"` + typed + `"}`), Output: "ok"},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	env := sessionsEnvOn(t, store, ws, data)
	for _, args := range [][]string{
		{"list", "--json"},
		{"show", "typed-1"},
		{"export", "typed-1", "--format", "md"},
		{"export", "typed-1", "--format", "jsonl"},
	} {
		r := sessionsOK(t, env, args...)
		if !strings.Contains(r.stdout, typed) || strings.Contains(r.stdout, `\u00`) {
			t.Errorf("sessions %v: output lacks %s as typed:\n%s", args, typed, r.stdout)
		}
	}
}

// `sessions show` numbers the tool lines; --full prints each call's whole
// input and output instead.
func TestSessionsShowFull(t *testing.T) {
	t.Parallel()
	onBothStores(t, testSessionsShowFull)
}

func testSessionsShowFull(t *testing.T, store string) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	seedSessions(t, data)
	env := sessionsEnvOn(t, store, ws, data)
	r := sessionsOK(t, env, "show", "tools-1")
	if want := "[1] ⚙ bash {\"command\":\"ls\"}\n[1] ✓ bash: a.txt… (2 lines)\n[2] ⚙ read_file"; !strings.Contains(r.stdout, want) {
		t.Errorf("show lacks %q:\n%s", want, r.stdout)
	}
	r = sessionsOK(t, env, "show", "tools-1", "--full")
	want := "[1] ⚙ bash\n{\n  \"command\": \"ls\"\n}\n[1] ✓ bash:\na.txt\nb.txt\n[2] ⚙ read_file\n{\n  \"path\": \"x\"\n}\n[2] ✗ read_file:\nno such file\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("show --full lacks\n%s\nin:\n%s", want, r.stdout)
	}
}

// Counts of one are singular: "1 message", not "1 messages".
func TestSessionsCountsOneSingular(t *testing.T) {
	t.Parallel()
	onBothStores(t, testSessionsCountsOneSingular)
}

func testSessionsCountsOneSingular(t *testing.T, store string) {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	st, err := session.Open(filepath.Join(data, "sessions"), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Create("one-1", "cli"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append("one-1", core.Message{Role: core.RoleUser, Content: "hi", Timestamp: 1}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	env := sessionsEnvOn(t, store, ws, data)
	for _, c := range []struct {
		args []string
		want string
		out  func(cliResult) string
	}{
		{[]string{"show", "one-1"}, " · 1 message · ", func(r cliResult) string { return r.stdout }},
		{[]string{"fork", "one-1", "--to", "one-2"}, "(1 message)\n", func(r cliResult) string { return r.stderr }},
	} {
		r := runCLI(t, cliTimeout, env, append([]string{"sessions"}, c.args...)...)
		if r.code != 0 || !strings.Contains(c.out(r), c.want) {
			t.Errorf("sessions %v: exit %d\nstdout: %s\nstderr: %s\nwant %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
}

// sessionsOK runs `miniclaw sessions ARGS…` with env and fails the test
// unless it exits 0.
func sessionsOK(t *testing.T, env map[string]string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, cliTimeout, env, append([]string{"sessions"}, args...)...)
	if r.code != 0 {
		t.Fatalf("sessions %v: exit %d\nstderr: %s", args, r.code, r.stderr)
	}
	return r
}
