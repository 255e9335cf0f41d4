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
func Text(s string) string { return escape(s, "\n\t") }

// Line returns s with every control character, newline and tab included,
// shown as an escape, for a field printed on one line (a title, a table
// cell): it cannot start a line of its own or break a column.
func Line(s string) string { return escape(s, "") }

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

func escape(s, keep string) string {
	clean := 0 // s[:clean] needs no escape
	for clean < len(s) {
		r, size := utf8.DecodeRuneInString(s[clean:])
		if unsafe(r, size, keep) {
			break
		}
		clean += size
	}
	if clean == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:clean])
	for i := clean; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case !unsafe(r, size, keep):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError || r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// JSON returns a JSON document with the control characters that
// encoding/json leaves as they are (DEL and the C1 controls) written as \u
// escapes: the same value, safe on a terminal. A byte that is not UTF-8
// becomes \ufffd, as json.Marshal would have made it. Outside strings, JSON
// holds only ASCII syntax and whitespace, so every such rune is inside a
// string, where a \u escape means the same.
func JSON(doc []byte) []byte {
	s := string(doc)
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, size, "\t\n\r") {
			b.WriteString(s[last:i])
			fmt.Fprintf(&b, `\u%04x`, r)
			last = i + size
		}
		i += size
	}
	if last == 0 {
		return doc
	}
	b.WriteString(s[last:])
	return []byte(b.String())
}
