package termsafe

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The attacks of the issue: an OSC 52 clipboard write, a clear screen, an
// 8-bit CSI (a raw byte, as a terminal in 8-bit mode reads it, and the
// rune U+009B as UTF-8), a title change ended by ST, and a lone ESC.
const attacks = "\x1b]52;c;ZXZpbA==\x07|\x1b[2J|\x9b31m|\u009b31m|\x1b]0;owned\x1b\\|\x1b"

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, ünïcode ✓\n\tindented", "plain text, ünïcode ✓\n\tindented"},
		{attacks, `\x1b]52;c;ZXZpbA==\x07|\x1b[2J|\x9b31m|\u009b31m|\x1b]0;owned\x1b\|\x1b`},
		{"cr\rlf\r\nnul\x00del\x7fbell\a", `cr\x0dlf\x0d` + "\n" + `nul\x00del\x7fbell\x07`},
		{"c1 \u0080 and \u009f, not \u00a0", `c1 \u0080 and \u009f, not ` + "\u00a0"},
		{"bad utf-8 \xff\xc3(", `bad utf-8 \xff\xc3(`},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
		wantSafe(t, Text(tc.in), "\n\t")
	}
}

func TestLine(t *testing.T) {
	if got, want := Line("a title\nwith\ta row\x1b[2J"), `a title\x0awith\x09a row\x1b[2J`; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	wantSafe(t, Line(attacks+"\n\t"), "")
}

// Clean text is returned as it is, without a copy.
func TestTextCleanIsFree(t *testing.T) {
	s := strings.Repeat("a clean line of text\n", 100)
	if n := testing.AllocsPerRun(10, func() { Text(s) }); n != 0 {
		t.Errorf("Text of clean text allocated %v times", n)
	}
}

func TestJSON(t *testing.T) {
	v := map[string]string{"title": attacks + "\x7f\n"}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := JSON(b)
	wantSafe(t, string(out), "")
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	// The same value (json.Marshal already made the raw byte U+FFFD).
	var orig map[string]string
	json.Unmarshal(b, &orig)
	if back["title"] != orig["title"] {
		t.Errorf("JSON changed the value: %q, want %q", back["title"], orig["title"])
	}
	if got, want := string(JSON([]byte("[\"\x9b\"]"))), `["\ufffd"]`; got != want {
		t.Errorf("JSON of a byte that is not UTF-8 = %s, want %s", got, want)
	}
	if clean := []byte(`{"a": "ü"}`); &JSON(clean)[0] != &clean[0] {
		t.Error("JSON copied a clean document")
	}
}

// wantSafe checks that s is valid UTF-8 with no control character but
// those in allowed.
func wantSafe(t *testing.T, s, allowed string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		if (r < 0x20 || r >= 0x7f && r < 0xa0) && !strings.ContainsRune(allowed, r) {
			t.Errorf("%q holds the control character %U", s, r)
		}
	}
}
