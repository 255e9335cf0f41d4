// Package chatclient is the terminal client of a running gateway, behind
// `miniclaw chat`. It keeps one WebSocket connection attached to a session,
// shows the session's events as they stream in (reply text, one line per
// tool call and result, errors with their code), and turns input lines into
// messages or commands (/new, /sessions, /switch, /abort, /help, /quit). A
// lost connection is reported and re-established, with backoff, to the same
// session.
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
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
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
	// notes, tool, usage, compaction and status lines, errors), so that Out
	// holds the replies alone; nil means Out. A terminal shows all on Out.
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
)

const help = `Commands:
  /new          start a new session
  /sessions     list the sessions
  /switch ID    continue session ID (created if it does not exist)
  /abort        abort the reply being written
  /compact      summarise the older messages now (the transcript keeps them)
  /help         show this help
  /quit         leave (Ctrl-D too)
A line starting with // is sent as a message starting with /.
Ctrl-C aborts the running reply; pressed again within 2 s, or when nothing
runs, it quits.`

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
	streamed  bool   // reply text was shown since the last answer
	failed    bool   // an answer was an error
	lastIntr  time.Time
	notice    string // said once after the first connected event: see providerNotice

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
	var keyIntr <-chan struct{}
	if opt.Terminal {
		c.keys = newKeys(opt.In, done)
		keyIntr = c.keys.interrupts
		c.term = term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{c.keys, opt.Out}, prompt)
		c.out.w = c.term
		src = newLineSource(c.readTerminalLine, done)
	} else {
		c.out.w, c.out.notes = opt.Out, opt.Stderr
		br := bufio.NewReader(opt.In)
		src = newLineSource(func() (string, error) { return readPlainLine(br) }, done)
	}
	err = c.loop(ctx, src, keyIntr)
	cancel()
	c.closeAll()
	return err
}

func (c *client) loop(ctx context.Context, src *lineSource, keyIntr <-chan struct{}) error {
	asked, eof := false, false
	for {
		if eof && c.pending == 0 {
			return c.result()
		}
		if !asked && !eof && c.wantInput() {
			src.next <- struct{}{}
			asked = true
		}
		var events <-chan event
		if c.link != nil {
			events = c.link.events
		}
		select {
		case <-ctx.Done():
			return c.result()
		case line, ok := <-src.lines:
			asked = false
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
		case <-c.retry:
			c.retry = nil
			c.startDial(ctx)
		case r := <-c.dialing:
			c.dialing = nil
			c.dialed(r)
		}
	}
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
	text := strings.TrimSpace(line)
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
	case "/new", "/switch":
		if name == "/new" {
			arg = ""
		} else if err := protocol.ValidateSessionID(arg); err != nil {
			c.out.printf("usage: /switch ID (%v)", err)
			return false
		}
		id, created, err := c.gw.createSession(ctx, arg)
		if err != nil {
			c.out.printf("error: cannot create a session: %v", err)
			return false
		}
		c.switchTo(ctx, id)
		c.created = created
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
		c.out.endLine()
		WriteSessionTable(c.out.w, metas, c.session, time.Now())
	default:
		c.out.printf("unknown command %s: /help lists the commands", name)
	}
	return false
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
	c.pending, c.streamed = 0, false
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
	c.backoff = minBackoff
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
		c.out.printf("cannot reach the gateway (%v): retrying in %s", r.err, wait.Round(10*time.Millisecond))
		c.retry = time.After(wait)
		c.backoff = min(2*c.backoff, maxBackoff)
		return
	}
	c.link = r.link
}

func (c *client) handleEvent(ctx context.Context, ev event) {
	switch ev.Type {
	case protocol.TypeConnected:
		c.connected(ctx, ev)
	case protocol.TypeChunk:
		c.out.text(ev.Content)
		c.streamed = true
	case protocol.TypeToolStart:
		c.out.printf("%s", ToolStartLine(ev.ToolName, ev.Input))
	case protocol.TypeToolDone:
		c.out.printf("%s", ToolDoneLine(ev.ToolName, ev.Output, ev.IsError))
	case protocol.TypeMessageDone:
		if !c.streamed {
			c.out.text(ev.Content)
		}
		if line := usageLine(ev.Usage, ev.Context); line != "" {
			c.out.printf("(%s)", line)
		}
		c.answered()
	case protocol.TypeCompaction:
		c.out.printf("%s", CompactionLine(ev.CoveredMessages, ev.TokensBefore, ev.TokensAfter))
	case protocol.TypeStatus: // another process runs a turn of this session
		c.out.printf("(%s)", ev.Message)
	case protocol.TypeError:
		c.out.printf("error [%s]: %s", ev.Code, ev.Message)
		if ev.Code != string(protocol.CodeNotRunning) {
			c.failed = true
			c.answered()
		}
	}
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
		if c.term != nil {
			c.out.printf("Type a message and press Enter; /help lists the commands.")
		}
	case c.switching:
		c.out.printf("Session %s (%s).", c.session, state)
	default:
		c.out.printf("Reconnected to session %s.", c.session)
		c.catchUp(ctx)
	}
	c.connects++
	c.switching, c.created = false, false
}

// catchUp runs after a reconnect while replies were awaited: a turn that
// finished while the connection was down sent its message_done to no one,
// so its end is read from the transcript instead.
func (c *client) catchUp(ctx context.Context) {
	if c.pending == 0 {
		return
	}
	// Two: a /compact's summary record may follow the reply.
	busy, page, err := c.gw.lastMessages(ctx, c.session, 2)
	if err != nil {
		c.out.printf("error: cannot check the reply: %v", err)
		return
	}
	if busy {
		return // the rest of the turn streams in
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
	c.streamed = false
	c.pending = 1
	c.answered()
}

// answered counts one message_done or error: the end of a reply.
func (c *client) answered() {
	c.out.endLine()
	c.streamed = false
	c.lastIntr = time.Time{} // a Ctrl-C from now on is about the next reply
	if c.pending > 0 {
		c.pending--
	}
	c.setPrompt()
}

// setPrompt shows the prompt only while no reply is awaited, so that reply
// text streams onto clean lines.
func (c *client) setPrompt() {
	if c.term == nil {
		return
	}
	if c.pending > 0 {
		c.term.SetPrompt("")
		return
	}
	c.term.SetPrompt(prompt)
	// Redraw: a Write repaints the prompt over a line being edited; a kick
	// makes an idle ReadLine start again, which draws it on an empty line.
	c.term.Write(nil)
	c.keys.redraw()
}
