// Package termsafe makes text from elsewhere (the model, a tool, a
// transcript, the gateway) safe to print on a terminal. A terminal obeys
// control characters in what it prints: ESC and the 8-bit CSI/OSC start
// sequences that set the clipboard (OSC 52), the window title, or clear the
// screen, and a carriage return overwrites what a line showed. Every
// control character is therefore shown as a visible escape instead: C0
// controls and DEL as \x1b, C1 controls (U+0080 to U+009F) as \u009b, and
// bytes that are not UTF-8 (a raw 0x9b is CSI to a terminal in 8-bit mode)
// as \x9b. Text keeps newlines and tabs; Line, for one-line fields, escapes
// them too. The escape is for reading, not reversible: text that already
// holds a backslash sequence prints the same.
//
// Callers sanitise what they were given, and add their own styling after.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text returns s with every control character except newline and tab
// shown as an escape. Clean text is returned as it is.
func Text(s string) string { return rewrite(s, "\n\t", visible) }

// Line returns s with every control character, newline and tab included,
// shown as an escape, for a field printed on one line (a title, a table
// cell): it cannot start a line of its own or break a column.
func Line(s string) string { return rewrite(s, "", visible) }

// JSON returns a JSON document with the control characters that
// encoding/json leaves as they are (DEL and the C1 controls) written as \u
// escapes: the same value, safe on a terminal. A byte that is not UTF-8
// becomes \ufffd, as json.Marshal would have made it. Outside strings, JSON
// holds only ASCII syntax and whitespace, so every such rune is inside a
// string, where a \u escape means the same.
func JSON(doc []byte) []byte {
	s := string(doc)
	if out := rewrite(s, "\t\n\r", jsonEscape); out != s {
		return []byte(out)
	}
	return doc
}

// unsafe reports whether the rune r, of size bytes at the start of the
// rest of a string, must be escaped, other than the controls in keep.
func unsafe(r rune, size int, keep string) bool {
	switch {
	case r == utf8.RuneError && size == 1: // not UTF-8
		return true
	case r < 0x20:
		return !strings.ContainsRune(keep, r)
	}
	return r >= 0x7f && r < 0xa0
}

// visible writes the escape of an unsafe rune r, or of the byte raw when r
// is a byte that is not UTF-8: \x1b for C0, DEL and such bytes, \u009b for
// C1.
func visible(b *strings.Builder, r rune, raw byte) {
	if r == utf8.RuneError || r < 0x80 {
		fmt.Fprintf(b, `\x%02x`, raw)
		return
	}
	fmt.Fprintf(b, `\u%04x`, r)
}

// jsonEscape writes the JSON escape of an unsafe rune r (U+FFFD for a byte
// that is not UTF-8).
func jsonEscape(b *strings.Builder, r rune, _ byte) { fmt.Fprintf(b, `\u%04x`, r) }

// rewrite returns s with every unsafe rune written by esc; s itself when
// there is none.
func rewrite(s, keep string, esc func(b *strings.Builder, r rune, raw byte)) string {
	var b *strings.Builder // made at the first unsafe rune: clean text costs nothing
	done := 0              // s[:done] is written
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, size, keep) {
			if b == nil {
				b = &strings.Builder{}
				b.Grow(len(s) + 16)
			}
			b.WriteString(s[done:i])
			esc(b, r, s[i])
			done = i + size
		}
		i += size
	}
	if b == nil {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}
