package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// agentTarget is the gateway's own time in one agent turn: the turn as the
// client sees it minus the time the model (here a fake) took to answer.
const agentTarget = 5 * time.Millisecond

// agentFile is the workspace file the fake model reads with read_file; line
// R of it is what tool round R must return.
const agentFile = "bench-agent.txt"

func agentFixtureLine(r, k int) string {
	return fmt.Sprintf("miniclaw bench agent fixture, line %d of %d", r, k)
}

// agentMarker identifies a turn: it is the user message, and the fake finds
// it in every request of the turn, which is how its timings reach the client
// that sent the message. k is the number of tool rounds the fake plays
// before its final answer (0: a text-only turn).
type agentMarker struct{ s, n, k int }

func (m agentMarker) message() string {
	return fmt.Sprintf("bench agent s=%d n=%d k=%d", m.s, m.n, m.k)
}

func parseAgentMarker(text string) (agentMarker, bool) {
	var m agentMarker
	n, err := fmt.Sscanf(text, "bench agent s=%d n=%d k=%d", &m.s, &m.n, &m.k)
	return m, err == nil && n == 3 && m.message() == text
}

// agentReply is the final answer of a turn, as the fake streams it: ten
// text deltas. The client checks message_done.content against their join.
func agentReply(m agentMarker) []string {
	return []string{fmt.Sprintf("Turn %d of session %d: ", m.n, m.s), "the ", "fake ", "model ", "streams ", "this ", "answer ", "in ", "ten ", "deltas."}
}

func agentToolID(m agentMarker, r int) string {
	return fmt.Sprintf("toolu_bench_%d_%d_%d", m.s, m.n, r)
}

// fakeAnthropic is a local stand-in for POST /v1/messages with stream:true.
// It answers instantly and deterministically from the request body alone,
// and times each request from the moment its handler runs to the last byte
// flushed, so that model time can be taken out of a turn's duration.
type fakeAnthropic struct {
	srv      *http.Server
	url      string
	conns    atomic.Int64 // TCP connections the gateway opened to it
	requests atomic.Int64
	misses   // requests without a marker

	mu    sync.Mutex
	turns map[string]*fakeTurn
}

// fakeTurn is what the fake saw of one turn.
type fakeTurn struct {
	took     []time.Duration // per request, handler start → last byte flushed
	problems []string        // what was wrong with the requests
	finished bool
	done     chan struct{} // closed when the final answer was flushed
}

func startFakeAnthropic() (*fakeAnthropic, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeAnthropic{url: "http://" + ln.Addr().String(), turns: map[string]*fakeTurn{}}
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.conns.Add(1)
			}
		},
	}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *fakeAnthropic) close() { f.srv.Close() }

// turn returns the record of a turn, creating it: either the handler or the
// client waiting for it may come first. f.mu must be held.
func (f *fakeAnthropic) turn(key string) *fakeTurn {
	t := f.turns[key]
	if t == nil {
		t = &fakeTurn{done: make(chan struct{})}
		f.turns[key] = t
	}
	return t
}

func (f *fakeAnthropic) record(key string, took time.Duration, problem string, final bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.turn(key)
	t.took = append(t.took, took)
	if problem != "" {
		t.problems = append(t.problems, problem)
	}
	if final && !t.finished {
		t.finished = true
		close(t.done)
	}
}

// take waits (bounded) for the final answer of a turn and removes its
// record. The gateway may send message_done before the handler that
// flushed the last byte has recorded its time, hence the wait.
func (f *fakeAnthropic) take(m agentMarker, timeout time.Duration) (took []time.Duration, problems []string) {
	key := m.message()
	f.mu.Lock()
	t := f.turn(key)
	f.mu.Unlock()
	select {
	case <-t.done:
	case <-time.After(timeout):
		problems = append(problems, fmt.Sprintf("the fake did not serve the final answer of %q within %s", key, timeout))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.turns, key)
	return append([]time.Duration(nil), t.took...), append(problems, t.problems...)
}

// fakeRequest is the part of a Messages API request the fake reads.
type fakeRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"` // a string or an array of blocks
	} `json:"messages"`
	Tools []fakeTool `json:"tools"`
}

type fakeTool struct {
	Name string `json:"name"`
}

type fakeBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ToolUseID string          `json:"tool_use_id"`
	IsError   bool            `json:"is_error"`
	Content   json.RawMessage `json:"content"`
}

func fakeBlocks(content json.RawMessage) []fakeBlock {
	var s string
	if json.Unmarshal(content, &s) == nil {
		return []fakeBlock{{Type: "text", Text: s}}
	}
	var bs []fakeBlock
	json.Unmarshal(content, &bs)
	return bs
}

// turnState finds the turn's marker in the last user message that carries
// one and counts the assistant messages after it: that many tool rounds are
// done. It also checks the request against what the fake asked for.
func (req *fakeRequest) turnState() (m agentMarker, round int, problem string, ok bool) {
	at := -1
	for i := len(req.Messages) - 1; i >= 0 && at < 0; i-- {
		if req.Messages[i].Role != "user" {
			continue
		}
		for _, b := range fakeBlocks(req.Messages[i].Content) {
			if b.Type == "text" {
				if mk, found := parseAgentMarker(b.Text); found {
					m, at = mk, i
					break
				}
			}
		}
	}
	if at < 0 {
		return m, 0, "", false
	}
	for _, msg := range req.Messages[at+1:] {
		if msg.Role == "assistant" {
			round++
		}
	}
	var problems []string
	if !req.Stream {
		problems = append(problems, "stream is not true")
	}
	if round < m.k && !slices.Contains(req.Tools, fakeTool{Name: "read_file"}) {
		problems = append(problems, "read_file is not among the tools")
	}
	if round > 0 {
		last := req.Messages[len(req.Messages)-1]
		found := false
		for _, b := range fakeBlocks(last.Content) {
			if last.Role == "user" && b.Type == "tool_result" && b.ToolUseID == agentToolID(m, round) {
				found = true
				if b.IsError || !bytes.Contains(b.Content, []byte(agentFixtureLine(round, m.k))) {
					problems = append(problems, fmt.Sprintf("round %d: tool_result is_error=%v, content %.200s", round, b.IsError, b.Content))
				}
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("round %d: the last message has no tool_result for %s", round, agentToolID(m, round)))
		}
	}
	return m, round, strings.Join(problems, "; "), true
}

func (f *fakeAnthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	f.requests.Add(1)
	var req fakeRequest
	body, ok := readFakeRequest(w, r, 32<<20, &req, f.unmatch)
	if !ok {
		return
	}
	m, round, problem, ok := req.turnState()
	if !ok {
		f.unmatch(fmt.Sprintf("no bench marker in %d messages", len(req.Messages)))
		fakeError(w, http.StatusBadRequest, "invalid_request_error", "no bench agent marker in the user messages")
		return
	}
	final := round >= m.k
	var stream []byte
	if final {
		stream = textStream(req.Model, m, round, len(body))
	} else {
		stream = toolStream(req.Model, m, round+1, len(body))
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeFakeStream(w, stream)
	f.record(m.message(), time.Since(t0), problem, final)
}

// misses counts the requests a fake could not place, and keeps the first
// one's description. Read it once the fake has stopped.
type misses struct {
	mu        sync.Mutex
	unmatched int
	sample    string
}

func (m *misses) unmatch(why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unmatched++
	if m.sample == "" {
		m.sample = why
	}
}

// fakeModels is the Models API's answer to GET /v1/models, which the
// gateway sends once at startup to check its key.
const fakeModels = `{"data":[{"created_at":"2025-05-22T00:00:00Z","display_name":"Claude Sonnet 4","id":"claude-sonnet-4-20250514","type":"model"}],"first_id":"claude-sonnet-4-20250514","has_more":false,"last_id":"claude-sonnet-4-20250514"}`

// readFakeRequest decodes the body of a POST /v1/messages into req, at
// most maxBody bytes of it. It answers the key check (GET /v1/models) and
// anything else as the API does, and a body that is not JSON with
// invalid_request_error, telling unmatch why; !ok means the response is
// written.
func readFakeRequest(w http.ResponseWriter, r *http.Request, maxBody int64, req any, unmatch func(why string)) (body []byte, ok bool) {
	if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, fakeModels)
		return nil, false
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		fakeError(w, http.StatusNotFound, "not_found_error", "the fake serves only POST /v1/messages")
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, false
	}
	if err := json.Unmarshal(body, req); err != nil {
		unmatch("unreadable body: " + err.Error())
		fakeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return nil, false
	}
	return body, true
}

// writeFakeStream answers 200 with an SSE body, one write and flush per
// event, as the API streams them. A fixed length lets the client see the
// end of the body with the last event; with chunked encoding the
// terminating chunk would go out after the fake's clock stops and its
// delay would count as gateway time.
func writeFakeStream(w http.ResponseWriter, stream []byte) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(stream)))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	for ev := range bytes.SplitAfterSeq(stream, []byte("\n\n")) {
		if _, err := w.Write(ev); err != nil {
			break
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

// fakeError answers like the API does when it refuses a request.
func fakeError(w http.ResponseWriter, status int, typ, msg string) {
	body, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// sse builds an event stream in the Messages API's wire format, with the
// event shapes of internal/provider/anthropic/testdata/*.sse.
type sse struct{ bytes.Buffer }

func (s *sse) event(name, format string, args ...any) {
	fmt.Fprintf(&s.Buffer, "event: %s\ndata: "+format+"\n\n", append([]any{name}, args...)...)
}

func jsonString(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *sse) start(model, id string, inputTokens int) {
	s.event("message_start", `{"type":"message_start","message":{"id":%s,"type":"message","role":"assistant","content":[],"model":%s,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}`,
		jsonString(id), jsonString(model), inputTokens)
}

func (s *sse) stop(reason string, outputTokens int) {
	s.event("message_delta", `{"type":"message_delta","delta":{"stop_reason":%s,"stop_sequence":null},"usage":{"output_tokens":%d}}`, jsonString(reason), outputTokens)
	s.event("message_stop", `{"type":"message_stop"}`)
}

// textStream is the final answer of a turn: agentReply's ten text deltas.
func textStream(model string, m agentMarker, round, bodyLen int) []byte {
	var s sse
	s.start(model, fmt.Sprintf("msg_bench_%d_%d_%d", m.s, m.n, round), bodyLen/4)
	s.event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	s.event("ping", `{"type": "ping"}`)
	parts := agentReply(m)
	for _, p := range parts {
		s.event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%s}}`, jsonString(p))
	}
	s.event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	s.stop("end_turn", 2*len(parts))
	return s.Bytes()
}

// toolStream is tool round r: one read_file call of line r of agentFile,
// its input split over several input_json_delta events as the API does.
// The offset changes every round, or the runtime would stop a third
// identical call as a loop.
func toolStream(model string, m agentMarker, r, bodyLen int) []byte {
	var s sse
	s.start(model, fmt.Sprintf("msg_bench_%d_%d_%d", m.s, m.n, r), bodyLen/4)
	s.event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":%s,"name":"read_file","input":{}}}`, jsonString(agentToolID(m, r)))
	s.event("ping", `{"type": "ping"}`)
	input := fmt.Sprintf(`{"path": %s, "offset": %d, "limit": 1}`, jsonString(agentFile), r)
	third := len(input) / 3
	for _, p := range []string{"", input[:third], input[third : 2*third], input[2*third:]} {
		s.event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":%s}}`, jsonString(p))
	}
	s.event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	s.stop("tool_use", 40)
	return s.Bytes()
}

// agentSpec describes one closed-loop run of agent turns of one shape.
type agentSpec struct {
	sessions    int
	rounds      int // tool rounds per turn; 0 = text only
	warmup      time.Duration
	duration    time.Duration
	turnTimeout time.Duration
}

// agentObs is one turn as the client saw it.
type agentObs struct {
	sent, done time.Time
	fake       []time.Duration // the fake's time for each model request of the turn
	failed     string          // the turn did not complete (error event)
	wrong      string          // it completed, but not as the fake played it
}

type agentClientStats struct {
	overhead, turn, fake []time.Duration
	completed            int
	failures, wrong      int
	samples              []string
}

func (s *agentClientStats) sample(msg string) {
	if len(s.samples) < 2 {
		s.samples = append(s.samples, msg)
	}
}

// agentResult is a finished agent run.
type agentResult struct {
	spec                    agentSpec
	overhead, turn, fake    []time.Duration // sorted; fake is per model request
	completed               int
	window                  time.Duration
	failures, wrong         int
	samples                 []string
	serverCPU, benchCPU     time.Duration
	fakeConns, fakeRequests int64 // over the whole run, warm-up included
}

func (r *agentResult) turnsPerSec() float64 { return float64(r.completed) / r.window.Seconds() }

// runAgent opens one connection per session and runs closed-loop turns of
// one shape for the warm-up plus the duration; turns sent after the warm-up
// are measured.
func runAgent(ctx context.Context, c *child, fake *fakeAnthropic, sp agentSpec) (*agentResult, error) {
	shape := "text"
	if sp.rounds > 0 {
		shape = "tools"
	}
	ids := make([]string, sp.sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent-%s-%d", shape, i)
	}
	conns, err := dialMany(ctx, []*child{c}, ids, 64)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	conns0, reqs0 := fake.conns.Load(), fake.requests.Load()

	warmEnd := time.Now().Add(sp.warmup)
	runCtx, cancel := context.WithDeadline(ctx, warmEnd.Add(sp.duration))
	defer cancel()
	stats := make([]agentClientStats, len(conns))
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Go(func() { agentClient(runCtx, ws, fake, i, sp, warmEnd, &stats[i]) })
	}
	select {
	case <-time.After(time.Until(warmEnd)):
	case <-runCtx.Done():
	}
	cpu0, self0 := cpuTime(c.pid), cpuTime(os.Getpid())
	measureStart := time.Now()
	<-runCtx.Done()
	window := time.Since(measureStart)
	cpu1, self1 := cpuTime(c.pid), cpuTime(os.Getpid())

	// Clients finish the turn they are in, each bounded by turnTimeout.
	if err := waitClients(&wg, conns, sp.turnTimeout+10*time.Second); err != nil {
		return nil, fmt.Errorf("agent clients: %w", err)
	}

	r := &agentResult{spec: sp, window: window, serverCPU: cpu1 - cpu0, benchCPU: self1 - self0,
		fakeConns: fake.conns.Load() - conns0, fakeRequests: fake.requests.Load() - reqs0}
	for i := range stats {
		s := &stats[i]
		r.overhead = append(r.overhead, s.overhead...)
		r.turn = append(r.turn, s.turn...)
		r.fake = append(r.fake, s.fake...)
		r.completed += s.completed
		r.failures += s.failures
		r.wrong += s.wrong
		if len(r.samples) < 3 {
			r.samples = append(r.samples, s.samples...)
		}
	}
	r.overhead, r.turn, r.fake = sortedDurations(r.overhead), sortedDurations(r.turn), sortedDurations(r.fake)
	return r, nil
}

func agentClient(ctx context.Context, ws *websocket.Conn, fake *fakeAnthropic, i int, sp agentSpec, warmEnd time.Time, st *agentClientStats) {
	for n := range maxTurnsPerClient {
		if ctx.Err() != nil {
			return
		}
		measured := !time.Now().Before(warmEnd)
		obs, err := agentTurn(ws, fake, agentMarker{s: i, n: n, k: sp.rounds}, sp.turnTimeout)
		if err != nil {
			st.failures++
			st.sample(err.Error())
			return
		}
		switch {
		case obs.failed != "":
			st.failures++
			st.sample(obs.failed)
			continue
		case obs.wrong != "":
			st.wrong++
			st.sample(obs.wrong)
			continue
		}
		if !obs.done.Before(warmEnd) && ctx.Err() == nil {
			st.completed++
		}
		if measured {
			turn := obs.done.Sub(obs.sent)
			model := time.Duration(0)
			for _, d := range obs.fake {
				model += d
			}
			st.turn = append(st.turn, turn)
			st.overhead = append(st.overhead, turn-model)
			st.fake = append(st.fake, obs.fake...)
		}
	}
}

// agentTurn sends one message and reads its events up to message_done,
// checking them against what the fake plays: k tool_start/tool_done pairs
// of read_file returning line R in round R, chunks and message_done.content
// both equal to the final answer, and k+1 model requests seen by the fake.
// err means the connection is no longer usable.
func agentTurn(ws *websocket.Conn, fake *fakeAnthropic, m agentMarker, timeout time.Duration) (obs agentObs, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	want := strings.Join(agentReply(m), "")
	if obs.sent, err = sendMessage(ctx, ws, m.message()); err != nil {
		return obs, err
	}
	var chunks strings.Builder
	var wrong []string
	starts, dones := 0, 0
	for range 1000 { // far more events than a turn has
		var ev turnEvent
		now, err := readEvent(ctx, ws, &ev)
		if err != nil {
			return obs, err
		}
		switch ev.Type {
		case "chunk":
			chunks.WriteString(ev.Content)
		case "tool_start":
			starts++
			if ev.ToolName != "read_file" {
				wrong = append(wrong, "tool_start of "+ev.ToolName)
			}
		case "tool_done":
			dones++
			if ev.IsError || !strings.Contains(ev.Output, agentFixtureLine(dones, m.k)) {
				wrong = append(wrong, fmt.Sprintf("tool_done %d: isError=%v output %q", dones, ev.IsError, ev.Output))
			}
		case "message_done":
			obs.done = now
			if ev.Content != want || chunks.String() != want {
				wrong = append(wrong, fmt.Sprintf("message_done %q, chunks %q, want %q", ev.Content, chunks.String(), want))
			}
			if starts != m.k || dones != m.k {
				wrong = append(wrong, fmt.Sprintf("%d tool_start and %d tool_done, want %d each", starts, dones, m.k))
			}
			took, problems := fake.take(m, 5*time.Second)
			obs.fake = took
			wrong = append(wrong, problems...)
			if len(took) != m.k+1 {
				wrong = append(wrong, fmt.Sprintf("the fake served %d model requests, want %d", len(took), m.k+1))
			}
			obs.wrong = strings.Join(wrong, "; ")
			return obs, nil
		case "error":
			obs.failed = fmt.Sprintf("error event %s: %s", ev.Code, ev.Message)
			fake.take(m, 0) // drop whatever the fake recorded
			return obs, nil
		}
	}
	return obs, errors.New("no message_done after 1000 events")
}

// measureAgent runs, for each -agent-sessions count, a gateway on the
// Anthropic provider against the fake, first with text-only turns, then
// with turns of -agent-tool-rounds read_file rounds.
func measureAgent(ctx context.Context, b *bench) error {
	k := b.cfg.agentRounds
	for _, n := range b.cfg.agentSessions {
		if err := b.agentRun(ctx, n); err != nil {
			return fmt.Errorf("agent %d sessions: %w", n, err)
		}
	}
	b.note("agent: the gateway runs the real Anthropic provider (MINI_OPENCLAW_PROVIDER=anthropic, ANTHROPIC_BASE_URL pointing at a fake Messages API in the bench process, set in the child's environment). The fake answers POST /v1/messages with stream:true at once, in the API's SSE format, one write and flush per event, decided by the request body alone: it finds the user message `bench agent s=S n=N k=K`, counts the assistant messages after it (the tool rounds done) and answers with one read_file tool_use (input split over input_json_delta events) while fewer than K rounds are done, else with the final answer in 10 text_delta events. It times each request from its handler start (body read and parsed included) to the last byte flushed. **overhead** = client send of `message` → `message_done` received, minus the sum of the fake's times for that turn's requests: the gateway's persistence, prompt, provider (SDK request encoding, SSE parsing), tool runs and relay, plus the bench client's WebSocket write and read. **per tool round** = (tool-turn overhead p50 − text-turn overhead p50) / %d, and the same difference of gateway CPU per turn (user+system, /proc) / %[1]d. Each turn is checked: chunks and message_done.content equal the streamed answer, %d tool_start/tool_done pairs with line R of %s in round R, and the fake saw %d requests, each carrying the previous round's tool_result. Closed loop, warm-up %s then %s measured per shape; FSYNC=%s. The %s target applies to the 1-session run: with more sessions and no think time the closed loop saturates the CPU and a turn mostly waits for it (Little's law), so those rows are capacity figures; gateway CPU/turn is its cost.",
		k, k, agentFile, k+1, b.cfg.agentWarmup, b.cfg.agentDuration, b.cfg.agentFsync, ms(agentTarget))
	return nil
}

// agentRun measures both turn shapes at one concurrency on a fresh gateway
// and fake, and adds their rows.
func (b *bench) agentRun(ctx context.Context, sessions int) error {
	fake, err := startFakeAnthropic()
	if err != nil {
		return err
	}
	defer fake.close()
	o, err := b.dataDirs(fmt.Sprintf("agent-%d-%d", sessions, time.Now().UnixNano()))
	if err != nil {
		return err
	}
	o.fsync = b.cfg.agentFsync
	k := b.cfg.agentRounds
	var file strings.Builder
	for r := 1; r <= k; r++ {
		file.WriteString(agentFixtureLine(r, k) + "\n")
	}
	if err := os.WriteFile(filepath.Join(o.workspace, agentFile), []byte(file.String()), 0o600); err != nil {
		return err
	}
	o.env = []string{"MINI_OPENCLAW_PROVIDER=anthropic", "ANTHROPIC_API_KEY=bench-fake-key", "ANTHROPIC_BASE_URL=" + fake.url}
	c, err := startChild(b.bin, o)
	if err != nil {
		return err
	}
	defer c.kill()
	if _, err := c.waitReady(30 * time.Second); err != nil {
		return err
	}
	if _, body, err := getBody(ctx, c.base+"/readyz"); err != nil || !bytes.Contains(body, []byte(`"provider":"anthropic"`)) {
		return fmt.Errorf("the gateway does not run the anthropic provider: readyz %s %v", body, err)
	}

	label := fmt.Sprintf("agent, %d session(s), fsync=%s", sessions, b.cfg.agentFsync)
	target, status := "—", "info"
	if sessions == 1 {
		target = "< " + ms(agentTarget) + " (p99)"
	}
	st := func(p99 time.Duration) string {
		if sessions != 1 {
			return status
		}
		return verdict(p99 < agentTarget)
	}
	var res [2]*agentResult
	for i, rounds := range []int{0, k} {
		logf("  %d sessions, %d tool rounds per turn: %s warm-up + %s", sessions, rounds, b.cfg.agentWarmup, b.cfg.agentDuration)
		r, err := runAgent(ctx, c, fake, agentSpec{sessions: sessions, rounds: rounds, warmup: b.cfg.agentWarmup, duration: b.cfg.agentDuration, turnTimeout: b.cfg.turnTimeout})
		if err != nil {
			return err
		}
		if len(r.overhead) == 0 {
			return fmt.Errorf("%d tool rounds: no turn completed in the measured window (%d failures, %d wrong: %v)", rounds, r.failures, r.wrong, r.samples)
		}
		if r.failures > 0 || r.wrong > 0 {
			b.note("%s, %d tool rounds: %d failed turns and %d wrong ones, e.g. %s", label, rounds, r.failures, r.wrong, oneLine(fmt.Sprint(r.samples)))
		}
		res[i] = r
	}
	text, tools := res[0], res[1]
	b.add(label+": text turn overhead",
		fmt.Sprintf("p50 %s, p99 %s (turn p50 %s, of which the fake %s; %d turns)", ms(pct(text.overhead, 50)), ms(pct(text.overhead, 99)), ms(pct(text.turn, 50)), ms(pct(text.fake, 50)), len(text.overhead)),
		target, st(pct(text.overhead, 99)))
	perTurn := func(r *agentResult, d time.Duration) time.Duration { return d / time.Duration(max(1, r.completed)) }
	perRound := (pct(tools.overhead, 50) - pct(text.overhead, 50)) / time.Duration(k)
	cpuRound := (perTurn(tools, tools.serverCPU) - perTurn(text, text.serverCPU)) / time.Duration(k)
	b.add(fmt.Sprintf("%s: %d-tool-round turn overhead", label, k),
		fmt.Sprintf("p50 %s, p99 %s; **per tool round %s**, gateway CPU %s (turn p50 %s; %d turns)", ms(pct(tools.overhead, 50)), ms(pct(tools.overhead, 99)), ms(perRound), ms(cpuRound), ms(pct(tools.turn, 50)), len(tools.overhead)),
		target, st(pct(tools.overhead, 99)))
	cpu := func(r *agentResult, d time.Duration) string { return ms(perTurn(r, d)) }
	fakeAll := sortedDurations(append(slices.Clone(text.fake), tools.fake...))
	b.add(label+": turns/s, fake time per request",
		fmt.Sprintf("text **%s turns/s**, %d-round **%s turns/s** (%s model calls/s); gateway CPU %s/text turn, %s/tool turn; bench CPU (clients + fake) %s, %s; fake per request p50 %s, p99 %s; %d failures, %d wrong",
			thousands(text.turnsPerSec()), k, thousands(tools.turnsPerSec()), thousands(tools.turnsPerSec()*float64(k+1)),
			cpu(text, text.serverCPU), cpu(tools, tools.serverCPU), cpu(text, text.benchCPU), cpu(tools, tools.benchCPU),
			ms(pct(fakeAll, 50)), ms(pct(fakeAll, 99)), text.failures+tools.failures, text.wrong+tools.wrong),
		"—", "info")
	fake.mu.Lock()
	if fake.unmatched > 0 {
		b.note("%s: the fake got %d requests without a bench marker, first: %s", label, fake.unmatched, fake.sample)
	}
	fake.mu.Unlock()
	b.note("%s: the gateway opened %d TCP connections to the fake for %d model requests (text run) and %d for %d (tool run); more than one per few requests means its HTTP client keeps fewer idle connections than there are concurrent streams, so it reconnects (against the real API, with a TLS handshake each time)", label, text.fakeConns, text.fakeRequests, tools.fakeConns, tools.fakeRequests)
	b.noteWarnings(c, label)
	return nil
}
