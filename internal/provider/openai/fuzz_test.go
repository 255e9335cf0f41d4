package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadStream feeds arbitrary bytes to the SSE parser as a response body.
// It must never panic; the text it returns is exactly what it relayed; and a
// stream it accepts yields tool calls with IDs and valid JSON inputs.
func FuzzReadStream(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sse"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: [DONE]\n"))
	f.Add([]byte(`data: {"choices":[{"delta":{"tool_calls":[{"index":-3,"function":{"arguments":"[1,"}}]}}]}` + "\n\n" +
		`data: {"choices":[{"delta":{"tool_calls":[{"index":-3,"function":{"arguments":"2]"}}]},"finish_reason":"tool_calls"}]}` + "\n\n"))

	f.Fuzz(func(t *testing.T, body []byte) {
		var relayed []string
		resp, err := readStream(context.Background(), bytes.NewReader(body), func(s string) {
			if s == "" {
				t.Error("empty text chunk relayed")
			}
			relayed = append(relayed, s)
		})
		if got := strings.Join(relayed, ""); got != resp.Text {
			t.Errorf("Text %q differs from what was relayed %q", resp.Text, got)
		}
		if err != nil {
			if len(resp.ToolCalls) != 0 {
				t.Errorf("tool calls returned with error %v", err)
			}
			return
		}
		for i, tc := range resp.ToolCalls {
			if !json.Valid(tc.Input) {
				t.Errorf("ToolCalls[%d].Input is not valid JSON: %q", i, tc.Input)
			}
			if tc.ID == "" {
				t.Errorf("ToolCalls[%d] has no ID", i)
			}
		}
	})
}
