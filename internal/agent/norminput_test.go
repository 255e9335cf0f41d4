package agent

import (
	"encoding/json"
	"testing"
)

// normInput compacts a tool input without HTML-escaping it: a shell command
// reaches the transcript and the clients as the model wrote it.
func TestNormInputKeepsShellOperators(t *testing.T) {
	for in, want := range map[string]string{
		"{ \"command\": \"echo a && echo b > out.txt 2>&1 <in\" }\n": `{"command":"echo a && echo b > out.txt 2>&1 <in"}`,
		"":               `{}`,
		"not json":       `{}`,
		`{"a":"\u0026"}`: `{"a":"\u0026"}`, // kept as the model wrote it
	} {
		if got := string(normInput(json.RawMessage(in))); got != want {
			t.Errorf("normInput(%q) = %s, want %s", in, got, want)
		}
	}
}
