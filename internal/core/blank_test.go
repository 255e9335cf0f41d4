package core

import "testing"

func TestBlank(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "\n\n": true, " \t\r\n": true, "\u00a0\u2003": true, "\x00\x1c": true,
		"a": false, "\n.\n": false, " x ": false, "\u200b": false,
	} {
		if Blank(s) != want {
			t.Errorf("Blank(%q) = %v, want %v", s, !want, want)
		}
	}
}
