package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// longSessionID is the session the long-session measurement drives.
const longSessionID = "long-1"

// longCacheTarget is the share of input bytes a prefix cache should be able
// to serve outside compactions.
const longCacheTarget = 0.90

// longTurn is turn n (from 1) of the scripted long session: odd turns ask
// to read a workspace file, even turns ask a short question.
type longTurn struct {
	n    int
	file string // "" for a question
}

func longTurnAt(n, files int) longTurn {
	if n%2 == 1 {
		return longTurn{n: n, file: longFileName((n/2)%files + 1)}
	}
	return longTurn{n: n}
}

func longFileName(i int) string { return fmt.Sprintf("big%d.txt", i) }

func (t longTurn) message() string {
	if t.file != "" {
		return fmt.Sprintf("please read %s and tell me its first line [t=%d]", t.file, t.n)
	}
	return fmt.Sprintf("short question: what is %d times 7? [t=%d]", t.n, t.n)
}

var longMessageRE = regexp.MustCompile(`^(?:please read (big\d+\.txt) and tell me its first line|short question: what is \d+ times 7\?) \[t=(\d+)\]$`)

// parseLongMessage recognises a message of the script, exactly.
func parseLongMessage(s string) (longTurn, bool) {
	m := longMessageRE.FindStringSubmatch(s)
	if m == nil {
		return longTurn{}, false
	}
	n, err := strconv.Atoi(m[2])
	t := longTurn{n: n, file: m[1]}
	return t, err == nil && t.message() == s
}

// reply is the fake's answer that ends the turn.
func (t longTurn) reply() string {
	if t.file != "" {
		return fmt.Sprintf("The first line of %s is %q. [t=%d]", t.file, longFileLine(t.file, 1), t.n)
	}
	return fmt.Sprintf("%d times 7 is %d. [t=%d]", t.n, 7*t.n, t.n)
}

func (t longTurn) toolID() string { return fmt.Sprintf("toolu_long_%d", t.n) }

// longFileLine is line i of a workspace file, about 100 bytes without its
// newline; the filler is prose, as a read file usually is.
func longFileLine(file string, i int) string {
	const filler = "the quick brown fox jumps over the lazy dog while the bench fills this line to about a hundred bytes"
	head := fmt.Sprintf("%s line %d: ", file, i)
	return head + filler[:100-len(head)]
}

// writeLongWorkspace writes the files the session reads, each of at least
// kb KiB, and a SOUL.md and TOOLS.md so the prompt has a stable part of a
// realistic size.
func writeLongWorkspace(dir string, files, kb int) error {
	for f := 1; f <= files; f++ {
		name := longFileName(f)
		var b strings.Builder
		for i := 1; b.Len() < kb<<10; i++ {
			b.WriteString(longFileLine(name, i) + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o600); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".openclaw"), 0o700); err != nil {
		return err
	}
	soul := strings.Repeat("You are patient and precise. You answer briefly and read files before quoting them.\n", 24)
	tools := strings.Repeat("Prefer read_file over bash for reading; quote the lines you rely on; never edit files unasked.\n", 24)
	if err := os.WriteFile(filepath.Join(dir, ".openclaw", "SOUL.md"), []byte(soul), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".openclaw", "TOOLS.md"), []byte(tools), 0o600)
}

// longObs is one turn as the client saw it.
type longObs struct {
	failed      string // an error event ended it
	wrong       string // it completed, but not as the fake played it
	compactions []protocol.Compaction
	context     *protocol.Context // message_done's context use
}

// runLongTurn sends one message of the script and reads events up to
// message_done or error. Compaction events are collected wherever they
// fall. err means the connection is no longer usable.
func runLongTurn(ws *websocket.Conn, t longTurn, timeout time.Duration) (obs longObs, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := sendMessage(ctx, ws, t.message()); err != nil {
		return obs, err
	}
	var chunks strings.Builder
	var wrong []string
	tools := 0
	for range 10_000 { // far more events than a turn has
		var ev turnEvent
		if _, err := readEvent(ctx, ws, &ev); err != nil {
			return obs, err
		}
		switch ev.Type {
		case "chunk":
			chunks.WriteString(ev.Content)
		case "tool_done":
			tools++
			if ev.ToolName != "read_file" || ev.IsError || !strings.Contains(ev.Output, longFileLine(t.file, 1)) {
				wrong = append(wrong, fmt.Sprintf("tool_done of %s, isError=%v, output %.120q", ev.ToolName, ev.IsError, ev.Output))
			}
		case protocol.TypeCompaction:
			obs.compactions = append(obs.compactions, ev.Compaction)
		case "message_done":
			want := t.reply()
			if ev.Content != want || chunks.String() != want {
				wrong = append(wrong, fmt.Sprintf("message_done %q, chunks %q, want %q", ev.Content, chunks.String(), want))
			}
			if wantTools := min(len(t.file), 1); tools != wantTools {
				wrong = append(wrong, fmt.Sprintf("%d tool_done events, want %d", tools, wantTools))
			}
			obs.wrong, obs.context = strings.Join(wrong, "; "), ev.Context
			return obs, nil
		case "error":
			obs.failed = fmt.Sprintf("error event %s: %s", ev.Code, ev.Message)
			return obs, nil
		}
	}
	return obs, errors.New("no message_done after 10000 events")
}

// longRun is what the client saw of the whole session.
type longRun struct {
	completed, failed, wrong int
	firstFail, firstWrong    string
	firstFailTurn            int
	stopped                  string // the connection broke; later turns were not sent
	sent                     int
	compactions              []protocol.Compaction
	context                  *protocol.Context // of the last completed turn
	took                     time.Duration
}

func driveLongSession(ws *websocket.Conn, cfg config) longRun {
	var r longRun
	t0 := time.Now()
	for n := 1; n <= cfg.longTurns; n++ {
		t := longTurnAt(n, cfg.longFiles)
		r.sent++
		obs, err := runLongTurn(ws, t, cfg.turnTimeout)
		r.compactions = append(r.compactions, obs.compactions...)
		switch {
		case err != nil:
			r.failed++
			r.stopped = fmt.Sprintf("turn %d: %v", n, err)
			r.took = time.Since(t0)
			return r
		case obs.failed != "":
			r.failed++
			if r.firstFail == "" {
				r.firstFail, r.firstFailTurn = obs.failed, n
			}
		case obs.wrong != "":
			r.wrong++
			if r.firstWrong == "" {
				r.firstWrong = fmt.Sprintf("turn %d: %s", n, obs.wrong)
			}
		default:
			r.completed++
			r.context = obs.context
		}
		if n%20 == 0 {
			logf("  turn %d: %d completed, %d failed, %d compaction events", n, r.completed, r.failed, len(r.compactions))
		}
	}
	r.took = time.Since(t0)
	return r
}

// transcriptCounts reads the session's JSONL: how many of the script's
// user messages it holds (every one sent must be there: compaction removes
// nothing) and how many summary records.
func transcriptCounts(path string) (users, summaries int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var m struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if _, ok := parseLongMessage(m.Content); ok && m.Role == "user" {
			users++
		}
		if m.Role == "summary" {
			summaries++
		}
	}
	return users, summaries, sc.Err()
}

// longFigures is the fake's request log reduced to the printed figures.
type longFigures struct {
	requests, over, unmatched     int
	largest, largestOK            int // tokens
	withBreaks                    int // requests carrying at least one cache_control
	summaries                     int
	summaryIn, summaryOut         int
	summaryTook                   []time.Duration
	bytesConv, sharedConv         int // conversation requests (not summaries)
	bytesOutside, sharedOutside   int // the same without the first request after each summary
	seenOutside                   int // of bytesOutside, those the previous request already carried
	bytesAll, sharedAll           int // all accepted requests, shared without the breakpoint limit
	input, read, write, output    int
	firstOverTurn, firstOverToken int
}

func reduceLong(reqs []windowRequest) longFigures {
	var g longFigures
	g.requests = len(reqs)
	afterSummary := false
	for i, r := range reqs {
		g.largest = max(g.largest, r.tokens)
		if r.over {
			g.over++
			if g.firstOverTurn == 0 {
				g.firstOverTurn, g.firstOverToken = r.turn, r.tokens
			}
			continue
		}
		g.largestOK = max(g.largestOK, r.tokens)
		if r.breaks > 0 {
			g.withBreaks++
		}
		g.input, g.read, g.write, g.output = g.input+r.input, g.read+r.read, g.write+r.write, g.output+r.output
		g.bytesAll += r.bytes
		g.sharedAll += r.prefix
		if r.kind == kindSummary {
			g.summaries++
			g.summaryIn += r.tokens
			g.summaryOut += r.output
			// A compaction costs the summary call and whatever the gateway
			// does before its next model call.
			end := r.end
			if i+1 < len(reqs) {
				end = reqs[i+1].start
			}
			g.summaryTook = append(g.summaryTook, end.Sub(r.start))
			afterSummary = true
			continue
		}
		g.bytesConv += r.bytes
		g.sharedConv += r.shared
		if !afterSummary {
			g.bytesOutside += r.bytes
			g.sharedOutside += r.shared
			g.seenOutside += r.seen
		}
		afterSummary = false
	}
	return g
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func pctOf(a, b int) string { return fmt.Sprintf("%.1f%%", 100*ratio(a, b)) }

// measureLongSession runs the scripted long session against the windowed
// fake and adds its rows.
func measureLongSession(ctx context.Context, b *bench) error {
	cfg := b.cfg
	fake, err := startWindowFake(cfg.longWindow)
	if err != nil {
		return err
	}
	defer fake.close()
	o, err := b.dataDirs(fmt.Sprintf("long-%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	if err := writeLongWorkspace(o.workspace, cfg.longFiles, cfg.longFileKB); err != nil {
		return err
	}
	o.env = []string{"MINI_OPENCLAW_PROVIDER=anthropic", "ANTHROPIC_API_KEY=bench-fake-key", "ANTHROPIC_BASE_URL=" + fake.url}
	setting := "not set (the gateway's default)"
	if cfg.longSetWindow {
		o.env = append(o.env, "MINI_OPENCLAW_CONTEXT_WINDOW="+strconv.Itoa(cfg.longWindow))
		setting = "MINI_OPENCLAW_CONTEXT_WINDOW=" + strconv.Itoa(cfg.longWindow)
	}
	c, err := b.launch(o)
	if err != nil {
		return err
	}
	defer c.kill()
	ws, err := dialSession(ctx, c.wsURL(longSessionID), longSessionID)
	if err != nil {
		return err
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20) // tool_done carries a whole read_file output

	logf("  %d turns, window %d tokens, %s", cfg.longTurns, cfg.longWindow, setting)
	run := driveLongSession(ws, cfg)
	users, summaries, terr := transcriptCounts(filepath.Join(o.sessionsDir(), longSessionID+".jsonl"))
	g := reduceLong(fake.requests())

	label := fmt.Sprintf("long session, %d turns, window %s tokens (%s)", cfg.longTurns, thousands(float64(cfg.longWindow)), map[bool]string{true: "set", false: "not set"}[cfg.longSetWindow])
	turns := fmt.Sprintf("**%d completed**, %d failed, %d wrong of %d sent in %s", run.completed, run.failed, run.wrong, run.sent, run.took.Round(time.Millisecond))
	if run.firstFail != "" {
		turns += fmt.Sprintf("; first failure at turn %d: %s", run.firstFailTurn, run.firstFail)
	}
	if run.firstWrong != "" {
		turns += "; first wrong: " + run.firstWrong
	}
	if run.stopped != "" {
		turns += "; stopped at " + run.stopped
	}
	if terr != nil {
		turns += "; transcript not readable: " + terr.Error()
	} else {
		turns += fmt.Sprintf("; transcript holds %d of the %d user messages and %d summary records", users, run.sent, summaries)
	}
	b.add(label+": turns", turns, fmt.Sprintf("all %d", cfg.longTurns), verdict(run.completed == cfg.longTurns && users == run.sent))

	over := fmt.Sprintf("**%d** of %d requests; largest %s tokens (%s of the window), largest accepted %s",
		g.over, g.requests, thousands(float64(g.largest)), pctOf(g.largest, cfg.longWindow), thousands(float64(g.largestOK)))
	if g.over > 0 {
		over += fmt.Sprintf("; first over at turn %d (%s tokens)", g.firstOverTurn, thousands(float64(g.firstOverToken)))
	}
	overTarget, overStatus := "0", verdict(g.over == 0)
	if !cfg.longSetWindow {
		overTarget, overStatus = "— (window not set: recovery)", "info"
	}
	b.add(label+": requests over the window", over, overTarget, overStatus)

	sorted := sortedDurations(g.summaryTook)
	comp := fmt.Sprintf("**%d** summary requests, %d compaction events on the WebSocket", g.summaries, len(run.compactions))
	if n := len(run.compactions); n > 0 {
		var covered, before, after int64
		for _, e := range run.compactions {
			covered += int64(e.CoveredMessages)
			before += e.TokensBefore
			after += e.TokensAfter
		}
		comp += fmt.Sprintf(" (mean %d messages covered, %s → %s tokens)", covered/int64(n), thousands(float64(before/int64(n))), thousands(float64(after/int64(n))))
	}
	if g.summaries > 0 {
		comp += fmt.Sprintf("; cost %s input + %s output tokens in all (%s + %s per compaction), summary request → next model request p50 %s, max %s",
			thousands(float64(g.summaryIn)), thousands(float64(g.summaryOut)), thousands(float64(g.summaryIn/g.summaries)), thousands(float64(g.summaryOut/g.summaries)),
			ms(pct(sorted, 50)), ms(pct(sorted, 100)))
	}
	b.add(label+": compactions", comp, "—", "info")

	share := ratio(g.sharedOutside, g.bytesOutside)
	b.add(label+": prefix-cacheable share",
		fmt.Sprintf("**%s** of input bytes outside compactions, of at most %s (the rest is new in each request: the file just read, the new message); all conversation requests %s; %d of %d accepted requests carry cache_control; bytes identical to the previous request's prefix regardless of breakpoints: %s",
			pctOf(g.sharedOutside, g.bytesOutside), pctOf(g.seenOutside, g.bytesOutside), pctOf(g.sharedConv, g.bytesConv), g.withBreaks, g.requests-g.over, pctOf(g.sharedAll, g.bytesAll)),
		fmt.Sprintf("≥ %.0f%% outside compactions", 100*longCacheTarget), verdict(share >= longCacheTarget))

	all := g.input + g.read + g.write
	b.add(label+": input tokens billed",
		fmt.Sprintf("full price **%s**, cache read **%s**, cache write %s (%s of %s input tokens served from the cache); output %s",
			thousands(float64(g.input)), thousands(float64(g.read)), thousands(float64(g.write)), pctOf(g.read, all), thousands(float64(all)), thousands(float64(g.output))),
		"—", "info")

	if run.context != nil {
		b.note("%s: the last completed turn's message_done reported a context use of %s / %s tokens", label, thousands(float64(run.context.Tokens)), thousands(float64(run.context.Window)))
	}
	fake.mu.Lock()
	if fake.unmatched > 0 {
		b.note("%s: the fake answered %d requests it did not recognise with \"ok\", first: %s", label, fake.unmatched, oneLine(fake.sample))
	}
	fake.mu.Unlock()
	b.noteWarnings(c, label)
	b.note("long session: the gateway runs the Anthropic provider against a fake Messages API in the bench (ANTHROPIC_BASE_URL) that enforces a %s-token window (%s), counting a request's tokens as ceil(bytes/4) of its canonical input: each tool, system block and message content block re-encoded without cache_control, in the API's prefix order tools → system → messages. Over the window it answers 400 `{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long: N tokens > W maximum\"}}`; else it streams SSE with usage consistent with that count. Cache: a request reads the longest prefix ending at a block boundary at most %d blocks before one of its cache_control breakpoints that an earlier request wrote (each request writes the prefix of every breakpoint), writes the rest up to its last breakpoint, and pays full price after it; no TTL, no minimum length. **Cacheable share** = bytes identical to the previous request's canonical bytes (or the previous non-summary request's), counted only up to the request's last breakpoint, / all input bytes; \"outside compactions\" leaves out summary requests and the first request after each. A **summary request** is one without tools, or whose last user text is not a message of the script and mentions a summary; its cost in ms runs from its arrival to the next model request's (the fake answers at once, so it is the gateway's own work around the summary). Script: %d turns on one WebSocket, odd turns `please read bigN.txt and tell me its first line [t=T]` (%d files of %d KiB, 100-byte lines; the fake answers with a read_file tool_use, then the line), even turns a short question answered in one line; each turn is checked (reply text, one read_file tool_done holding the file's first line) and bounded by -turn-timeout %s. The transcript's JSONL is read at the end: every user message sent must be in it.",
		thousands(float64(cfg.longWindow)), setting, cacheLookback, cfg.longTurns, cfg.longFiles, cfg.longFileKB, cfg.turnTimeout)
	return nil
}
