package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

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
	ws, data := t.TempDir(), t.TempDir()
	script := filepath.Join(t.TempDir(), "script.json")
	// One model turn per request, in the order the client sends them; the
	// aborted one streams slowly enough for the client to leave first.
	turns := `[{"text":"Hello from miniclaw."},{"text":"Streaming works fine."},{"text":"The helper too."},` +
		`{"text":"one two three four five six seven eight","chunkDelayMs":100},{"text":"After the abort."}]`
	if err := os.WriteFile(script, []byte(turns), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "gateway", gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_SCRIPT": script, "MINI_OPENCLAW_TOKEN": "interop-key"}))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.Node, filepath.Join("testdata", "openai-client.mjs"))
	cmd.Env = childEnv(t, map[string]string{
		"OPENAI_MODULE": filepath.Join(in.Modules, "openai", "index.mjs"),
		"BASE_URL":      g.url("/v1"),
		"API_KEY":       "interop-key",
	})
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node openai-client.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("client printed %q: %v", sc.Text(), err)
		}
		steps[v["step"].(string)] = v
	}
	want := func(step string, fields map[string]any) {
		t.Helper()
		for k, w := range fields {
			if got := steps[step][k]; !reflect.DeepEqual(got, w) {
				t.Errorf("%s: %s = %#v, want %#v (printed: %v)", step, k, got, w, steps[step])
			}
		}
	}
	usage := map[string]any{"prompt_tokens": 0.0, "completion_tokens": 0.0, "total_tokens": 0.0} // the scripted provider counts nothing
	want("models", map[string]any{"ids": []any{"miniclaw"}, "owned_by": "miniclaw"})
	want("create", map[string]any{"object": "chat.completion", "role": "assistant", "content": "Hello from miniclaw.", "finish": "stop", "usage": usage})
	want("stream", map[string]any{"role": "assistant", "text": "Streaming works fine.", "finish": "stop", "usage": usage})
	want("helper", map[string]any{"content": "The helper too.", "finish": "stop"})
	want("wrongkey", map[string]any{"auth": true, "status": 401.0, "code": "invalid_api_key", "type": "authentication_error"})
	want("abort", map[string]any{"aborted": true})
	want("after", map[string]any{"content": "After the abort."})
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
