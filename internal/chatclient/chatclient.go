// Package chatclient is the terminal client of a running gateway, behind
// `miniclaw chat`. It keeps one WebSocket connection attached to a session,
// shows the session's events as they stream in (reply text, one line per
// tool call and result, errors with their code), and turns input lines into
// messages or commands (/new, /sessions, /switch, /history, /tool, /abort,
// /help, /quit). A lost connection is reported and re-established, with
// backoff, to the same session; on a terminal the retries update one status
// line.
//
// It reads an io.Reader and writes an io.Writer, so tests drive it with
// pipes; `miniclaw chat` hands it the process's terminal (in raw mode) or
// its standard input when that is a pipe.
//
// All state belongs to one goroutine, the loop of Run. The goroutines it
// starts (the connection's reader, a dial in progress, the input reader)
// only deliver values to it over channels.
package chatclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/termsafe"
)

// Options configure Run.
type Options struct {
	// URL is the gateway: http(s)://host:port or ws(s)://host:port, with or
	// without a trailing /ws.
	URL string
	// Token is the gateway's MINI_OPENCLAW_TOKEN, if it has one.
	Token string
	// SessionID is the session to resume, or to create with that ID; ""
	// resumes the most recently active session of any channel, or starts
	// one. Sessions the client starts are of channel cli.
	SessionID string

	In  io.Reader
	Out io.Writer
	// Stderr takes everything but the replies in line mode (connection
	// notes, tool, usage, compaction and status lines, errors, and other
	// clients' messages and replies on the session), so that Out holds
	// this client's replies alone; nil means Out. A terminal shows all on
	// Out.
	Stderr io.Writer
	// Terminal says In and Out are a terminal already in raw mode: lines are
	// edited with history (golang.org/x/term) and Ctrl-C arrives as a key.
	// Otherwise In is read line by line: each message waits for its reply
	// before the next line is read, and Run returns at the end of input.
	Terminal bool
	// Size reports the terminal's width and height (terminal mode); nil
	// assumes 80x24.
	Size func() (width, height int, err error)
	// Interrupt delivers SIGINT: Ctrl-C when it arrives as a signal rather
	// than as a key (line mode, or kill -INT).
	Interrupt <-chan os.Signal
	// Keepalive is how often the gateway is pinged; a connection whose
	// pong does not come within half of it is treated as lost. 0 means
	// DefaultKeepalive.
	Keepalive time.Duration
	// Full shows every tool call's whole input and output instead of a
	// line each.
	Full bool
}

// ErrTurnFailed is returned by Run in line mode when a message was answered
// with an error event, so that a script can tell.
var ErrTurnFailed = errors.New("a message was answered with an error")

const (
	prompt = "> "
	// doubleInterrupt is how soon a second Ctrl-C quits instead of aborting.
	doubleInterrupt = 2 * time.Second
	minBackoff      = 250 * time.Millisecond
	maxBackoff      = 5 * time.Second
	// resumeTurns is how many of a session's last turns are shown when the
	// chat attaches to it; /history shows historyTurns, or as many as asked
	// up to maxHistory.
	resumeTurns  = 3
	historyTurns = 20
	maxHistory   = 1000
	// holdMax bounds how long output waits for a line typed on the
	// terminal to reach the loop (see loop).
	holdMax = time.Second
)

const help = `Commands:
  /new          start a new session
  /sessions     list the sessions
  /switch ID    continue session ID, or the one whose ID starts with ID
                (asks before creating a new session ID)
  /history [N]  show the last N turns of this session (default 20)
  /tool [N]     show the whole input and output of tool call [N] (default:
                the last one shown)
  /abort        abort the reply being written
  /compact      summarise the older messages now (the transcript keeps them)
  /help         show this help
  /quit         leave (Ctrl-D too)
A line starting with // is sent as a message starting with /.
Ctrl-C aborts the running reply; pressed again within 2 s, or when nothing
runs, it quits.`

// turnOwner says whose turn the events arriving belong to. The gateway
// runs a session's turns one at a time in arrival order, each ended by
// exactly one message_done or error, and announces a turn to every client
// of the session but the sender with user_message before its events. So a
// turn announced is another client's; one that is not is this client's
// own when it awaits a reply (its message waited behind whatever ran when
// it was sent), else another's that was running when this client attached
// (see attachTurn). A turn that fails before its message is saved (the
// turn lock not had, the store failing) is not announced either: it is
// taken for this client's when it awaits a reply.
type turnOwner int

const (
	noTurn      turnOwner = iota // no event of a turn since the last one's end
	ownTurn                      // the reply to this client's oldest pending message
	foreignTurn                  // another client's turn: its end answers nothing of ours
)

type dialResult struct {
	link *link
	err  error
}

// client is the state of one Run; only its loop touches it.
type client struct {
	opt  Options
	gw   endpoint
	out  output
	term *term.Terminal // nil in line mode
	keys *keys          // nil in line mode

	session   string // the session attached to, or being dialled
	link      *link  // nil while not connected
	attached  bool   // the link's connected event was seen
	connects  int    // connected events seen, to tell the first from a reconnect
	switching bool   // the dial in progress is a /new or /switch
	created   bool   // the session dialled was just created by this client
	pending   int    // messages sent and not answered yet (message_done or error)
	streamed  bool   // reply text was shown since the last turn's end
	failed    bool   // an answer to a message of this client's was an error
	lastIntr  time.Time
	notice    string // said once after the first connected event: see providerNotice
	// turn is whose turn the events arriving belong to.
	turn turnOwner
	// queued are the messages sent while a reply was awaited or another
	// client's turn ran, whose own replies have not started: the last
	// len(queued) of the pending ones. Each such reply is headed by its
	// message.
	queued  []string
	tools   []core.ToolCallRecord // the tool calls shown, numbered from 1 for /tool
	confirm string                // a /switch ID that waits for a yes to be created
	prompt  string                // the prompt term shows

	attempts int // failed dials since the connection was lost

	backoff time.Duration
	retry   <-chan time.Time // fires when the next reconnect attempt is due
	dialing chan dialResult  // non-nil while a dial runs
}

// Run connects to the gateway and runs the chat until the user quits, the
// input ends (line mode), or ctx is done. It fails only when the first
// connection cannot be made or the input cannot be read; later losses are
// retried.
func Run(ctx context.Context, opt Options) error {
	gw, err := parseGateway(opt.URL, opt.Token)
	if err != nil {
		return err
	}
	if opt.SessionID != "" {
		if err := protocol.ValidateSessionID(opt.SessionID); err != nil {
			return fmt.Errorf("session ID %q: %w", opt.SessionID, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &client{opt: opt, gw: gw}
	c.session, c.created, err = gw.startSession(ctx, opt.SessionID)
	if errors.Is(err, errAmbiguous) {
		return err
	}
	if err == nil {
		c.link, err = dial(ctx, gw, c.session, opt.Keepalive)
	}
	if err != nil {
		return fmt.Errorf("cannot connect to the gateway at %s: %w (is `miniclaw gateway` running?)", gw.http, err)
	}
	c.notice = gw.providerNotice(ctx)

	done := make(chan struct{})
	defer close(done)
	var src *lineSource
	if opt.Terminal {
		c.keys = newKeys(opt.In, done)
		c.term = term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{c.keys, opt.Out}, prompt)
		c.out.w, c.out.width = c.term, c.width
		src = newLineSource(c.readTerminalLine, done)
	} else {
		c.out.w, c.out.notes = opt.Out, opt.Stderr
		br := bufio.NewReader(opt.In)
		src = newLineSource(func() (string, error) { return readPlainLine(br) }, done)
	}
	err = c.loop(ctx, src)
	cancel()
	c.closeAll()
	return err
}

func (c *client) loop(ctx context.Context, src *lineSource) error {
	asked, eof := false, false
	var keyIntr <-chan struct{}
	var keyEnters <-chan int
	if c.keys != nil {
		keyIntr, keyEnters = c.keys.interrupts, c.keys.enters
	}
	// held counts the lines typed on the terminal that the loop has not
	// received yet: until they come, nothing is written, because a line's
	// echo has moved the cursor where the output does not expect it
	// (handleLine puts it back). holdEnd ends a hold that lasts, should a
	// line end not become a line.
	held := 0
	var holdEnd <-chan time.Time
	for {
		if eof && c.pending == 0 {
			return c.result()
		}
		if !asked && !eof && c.wantInput() {
			src.next <- struct{}{}
			asked = true
		}
		var events <-chan event
		retry, dialing := c.retry, c.dialing
		if c.link != nil {
			events = c.link.events
		}
		if held > 0 {
			events, retry, dialing = nil, nil, nil
		}
		select {
		case <-ctx.Done():
			return c.result()
		case n := <-keyEnters:
			held += n
			holdEnd = time.After(holdMax)
		case <-holdEnd:
			held, holdEnd = 0, nil
		case line, ok := <-src.lines:
			asked = false
			held = max(held-1, 0)
			if !ok {
				if !errors.Is(src.err, io.EOF) {
					return fmt.Errorf("read input: %w", src.err)
				}
				if c.term != nil { // Ctrl-D
					c.quit()
					return nil
				}
				eof = true
				continue
			}
			if c.handleLine(ctx, line) {
				c.quit()
				return c.result()
			}
		case ev, ok := <-events:
			if !ok {
				c.lost()
				continue
			}
			c.handleEvent(ctx, ev)
		case <-keyIntr:
			if c.interrupt(ctx) {
				c.quit()
				return c.result()
			}
		case <-c.opt.Interrupt:
			if c.interrupt(ctx) {
				c.quit()
				return c.result()
			}
		case <-retry:
			c.retry = nil
			c.startDial(ctx)
		case r := <-dialing:
			c.dialing = nil
			c.dialed(r)
		}
	}
}

// replying says whether a reply streams or is awaited: this client's, or
// another client's turn that this client's next message waits behind.
func (c *client) replying() bool {
	return c.pending > 0 || c.turn == foreignTurn
}

// wantInput says whether the loop takes another line now. A terminal is
// always read (a message typed during a reply is queued by the gateway, and
// commands work at any time); a script's lines wait for a connection and
// for the reply to the previous message.
func (c *client) wantInput() bool {
	return c.term != nil || c.attached && c.pending == 0
}

func (c *client) result() error {
	if c.term == nil && c.failed {
		return ErrTurnFailed
	}
	return nil
}

// quit leaves the terminal on a fresh line without a prompt.
func (c *client) quit() {
	if c.term != nil {
		c.term.SetPrompt("")
		c.out.printf("bye")
	}
}

// closeAll ends the connection, and waits for a dial in progress and closes
// what it opened (when Run ends, the dial's context is cancelled: no wait).
func (c *client) closeAll() {
	if c.link != nil {
		c.link.close()
		c.link = nil
	}
	if c.dialing != nil {
		if r := <-c.dialing; r.link != nil {
			r.link.close()
		}
		c.dialing = nil
	}
}

// width is the terminal's width, 80 when unknown.
func (c *client) width() int {
	if c.opt.Size != nil {
		if w, _, err := c.opt.Size(); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

// readTerminalLine reads one edited line; it runs on the input goroutine.
func (c *client) readTerminalLine() (string, error) {
	for {
		if c.opt.Size != nil {
			// A pty nobody sized reports 0x0: keep the default then.
			if w, h, err := c.opt.Size(); err == nil && w > 0 && h > 0 {
				c.term.SetSize(w, h)
			}
		}
		line, err := c.term.ReadLine()
		switch {
		case errors.Is(err, errKick):
			continue // called again to draw the new prompt
		case errors.Is(err, term.ErrPasteIndicator):
			err = nil // a pasted line is a line
		}
		return line, err
	}
}

// handleLine sends a message or runs a command. It reports whether to quit.
func (c *client) handleLine(ctx context.Context, line string) bool {
	if c.term != nil && c.replying() {
		// Typed below a reply: the line's echo goes, so that the reply
		// goes on where it was; a message's own reply is headed by it.
		c.out.erase(utf8.RuneCountInString(c.prompt+line)/c.width() + 1)
	}
	text := strings.TrimSpace(line)
	if c.confirm != "" {
		id := c.confirm
		c.confirm = ""
		c.setPrompt()
		if strings.EqualFold(text, "y") || strings.EqualFold(text, "yes") {
			c.open(ctx, id)
		} else {
			c.out.printf("Staying in session %s.", c.session)
		}
		return false
	}
	switch {
	case text == "":
		return false
	case strings.HasPrefix(text, "//"):
		text = text[1:]
	case strings.HasPrefix(text, "/"):
		return c.command(ctx, text)
	}
	if c.link == nil || !c.attached {
		c.out.printf("not connected (reconnecting…): the message was not sent")
		c.failed = true
		return false
	}
	if err := c.link.send(ctx, map[string]string{"type": protocol.TypeMessage, "content": text}); err != nil {
		c.out.printf("the message was not sent: %v", err)
		c.failed = true
		return false
	}
	if c.replying() {
		c.queued = append(c.queued, text)
	}
	c.pending++
	c.setPrompt()
	return false
}

func (c *client) command(ctx context.Context, text string) bool {
	name, arg, _ := strings.Cut(text, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/quit", "/exit":
		return true
	case "/help":
		c.out.line("%s", help)
	case "/abort":
		c.abort(ctx)
	case "/compact":
		c.compact(ctx)
	case "/new":
		c.open(ctx, "")
	case "/switch":
		c.switchCmd(ctx, arg)
	case "/history":
		n := historyTurns
		if arg != "" {
			var err error
			if n, err = strconv.Atoi(arg); err != nil || n < 1 || n > maxHistory {
				c.out.printf("usage: /history [N]: the last N turns, 1 to %d", maxHistory)
				return false
			}
		}
		c.showHistory(ctx, n, true)
	case "/tool":
		c.showTool(arg)
	case "/sessions":
		list, err := c.gw.listSessions(ctx)
		if err != nil {
			c.out.printf("error: cannot list sessions: %v", err)
			return false
		}
		metas := make([]session.Meta, len(list))
		for i, s := range list {
			metas[i] = s.Meta
		}
		WriteSessionTable(c.out.writer(), metas, c.session, time.Now())
	default:
		c.out.printf("unknown command %s: /help lists the commands", name)
	}
	return false
}

// open creates session id ("": a new ID) unless it exists, and switches to it.
func (c *client) open(ctx context.Context, id string) {
	id, created, err := c.gw.createSession(ctx, id)
	if err != nil {
		c.out.printf("error: cannot create a session: %v", err)
		return
	}
	c.switchTo(ctx, id)
	c.created = created
}

// switchCmd is /switch ID: to the session ID names exactly or as the
// unique prefix of one; an ambiguous prefix lists its matches, and an ID
// nothing starts with is created once the user says yes.
func (c *client) switchCmd(ctx context.Context, arg string) {
	if err := protocol.ValidateSessionID(arg); err != nil {
		c.out.printf("usage: /switch ID (%v)", err)
		return
	}
	matches, err := c.gw.matchSessions(ctx, arg)
	if err != nil {
		c.out.printf("error: cannot list sessions: %v", err)
		return
	}
	switch len(matches) {
	case 0:
		c.out.printf("No session starts with %s. Create a new session %s? [y/N]", arg, arg)
		c.confirm = arg
		c.setPrompt()
	case 1:
		c.switchTo(ctx, matches[0])
	default:
		c.out.printf("%s starts %s: %s; type more of the ID", arg, Count(len(matches), "session"), strings.Join(matches, ", "))
	}
}

// showHistory prints the session's last n turns as `sessions show` does,
// with an empty session said so when asked, and numbers their tool calls
// for /tool.
func (c *client) showHistory(ctx context.Context, n int, asked bool) {
	msgs, earlier, err := c.gw.recentTurns(ctx, c.session, n)
	if err != nil {
		c.out.printf("error: cannot read the history: %v", err)
		return
	}
	if len(msgs) == 0 {
		if asked {
			c.out.line("(no messages yet)")
		}
		return
	}
	w := c.out.writer()
	if earlier > 0 {
		fmt.Fprintf(w, "(%s before these: /history N shows the last N turns)\n", Count(earlier, "earlier message"))
	}
	WriteTranscript(w, msgs, ToolView{First: len(c.tools) + 1, Full: c.opt.Full})
	for _, m := range msgs {
		c.tools = append(c.tools, m.ToolCalls...)
	}
	io.WriteString(w, "──\n")
}

// showTool is /tool [N]: the whole input and output of the tool call shown
// as [N], by default the last one.
func (c *client) showTool(arg string) {
	if len(c.tools) == 0 {
		c.out.printf("no tool call has been shown yet")
		return
	}
	n := len(c.tools)
	if arg != "" {
		var err error
		if n, err = strconv.Atoi(arg); err != nil || n < 1 || n > len(c.tools) {
			c.out.printf("usage: /tool [N]: N is the number of a tool call shown, 1 to %d", len(c.tools))
			return
		}
	}
	tc := c.tools[n-1]
	c.out.line("%s\n%s", toolStartLines(n, tc.Name, tc.Input, true), toolDoneLines(n, tc.Name, tc.Output, tc.IsError, true))
}

// compact asks the gateway to summarise the session's older messages; the
// compaction event, or an error, answers.
func (c *client) compact(ctx context.Context) {
	if c.link == nil || !c.attached {
		c.out.printf("not connected (reconnecting…): /compact was not sent")
		return
	}
	if err := c.link.send(ctx, map[string]string{"type": protocol.TypeCompact}); err != nil {
		c.out.printf("/compact was not sent: %v", err)
	}
}

// interrupt handles Ctrl-C: the first one aborts the running reply, a second
// one within doubleInterrupt, or one when nothing runs, quits.
func (c *client) interrupt(ctx context.Context) bool {
	now := time.Now()
	if c.pending == 0 || now.Sub(c.lastIntr) < doubleInterrupt {
		return true
	}
	c.lastIntr = now
	c.out.printf("^C aborting the reply (Ctrl-C again to quit)")
	c.abort(ctx)
	return false
}

func (c *client) abort(ctx context.Context) {
	if c.link == nil {
		c.out.printf("not connected: nothing to abort")
		return
	}
	if err := c.link.send(ctx, map[string]string{"type": protocol.TypeAbort}); err != nil {
		c.out.printf("the abort was not sent: %v", err)
	}
}

// switchTo leaves the current session and connects to id.
func (c *client) switchTo(ctx context.Context, id string) {
	c.closeAll()
	c.attached, c.retry = false, nil
	c.pending, c.queued = 0, nil
	c.endTurn()
	c.setPrompt()
	c.session, c.switching = id, true
	c.backoff = minBackoff
	c.startDial(ctx)
}

// lost reports a dropped connection and schedules a reconnect to the same
// session.
func (c *client) lost() {
	err := c.link.err
	c.link.ws.CloseNow()
	c.link.pinger.Wait()
	c.link, c.attached = nil, false
	c.out.printf("connection lost (%v): reconnecting to session %s…", err, c.session)
	c.backoff, c.attempts = minBackoff, 0
	c.retry = time.After(c.backoff)
}

func (c *client) startDial(ctx context.Context) {
	ch := make(chan dialResult, 1)
	c.dialing = ch
	id := c.session
	go func() {
		l, err := dial(ctx, c.gw, id, c.opt.Keepalive)
		ch <- dialResult{l, err}
	}()
}

func (c *client) dialed(r dialResult) {
	if r.err != nil {
		wait := c.backoff/2 + rand.N(c.backoff/2+1) // jitter: many clients do not retry in step
		c.retry = time.After(wait)
		c.backoff = min(2*c.backoff, maxBackoff)
		c.attempts++
		c.reportUnreachable(r.err, wait)
		return
	}
	c.link = r.link
}

// reportUnreachable says that a reconnect failed. A terminal shows one
// status line that each attempt rewrites; a script's stderr gets one line
// when the gateway turns out unreachable, not one per attempt (the reason
// can vary from one to the next).
func (c *client) reportUnreachable(err error, wait time.Duration) {
	reason := err.Error()
	if op := (*net.OpError)(nil); errors.As(err, &op) {
		reason = op.Err.Error() // "connect: connection refused", without the URL said already
	}
	msg := fmt.Sprintf("gateway unreachable at %s (%s)", c.gw.ws, reason)
	if c.term != nil {
		c.out.status(fmt.Sprintf("%s, retrying in %s (attempt %d)", msg, wait.Round(100*time.Millisecond), c.attempts))
		return
	}
	if c.attempts == 1 {
		c.out.printf("%s: retrying until it answers", msg)
	}
}

func (c *client) handleEvent(ctx context.Context, ev event) {
	switch ev.Type {
	case protocol.TypeConnected:
		c.connected(ctx, ev)
	case protocol.TypeChunk:
		c.turnEvent()
		c.out.text(ev.Content)
		c.streamed = true
	case protocol.TypeToolStart:
		c.turnEvent()
		c.tools = append(c.tools, core.ToolCallRecord{ID: ev.ToolCallID, Name: ev.ToolName, Input: ev.Input})
		c.out.printf("%s", toolStartLines(len(c.tools), ev.ToolName, ev.Input, c.opt.Full))
	case protocol.TypeToolProgress:
		// Only a terminal can rewrite a line; elsewhere progress would
		// be noise.
		c.turnEvent()
		if c.out.width != nil && ev.ToolCallID != "" {
			n := c.toolNumber(ev)
			c.out.replace("progress "+ev.ToolCallID, toolNumber(n)+ToolProgressLine(ev.ToolName, ev.Progress, ev.Total, ev.Message))
		}
	case protocol.TypeToolDone:
		c.turnEvent()
		c.out.drop("progress " + ev.ToolCallID)
		n := c.toolDone(ev)
		c.out.printf("%s", toolDoneLines(n, ev.ToolName, ev.Output, ev.IsError, c.opt.Full))
	case protocol.TypeMessageDone:
		c.turnEvent()
		if !c.streamed {
			c.out.text(ev.Content)
		}
		if line := usageLine(ev.Usage, ev.Context); line != "" {
			c.out.printf("(%s)", line)
		}
		c.turnEnded()
	case protocol.TypeUserMessage: // another client's turn starts (never our own)
		c.endTurn() // the previous turn's end came before: this is in case it was lost
		c.setTurn(foreignTurn)
		c.out.printf("› %s", strings.ReplaceAll(ev.Content, "\n", "\n  "))
	case protocol.TypeCompaction:
		c.out.printf("%s", CompactionLine(ev.CoveredMessages, ev.TokensBefore, ev.TokensAfter))
	case protocol.TypeStatus: // another process runs a turn of this session
		c.out.printf("(%s)", ev.Message)
	case protocol.TypeResync: // events from another gateway may be missing
		c.resync(ctx, ev)
	case protocol.TypeError:
		c.gatewayError(ev)
	}
}

// gatewayError handles an error event. Most end the running turn, and are
// sent to every client of the session; two answer only a frame of this
// client's and end no turn: not_running an /abort, and queue_full the
// message just sent, refused (it gets no turn).
func (c *client) gatewayError(ev event) {
	code := protocol.Code(ev.Code)
	ends := code != protocol.CodeNotRunning && code != protocol.CodeQueueFull
	own := ends && c.turnEvent() == ownTurn
	c.out.printf("error [%s]: %s", ev.Code, ev.Message)
	switch {
	case code == protocol.CodeQueueFull:
		c.failed = true
		c.refused()
	case ends:
		// Another client's failed turn is no failure of this one's
		// messages (a script's exit status).
		c.failed = c.failed || own
		c.turnEnded()
	}
}

// toolDone records a tool call's result with its start and returns its
// number.
func (c *client) toolDone(ev event) int {
	n := c.toolNumber(ev)
	c.tools[n-1].Output, c.tools[n-1].IsError = ev.Output, ev.IsError
	return n
}

// toolNumber is the number of the call ev names; a call whose start was
// not seen (it began before the client attached) gets a number of its own.
func (c *client) toolNumber(ev event) int {
	i := len(c.tools) - 1
	for ; i >= 0 && ev.ToolCallID != ""; i-- {
		if c.tools[i].ID == ev.ToolCallID {
			break
		}
	}
	if i < 0 || ev.ToolCallID == "" {
		c.tools = append(c.tools, core.ToolCallRecord{ID: ev.ToolCallID, Name: ev.ToolName})
		i = len(c.tools) - 1
	}
	return i + 1
}

func (c *client) connected(ctx context.Context, ev event) {
	c.session, c.attached = ev.SessionID, true
	state := "new session"
	if ev.Resumed && !c.created {
		state = "resumed"
	}
	switch {
	case c.connects == 0:
		c.out.printf("Connected to %s: session %s (%s).", c.gw.http, c.session, state)
		if c.notice != "" {
			c.out.printf("%s", c.notice)
		}
		c.resumeHistory(ctx, state)
		if c.term != nil {
			c.out.printf("Type a message and press Enter; /help lists the commands.")
		}
	case c.switching:
		c.out.printf("Session %s (%s).", c.session, state)
		c.resumeHistory(ctx, state)
	default:
		c.out.printf("Reconnected to session %s.", c.session)
	}
	c.attachTurn(ctx)
	c.connects++
	c.switching, c.created = false, false
}

// resumeHistory shows the last turns of a session the chat resumes, so that
// it does not start on a blank screen. A script (pipe mode) wants its
// replies alone, so it is shown on a terminal only.
func (c *client) resumeHistory(ctx context.Context, state string) {
	if c.term != nil && state == "resumed" {
		c.showHistory(ctx, resumeTurns, false)
	}
}

// resync answers the gateway's word that events of the session, relayed
// from another gateway, may have been lost: what streamed may be partial, so
// a terminal shows the last turns from history again, as on resume.
func (c *client) resync(ctx context.Context, ev event) {
	if c.turn == foreignTurn {
		// Relayed events are other gateways' turns, never this client's
		// own: what was lost may be this one's end, which would then
		// take this client's next reply for it. Should the turn still
		// run, its next events are taken by the rule for turns not
		// announced (see turnOwner).
		c.endTurn()
	}
	if c.term == nil {
		c.out.printf("(%s)", ev.Message)
		return
	}
	c.out.printf("(%s; its last turns again:)", ev.Message)
	c.showHistory(ctx, resumeTurns, false)
}

// attachTurn runs on each connected event: a turn that runs already was
// not announced to this connection, so whose it is comes from the state of
// the session. When no reply is awaited (the first connection, a switch)
// it is another client's: its end answers nothing of this client's, whose
// messages wait behind it. After a reconnect while replies were awaited it
// is this client's own; and a turn that finished while the connection was
// down sent its message_done to no one, so its end is read from the
// transcript instead.
func (c *client) attachTurn(ctx context.Context) {
	// The rest of this client's reply cut by the loss streams on after
	// what was shown of it.
	streamed := c.streamed && c.turn == ownTurn
	c.endTurn()
	c.streamed = streamed
	// Two: a /compact's summary record may follow the reply.
	busy, page, err := c.gw.lastMessages(ctx, c.session, 2)
	if err != nil {
		c.out.printf("error: cannot check whether a turn runs on session %s: %v", c.session, err)
		return
	}
	if busy {
		if c.pending == 0 {
			c.setTurn(foreignTurn)
		}
		return // the rest of the turn streams in
	}
	if c.pending == 0 {
		return
	}
	msgs := page.Messages
	if n := len(msgs); n > 0 && msgs[n-1].Role == core.RoleSummary {
		msgs = msgs[:n-1]
	}
	if n := len(msgs); n > 0 && msgs[n-1].Role == core.RoleAssistant {
		m := msgs[n-1]
		c.out.printf("The reply finished while the connection was down:")
		c.out.text(m.Content)
		if m.Status != "" {
			c.out.printf("[%s: %s]", m.Status, m.Error)
			c.failed = true
		}
	}
	c.queued, c.pending = nil, 1
	c.setTurn(ownTurn)
	c.turnEnded()
}

// turnEvent is called for each event of a turn (its text, tools, end) and
// says whose turn it is; the first event of a turn not announced decides
// (see turnOwner). A reply to a message typed while another reply streamed
// is headed by the message.
func (c *client) turnEvent() turnOwner {
	if c.turn != noTurn {
		return c.turn
	}
	if c.pending == 0 {
		c.setTurn(foreignTurn)
		return c.turn
	}
	c.setTurn(ownTurn)
	if len(c.queued) > 0 && len(c.queued) >= c.pending {
		c.out.printf("↳ reply to: %s", clipRunes(termsafe.Line(c.queued[0]), 40))
		c.queued = c.queued[1:]
	}
	return c.turn
}

// turnEnded handles the event that ends a turn (message_done, or an error
// that ends one); only the end of this client's own turn answers one of
// its messages.
func (c *client) turnEnded() {
	own := c.turn == ownTurn
	c.endTurn()
	if !own || c.pending == 0 {
		return
	}
	c.pending--
	c.lastIntr = time.Time{} // a Ctrl-C from now on is about the next reply
	c.setPrompt()
}

// endTurn forgets the turn whose events arrived, ending its reply's line.
func (c *client) endTurn() {
	c.out.endLine()
	c.setTurn(noTurn)
	c.streamed = false
}

// setTurn says whose turn the next events are part of; another client's
// reply text goes aside (see output).
func (c *client) setTurn(t turnOwner) {
	c.turn, c.out.aside = t, t == foreignTurn
}

// refused counts the message sent last, which the gateway refused: it
// gets no turn.
func (c *client) refused() {
	if c.pending == 0 {
		return
	}
	c.pending--
	if n := len(c.queued); n > 0 {
		c.queued = c.queued[:n-1] // it was the last queued
	}
	c.setPrompt()
}

// setPrompt shows the prompt only while no reply is awaited, so that reply
// text streams onto clean lines; while one is, a line typed below the reply
// says how many messages wait, and a /switch to an unknown ID asks.
func (c *client) setPrompt() {
	if c.term == nil {
		return
	}
	switch {
	case c.confirm != "":
		c.prompt = "[y/N] "
	case c.pending > 1:
		c.prompt = fmt.Sprintf("(%d queued) ", c.pending-1)
	case c.pending > 0:
		c.prompt = ""
	default:
		c.prompt = prompt
	}
	c.term.SetPrompt(c.prompt)
	// Redraw: a Write repaints the prompt over a line being edited; a kick
	// makes an idle ReadLine start again, which draws it on an empty line.
	c.term.Write(nil)
	c.keys.redraw()
}
