package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cacheLookback is how many block boundaries before a breakpoint the
// Messages API checks for a cache hit ("about 20 blocks" in its docs).
const cacheLookback = 20

// windowFake is a local Messages API with a context window: it counts each
// request's tokens (windowTokens of its canonical bytes), refuses one over
// the window with the API's 400 "prompt is too long", reports usage
// consistent with its count, and simulates Anthropic's prefix cache.
// It plays the long-session script (longTurn) from the request alone.
type windowFake struct {
	srv    *http.Server
	url    string
	window int // tokens
	misses     // requests the fake did not recognise

	mu    sync.Mutex
	cache map[[32]byte]struct{} // chain hashes of the prefixes written to the cache
	// prev is the canonical bytes of the previous accepted request, and
	// prevConv the same of the previous one that was not a summary request.
	prev, prevConv []byte
	log            []*windowRequest
}

// Kinds of request the fake recognises.
const (
	kindReadTool = "read"     // a read turn's first request: answered with a read_file tool_use
	kindReadDone = "readDone" // after the tool result: the turn's reply
	kindQuestion = "question" // a short question: the turn's reply
	kindSummary  = "summary"  // a compaction's summary request
	kindOther    = "other"    // none of the above: answered "ok" and counted as unmatched
)

// windowRequest is what the fake saw of one request.
type windowRequest struct {
	kind      string
	turn      int
	bytes     int // canonical bytes: tools, system, messages
	tokens    int
	breaks    int // blocks carrying cache_control
	lastBreak int // canonical bytes up to the end of the last of them
	prefix    int // bytes identical to the previous request's prefix (see account)
	shared    int // prefix, counted only up to lastBreak
	// seen is the most a prefix cache could serve: the bytes the previous
	// conversation request already carried (what is new in this one, such
	// as a file just read, no cache can serve).
	seen   int
	over   bool
	input  int // usage the fake reported: full price, cache read, cache write, output
	read   int
	write  int
	output int
	start  time.Time
	end    time.Time
}

// windowTokens is the fake's tokenizer: one token per 4 bytes, rounded up.
func windowTokens(bytes int) int { return (bytes + 3) / 4 }

func startWindowFake(window int) (*windowFake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &windowFake{url: "http://" + ln.Addr().String(), window: window, cache: map[[32]byte]struct{}{}}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *windowFake) close() { f.srv.Close() }

// requests returns a copy of the request log.
func (f *windowFake) requests() []windowRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]windowRequest, len(f.log))
	for i, r := range f.log {
		out[i] = *r
	}
	return out
}

// canonical is a request's input as the cache sees it: the tools, the
// system blocks and the message content blocks in that order (the API's
// prefix order), each block re-encoded without its cache_control (a
// breakpoint marks a position, it is not part of the prompt), a message's
// role written before its first block.
type canonical struct {
	buf    []byte
	ends   []int      // end offset of each block in buf
	chain  [][32]byte // chain[i] identifies buf[:ends[i]]: sha256(chain[i-1] || block i)
	breaks []int      // indexes of the blocks that carried cache_control
}

func (c *canonical) add(prefix string, block any) error {
	marked := stripCacheControl(block)
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	if err := e.Encode(block); err != nil {
		return err
	}
	b := append([]byte(prefix), bytes.TrimSuffix(enc.Bytes(), []byte("\n"))...)
	var prev [32]byte
	if n := len(c.chain); n > 0 {
		prev = c.chain[n-1]
	}
	h := sha256.New()
	h.Write(prev[:])
	h.Write(b)
	c.buf = append(c.buf, b...)
	c.ends = append(c.ends, len(c.buf))
	c.chain = append(c.chain, [32]byte(h.Sum(nil)))
	if marked {
		c.breaks = append(c.breaks, len(c.ends)-1)
	}
	return nil
}

// lastBreak is the canonical length up to the end of the last breakpoint's
// block, 0 without breakpoints.
func (c *canonical) lastBreak() int {
	if len(c.breaks) == 0 {
		return 0
	}
	return c.ends[c.breaks[len(c.breaks)-1]]
}

// stripCacheControl deletes every cache_control key in v and reports
// whether there was one.
func stripCacheControl(v any) bool {
	found := false
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["cache_control"]; ok {
			delete(t, "cache_control")
			found = true
		}
		for _, x := range t {
			found = stripCacheControl(x) || found
		}
	case []any:
		for _, x := range t {
			found = stripCacheControl(x) || found
		}
	}
	return found
}

// windowBody is the part of a request the fake reads.
type windowBody struct {
	Model    string            `json:"model"`
	Stream   bool              `json:"stream"`
	System   json.RawMessage   `json:"system"`
	Tools    []json.RawMessage `json:"tools"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// decodeAny decodes JSON keeping numbers as they were written.
func decodeAny(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// blocksOf decodes a content or system field: a string is one text block.
func blocksOf(raw json.RawMessage) ([]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	v, err := decodeAny(raw)
	if err != nil {
		return nil, err
	}
	switch t := v.(type) {
	case string:
		return []any{map[string]any{"type": "text", "text": t}}, nil
	case []any:
		return t, nil
	}
	return nil, fmt.Errorf("content is neither a string nor an array: %.100s", raw)
}

func canonicalize(req *windowBody) (*canonical, error) {
	c := &canonical{}
	for i, raw := range req.Tools {
		t, err := decodeAny(raw)
		if err != nil {
			return nil, fmt.Errorf("tools[%d]: %w", i, err)
		}
		if err := c.add("", t); err != nil {
			return nil, err
		}
	}
	sys, err := blocksOf(req.System)
	if err != nil {
		return nil, fmt.Errorf("system: %w", err)
	}
	for _, b := range sys {
		if err := c.add("", b); err != nil {
			return nil, err
		}
	}
	for i, m := range req.Messages {
		blocks, err := blocksOf(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		for j, b := range blocks {
			prefix := ""
			if j == 0 {
				prefix = "\n" + m.Role + ": "
			}
			if err := c.add(prefix, b); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// account sizes a request, decides whether it is over the window and, if
// not, what the simulated cache serves:
//
//   - cache read = the longest prefix that ends at a block boundary at most
//     cacheLookback blocks before one of the request's breakpoints and that
//     an earlier request wrote to the cache;
//   - cache write = the rest up to the last breakpoint; every breakpoint's
//     prefix is then in the cache (no TTL: the run is short);
//   - input (full price) = everything after the last breakpoint.
//
// shared, the measure of what a prefix cache could serve, is the bytes
// identical to the previous request's (or the previous non-summary
// request's) canonical bytes, counted only up to the last breakpoint.
func (f *windowFake) account(c *canonical, kind string, turn int, start time.Time) *windowRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &windowRequest{kind: kind, turn: turn, bytes: len(c.buf), tokens: windowTokens(len(c.buf)),
		breaks: len(c.breaks), lastBreak: c.lastBreak(), start: start}
	f.log = append(f.log, r)
	if r.over = r.tokens > f.window; r.over {
		return r
	}
	r.prefix = max(commonPrefix(c.buf, f.prev), commonPrefix(c.buf, f.prevConv))
	r.shared = min(r.prefix, r.lastBreak)
	r.seen = min(len(c.buf), len(f.prevConv))
	hit := 0
	for _, bi := range c.breaks {
		for j := bi; j >= 0 && j > bi-cacheLookback; j-- {
			if _, ok := f.cache[c.chain[j]]; ok {
				hit = max(hit, c.ends[j])
				break
			}
		}
	}
	for _, bi := range c.breaks {
		f.cache[c.chain[bi]] = struct{}{}
	}
	r.read = windowTokens(hit)
	r.write = windowTokens(r.lastBreak) - r.read
	r.input = r.tokens - r.read - r.write
	f.prev = c.buf
	if kind != kindSummary {
		f.prevConv = c.buf
	}
	return r
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

var longMarkerRE = regexp.MustCompile(`\[t=(\d+)\]`)

// classify finds what the request asks for. A request without tools, or
// whose last user text is not one of the script's messages nor a tool
// result, is taken for a compaction's summary request when it mentions a
// summary or a compaction (the runtime's summary prompt is not known
// here, so the rule is deliberately loose); the WebSocket's compaction
// events are counted apart.
func classify(req *windowBody) (kind string, t longTurn) {
	n := len(req.Messages)
	switch {
	case n == 0:
		return kindOther, t
	case len(req.Tools) == 0:
		return kindSummary, t
	case req.Messages[n-1].Role != "user":
		return kindOther, t
	}
	last := fakeBlocks(req.Messages[n-1].Content)
	// The turn's volatile context (time, memory) rides after the
	// conversation as the last user text; what the turn is about comes
	// before it.
	for len(last) > 0 && last[len(last)-1].Type == "text" && strings.HasPrefix(last[len(last)-1].Text, "<miniclaw-context>") {
		last = last[:len(last)-1]
	}
	if len(last) == 0 {
		return kindOther, t
	}
	switch b := last[len(last)-1]; b.Type {
	case "text":
		if t, ok := parseLongMessage(b.Text); ok {
			if t.file != "" {
				return kindReadTool, t
			}
			return kindQuestion, t
		}
		if text := strings.ToLower(b.Text); strings.Contains(text, "summar") || strings.Contains(text, "compact") {
			return kindSummary, t
		}
	case "tool_result":
		// The turn is the last script message before the result.
		for i := n - 1; i >= 0; i-- {
			if req.Messages[i].Role != "user" {
				continue
			}
			bs := fakeBlocks(req.Messages[i].Content)
			for j := len(bs) - 1; j >= 0; j-- {
				if t, ok := parseLongMessage(bs[j].Text); ok && bs[j].Type == "text" && t.file != "" {
					return kindReadDone, t
				}
			}
		}
	}
	return kindOther, t
}

// summaryText is the fake's summary: short, and free of the words the
// classifier looks for, so a request that carries it is not mistaken for a
// summary request.
func summaryText(body []byte) string {
	upTo := 0
	for _, m := range longMarkerRE.FindAllSubmatch(body, -1) {
		if n, err := strconv.Atoi(string(m[1])); err == nil {
			upTo = max(upTo, n)
		}
	}
	return fmt.Sprintf("Recap of the conversation up to turn %d. The user asks, one turn at a time, to read text files of the workspace (bigN.txt) and to say their first line, and asks short arithmetic questions; the assistant read each file with read_file and answered each question. Decisions: none. Files touched: read only, none written. Open threads: none. Facts to keep: each bigN.txt holds about one hundred lines per ten kilobytes, and its line K reads \"bigN.txt line K: ...\".", upTo)
}

func (f *windowFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req windowBody
	body, ok := readFakeRequest(w, r, 64<<20, &req, f.unmatch)
	if !ok {
		return
	}
	c, err := canonicalize(&req)
	if err != nil {
		f.unmatch(err.Error())
		fakeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	kind, t := classify(&req)
	rec := f.account(c, kind, t.n, start)
	if rec.over {
		fakeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("prompt is too long: %d tokens > %d maximum", rec.tokens, f.window))
		f.finish(rec, 0)
		return
	}
	var s sse
	id := fmt.Sprintf("msg_long_%d", start.UnixNano())
	s.event("message_start", `{"type":"message_start","message":{"id":%s,"type":"message","role":"assistant","content":[],"model":%s,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":1,"service_tier":"standard"}}}`,
		jsonString(id), jsonString(req.Model), rec.input, rec.write, rec.read)
	var out int
	switch kind {
	case kindReadTool:
		out = s.toolUse(t.toolID(), "read_file", fmt.Sprintf(`{"path": %s}`, jsonString(t.file)))
	case kindReadDone, kindQuestion:
		out = s.text(t.reply())
	case kindSummary:
		out = s.text(summaryText(body))
	default:
		f.unmatch(fmt.Sprintf("%d messages, %d tools, the last message %.200s", len(req.Messages), len(req.Tools), req.Messages[len(req.Messages)-1].Content))
		out = s.text("ok")
	}
	writeFakeStream(w, s.Bytes())
	f.finish(rec, out)
}

func (f *windowFake) finish(r *windowRequest, output int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.output, r.end = output, time.Now()
}

// text streams a text content block in three deltas, then the stop events,
// and returns the output tokens it reported.
func (s *sse) text(reply string) int {
	s.event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	third := len(reply) / 3
	for _, p := range []string{reply[:third], reply[third : 2*third], reply[2*third:]} {
		s.event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%s}}`, jsonString(p))
	}
	s.event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	out := windowTokens(len(reply))
	s.stop("end_turn", out)
	return out
}

// toolUse streams one tool_use block, its input split over input_json_delta
// events as the API does, and returns the output tokens it reported.
func (s *sse) toolUse(id, name, input string) int {
	s.event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":%s,"name":%s,"input":{}}}`, jsonString(id), jsonString(name))
	half := len(input) / 2
	for _, p := range []string{"", input[:half], input[half:]} {
		s.event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":%s}}`, jsonString(p))
	}
	s.event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	out := windowTokens(len(input)) + 10
	s.stop("tool_use", out)
	return out
}
