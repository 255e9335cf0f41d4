package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClaude is a local Messages API: each POST /v1/messages gets the next
// scripted SSE stream, and the request is kept for the test to inspect.
type fakeClaude struct {
	mu       sync.Mutex
	streams  [][]string // per call: the SSE events, each "event: X\ndata: {...}"
	requests []map[string]any
	headers  []http.Header
}

// claudeModels is the Models API's answer to GET /v1/models, which the
// gateway sends once at startup to check the key.
const claudeModels = `{"data":[{"created_at":"2025-05-22T00:00:00Z","display_name":"Claude Sonnet 4","id":"claude-sonnet-4-20250514","type":"model"}],"first_id":"claude-sonnet-4-20250514","has_more":false,"last_id":"claude-sonnet-4-20250514"}`

func (f *fakeClaude) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, claudeModels)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	if r.URL.Path != "/v1/messages" || json.Unmarshal(body, &req) != nil {
		http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad request to the fake"}}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, req)
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()
	if n >= len(f.streams) {
		http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"no more scripted replies"}}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	bw := bufio.NewWriter(w)
	for _, ev := range f.streams[n] {
		bw.WriteString(ev + "\n\n")
		bw.Flush()
		w.(http.Flusher).Flush()
	}
}

func (f *fakeClaude) request(t *testing.T, i int) (map[string]any, http.Header) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.requests) {
		t.Fatalf("the fake API got %d requests, want at least %d", len(f.requests), i+1)
	}
	return f.requests[i], f.headers[i]
}

// sseEvent is one server-sent event of the Messages API stream.
func sseEvent(typ string, data string) string { return "event: " + typ + "\ndata: " + data }

// claudeStream is a whole streamed message: message_start, the content
// blocks (text streamed in deltas; tool_use input split over deltas),
// message_delta with the stop reason, message_stop.
func claudeStream(stop string, blocks ...[]string) []string {
	evs := []string{
		sseEvent("message_start", `{"type":"message_start","message":{"id":"msg_e2e","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":321,"output_tokens":1}}}`),
		sseEvent("ping", `{"type":"ping"}`),
	}
	for i, b := range blocks {
		for _, e := range b {
			evs = append(evs, strings.ReplaceAll(e, "@I", fmt.Sprint(i)))
		}
	}
	return append(evs,
		sseEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+stop+`","stop_sequence":null},"usage":{"output_tokens":42}}`),
		sseEvent("message_stop", `{"type":"message_stop"}`))
}

func textBlock(parts ...string) []string {
	evs := []string{sseEvent("content_block_start", `{"type":"content_block_start","index":@I,"content_block":{"type":"text","text":""}}`)}
	for _, p := range parts {
		q, _ := json.Marshal(p)
		evs = append(evs, sseEvent("content_block_delta", `{"type":"content_block_delta","index":@I,"delta":{"type":"text_delta","text":`+string(q)+`}}`))
	}
	return append(evs, sseEvent("content_block_stop", `{"type":"content_block_stop","index":@I}`))
}

func toolUseBlock(id, name string, inputParts ...string) []string {
	evs := []string{sseEvent("content_block_start", `{"type":"content_block_start","index":@I,"content_block":{"type":"tool_use","id":"`+id+`","name":"`+name+`","input":{}}}`)}
	for _, p := range inputParts {
		q, _ := json.Marshal(p)
		evs = append(evs, sseEvent("content_block_delta", `{"type":"content_block_delta","index":@I,"delta":{"type":"input_json_delta","partial_json":`+string(q)+`}}`))
	}
	return append(evs, sseEvent("content_block_stop", `{"type":"content_block_stop","index":@I}`))
}

// TestClaudeEndToEnd runs the real binary as a new user would, with
// ANTHROPIC_BASE_URL pointing at a local fake of the Messages API: a
// WebSocket client asks what is in the workspace, the model runs `ls`
// through the bash tool, the client sees the tool events and the reply,
// the transcript keeps the tool record, and the next turn's request replays
// it as a real tool_use / tool_result pair.
func TestClaudeEndToEnd(t *testing.T) {
	fake := &fakeClaude{streams: [][]string{
		claudeStream("tool_use", textBlock("Let me ", "look."), toolUseBlock("toolu_e2e_1", "bash", `{"comm`, `and": "ls"}`)),
		claudeStream("end_turn", textBlock("Your workspace ", "holds notes.txt.")),
		claudeStream("end_turn", textBlock("You're welcome.")),
	}}
	api := httptest.NewServer(fake)
	defer api.Close()

	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("remember the milk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(ws, ".mini-openclaw")
	g := startGateway(t, "gateway", gatewayEnv(ws, data, map[string]string{
		"MINI_OPENCLAW_PROVIDER": "",
		"ANTHROPIC_API_KEY":      "sk-ant-e2e-test-key",
		"ANTHROPIC_BASE_URL":     api.URL,
	}))
	defer g.terminate(10 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ready struct{ Provider string }
	if err := g.getJSON(ctx, "/readyz", &ready); err != nil || ready.Provider != "anthropic" {
		t.Fatalf("readyz provider %q (%v), want anthropic", ready.Provider, err)
	}
	c, err := dialSession(ctx, g.addr, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	// Turn 1: the events a client sees, in order.
	if err := c.send(ctx, "What files are in my workspace?"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		_, raw, err := c.c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev["type"] {
		case "chunk":
			got = append(got, "chunk "+ev["content"].(string))
		case "tool_start":
			in, _ := json.Marshal(ev["input"])
			got = append(got, fmt.Sprintf("tool_start %s %s %s", ev["toolName"], ev["toolCallId"], in))
		case "tool_done":
			got = append(got, fmt.Sprintf("tool_done %s %s %q error=%v", ev["toolName"], ev["toolCallId"], ev["output"], ev["isError"]))
		case "message_done":
			got = append(got, fmt.Sprintf("message_done %s stop=%s usage=%v", ev["content"], ev["stopReason"], ev["usage"] != nil))
		default:
			got = append(got, fmt.Sprintf("%s %s", ev["type"], raw))
		}
		if ev["type"] == "message_done" || ev["type"] == "error" {
			break
		}
	}
	want := []string{
		"chunk Let me ", "chunk look.",
		`tool_start bash toolu_e2e_1 {"command":"ls"}`,
		`tool_done bash toolu_e2e_1 "notes.txt" error=<nil>`,
		"chunk Your workspace ", "chunk holds notes.txt.",
		"message_done Your workspace holds notes.txt. stop=end_turn usage=true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The first request: the key, streaming, the system prompt and tools.
	req, hdr := fake.request(t, 0)
	if hdr.Get("X-Api-Key") != "sk-ant-e2e-test-key" || req["stream"] != true || req["model"] != "claude-sonnet-4-20250514" {
		t.Fatalf("first request: key %q stream %v model %v", hdr.Get("X-Api-Key"), req["stream"], req["model"])
	}
	if sys := fmt.Sprint(req["system"]); !strings.Contains(sys, "## Runtime Information") || !strings.Contains(sys, ws) {
		t.Fatalf("system prompt lacks runtime information: %.300s", sys)
	}
	var toolNames []string
	for _, tl := range req["tools"].([]any) {
		toolNames = append(toolNames, tl.(map[string]any)["name"].(string))
	}
	if !strings.Contains(strings.Join(toolNames, ","), "bash") {
		t.Fatalf("tools offered: %v", toolNames)
	}

	// The transcript keeps the tool record inside its assistant message.
	tr, err := os.ReadFile(filepath.Join(data, "sessions", "e2e.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(tr)), "\n")
	if len(lines) != 3 {
		t.Fatalf("transcript has %d lines, want user, assistant with the tool call, final assistant:\n%s", len(lines), tr)
	}
	var round struct {
		Role      string
		Content   string
		ToolCalls []struct {
			ID, Name, Output string
			Input            json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(lines[1]), &round); err != nil || round.Role != "assistant" || round.Content != "Let me look." ||
		len(round.ToolCalls) != 1 || round.ToolCalls[0].ID != "toolu_e2e_1" || round.ToolCalls[0].Output != "notes.txt" {
		t.Fatalf("tool round on disk: %s (%v)", lines[1], err)
	}

	// Turn 2: the history goes back to the model as real pairs.
	if err := c.send(ctx, "thanks"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitDone(ctx); err != nil {
		t.Fatalf("turn 2: %v", err)
	}
	// The cache breakpoints sit on the previous turn's last message and on
	// this one's; the time and memory (turn 1's daily log line) come last,
	// after the cached prefix, and the system prompt and tools are the
	// first request's, byte for byte.
	first, _ := fake.request(t, 0)
	req, _ = fake.request(t, 2)
	for _, k := range []string{"system", "tools"} {
		if a, b := fmt.Sprint(first[k]), fmt.Sprint(req[k]); a != b {
			t.Errorf("turn 2's %s differs from turn 1's:\n%s\n%s", k, b, a)
		}
	}
	turn2 := req["messages"].([]any)
	last := turn2[len(turn2)-1].(map[string]any)
	blocks := last["content"].([]any)
	volatile, _ := blocks[len(blocks)-1].(map[string]any)["text"].(string)
	if !strings.HasPrefix(volatile, "<miniclaw-context>\n- Time: ") || !strings.Contains(volatile, `asked "What files are in my workspace?"`) {
		t.Errorf("turn 2 does not end with the time and memory: %q", volatile)
	}
	last["content"] = blocks[:len(blocks)-1]
	msgs, _ := json.Marshal(turn2)
	wantMsgs := `[{"content":[{"text":"What files are in my workspace?","type":"text"}],"role":"user"},` +
		`{"content":[{"text":"Let me look.","type":"text"},{"id":"toolu_e2e_1","input":{"command":"ls"},"name":"bash","type":"tool_use"}],"role":"assistant"},` +
		`{"content":[{"cache_control":{"type":"ephemeral"},"content":[{"text":"notes.txt","type":"text"}],"is_error":false,"tool_use_id":"toolu_e2e_1","type":"tool_result"}],"role":"user"},` +
		`{"content":[{"text":"Your workspace holds notes.txt.","type":"text"}],"role":"assistant"},` +
		`{"content":[{"cache_control":{"type":"ephemeral"},"text":"thanks","type":"text"}],"role":"user"}]`
	if string(msgs) != wantMsgs {
		t.Fatalf("turn 2 history sent to the model:\n%s\nwant:\n%s", msgs, wantMsgs)
	}
}

// TestGatewayFindsARefusedKeyAtStartup: the gateway checks the key with one
// GET /v1/models in the background, after its listening line: a refused
// key is an error in the log naming ANTHROPIC_API_KEY (never the key), and
// /readyz answers 503 with providerCheck saying why, before any message.
func TestGatewayFindsARefusedKeyAtStartup(t *testing.T) {
	const key = "sk-ant-refused-at-startup"
	var requests atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`)
	}))
	defer api.Close()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, ".mini-openclaw"), map[string]string{
		"MINI_OPENCLAW_PROVIDER": "",
		"ANTHROPIC_API_KEY":      key,
		"ANTHROPIC_BASE_URL":     api.URL,
	}))
	defer g.terminate(10 * time.Second)

	var ready struct {
		Status        string
		Reason        string
		ProviderCheck string `json:"providerCheck"`
	}
	code := 0
	for deadline := time.Now().Add(startTimeout); ready.ProviderCheck == "" || ready.ProviderCheck == "checking"; {
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d %+v after %s", code, ready, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
		res, err := http.Get(g.url("/readyz"))
		if err != nil {
			t.Fatal(err)
		}
		code = res.StatusCode
		err = json.NewDecoder(res.Body).Decode(&ready)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	const why = "anthropic: the API key was refused (401 invalid x-api-key): check ANTHROPIC_API_KEY"
	if code != http.StatusServiceUnavailable || ready.Status != "not_ready" || ready.ProviderCheck != "rejected: "+why {
		t.Errorf("readyz = %d %+v, want 503 not_ready, providerCheck %q", code, ready, "rejected: "+why)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the gateway sent %d requests to the API, want 1", n)
	}
	log := g.stderr.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, why) || strings.Contains(log, key) {
		t.Errorf("log:\n%s\nwant an ERROR line with %q, and never the key", log, why)
	}
}
