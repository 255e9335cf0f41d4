package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestOpenAIClient runs the official openai npm client
// (testdata/openai-client.mjs) against a real gateway with a token:
// models.list, chat.completions.create without and with streaming (usage
// included), the stream helper, a wrong key, and a client that aborts
// mid-stream, whose turn must still be stored whole. It checks what the
// client printed and the transcripts on disk.
func TestOpenAIClient(t *testing.T) {
	t.Parallel()
	in := testutil.NeedInterop(t)
	// One model turn per request, in the order the client sends them; the
	// aborted one streams slowly enough for the client to leave first.
	g, data := interopGateway(t, `[{"text":"Hello from miniclaw."},{"text":"Streaming works fine."},{"text":"The helper too."},`+
		`{"text":"one two three four five six seven eight","chunkDelayMs":100},{"text":"After the abort."}]`)

	steps := runClient(t, in, "openai-client.mjs", map[string]string{
		"OPENAI_MODULE": filepath.Join(in.Modules, "openai", "index.mjs"),
		"BASE_URL":      g.url("/v1"),
		"API_KEY":       "interop-key",
	})
	usage := map[string]any{"prompt_tokens": 0.0, "completion_tokens": 0.0, "total_tokens": 0.0} // the scripted provider counts nothing
	steps.want(t, "models", map[string]any{"ids": []any{"miniclaw"}, "owned_by": "miniclaw"})
	steps.want(t, "create", map[string]any{"object": "chat.completion", "role": "assistant", "content": "Hello from miniclaw.", "finish": "stop", "usage": usage})
	steps.want(t, "stream", map[string]any{"role": "assistant", "text": "Streaming works fine.", "finish": "stop", "usage": usage})
	steps.want(t, "helper", map[string]any{"content": "The helper too.", "finish": "stop"})
	steps.want(t, "wrongkey", map[string]any{"auth": true, "status": 401.0, "code": "invalid_api_key", "type": "authentication_error"})
	steps.want(t, "abort", map[string]any{"aborted": true})
	steps.want(t, "after", map[string]any{"content": "After the abort."})
	if first, _ := steps["abort"]["first"].(string); first == "" || !strings.HasPrefix("one two three four five six seven eight", first) {
		t.Errorf("abort: the client read %q before leaving, want the reply's first words", first)
	}

	interop, _ := steps["create"]["session"].(string)
	if !strings.HasPrefix(interop, "openai-interop-") {
		t.Fatalf("create: session %q, want openai-interop-…", interop)
	}
	wantLines(t, filepath.Join(data, "sessions", interop+".jsonl"),
		"user", "hello", "assistant", "Hello from miniclaw.",
		"user", "stream\nplease", "assistant", "Streaming works fine.",
		"user", "helper", "assistant", "The helper too.")
	aborter, _ := steps["after"]["session"].(string)
	wantLines(t, filepath.Join(data, "sessions", aborter+".jsonl"),
		"user", "go", "assistant", "one two three four five six seven eight",
		"user", "and then?", "assistant", "After the abort.")
}

// wantLines checks a transcript's roles and contents, line by line, and
// that no line is marked aborted or failed.
func wantLines(t *testing.T, path string, want ...string) {
	t.Helper()
	tr, err := readTranscript(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range tr.msgs {
		got = append(got, m.Role, m.Content)
		if m.Status != "" {
			t.Errorf("%s: %s line %q has status %q", filepath.Base(path), m.Role, m.Content, m.Status)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
}
