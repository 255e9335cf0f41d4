package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/miniclaw/miniclaw/internal/chatclient"
	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/termsafe"
	"github.com/miniclaw/miniclaw/internal/tools"
	"github.com/miniclaw/miniclaw/internal/turn"
)

const agentUsage = `Usage: miniclaw agent [flags] [-m MESSAGE]

Runs one turn of the agent from the shell, without a gateway: the same
provider, tools, memory, skills and sessions as "miniclaw gateway" with the
same settings. The reply streams to standard output, and nothing else goes
there; notices, errors and (with -v) tool calls go to standard error.

The message is -m MESSAGE, standard input when -m is not given, or both:
input piped in is appended to the -m message after a blank line (so in a
loop that reads its own standard input, give each run </dev/null).

Each run is a new session of channel "cli" (listed by "miniclaw sessions
list") unless --session names one to continue. It is safe beside a running
gateway on the same data dir: a turn of the same session waits for the
other's to end.

Examples:
  miniclaw agent -m "summarise README.md"
  git diff | miniclaw agent -m "review this"
  miniclaw agent --session 3f2a9c -m "and now the tests"
  miniclaw agent --json -m "list the TODOs" | jq -r .content

Exit status: 0 when the turn ended with a reply, 1 when it failed (the
error on standard error; what it produced is in the transcript), 2 for a
bad command line, 130 when Ctrl-C aborted it, 143 when SIGTERM did.

Flags:
`

// cliChannel is the channel of the sessions the command line starts.
const cliChannel = "cli"

// maxMessageBytes is the largest message accepted: what the gateway takes
// in one WebSocket frame.
const maxMessageBytes = 1 << 20

// statusError ends a command with its own exit status.
type statusError struct {
	status int
	err    error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

// runAgent is `miniclaw agent`: one turn, played as the gateway plays one
// (turn.Player) on the engine the gateway builds.
func runAgent(args []string, getenv func(string) string, stdin *os.File, stdout, stderr io.Writer) error {
	own := flag.NewFlagSet("miniclaw agent", flag.ContinueOnError)
	message := own.String("m", "", "the message (default: read from standard input)")
	sessionID := own.String("session", "", "continue this session (its ID or a unique prefix of it); default: a new session")
	asJSON := own.Bool("json", false, "print the turn's message_done event (JSON, as the gateway sends it) instead of the reply text")
	verbose := own.Bool("v", false, "show tool calls and the log's informational lines on standard error")
	fs := flag.NewFlagSet("miniclaw agent", flag.ContinueOnError)
	own.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	resolve := config.Flags(fs, getenv)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := stderr
		if helpAsked(args) {
			out = stdout
		}
		fmt.Fprint(out, agentUsage)
		own.SetOutput(out)
		own.PrintDefaults()
		fmt.Fprint(out, "\nIt also takes every flag and environment variable of the gateway (workspace, data\ndir, provider, model, context window, sandbox...): see \"miniclaw gateway --help\".\n")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: give the message with -m or on standard input", fs.Arg(0))}
	}
	content, err := agentMessage(*message, stdin, stderr)
	if err != nil {
		return err
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	log := agentLogger(cfg, stderr, *verbose, slog.LevelWarn)
	e, err := openEngine(cfg, log, gatewayIdentity{})
	if err != nil {
		return err
	}
	defer e.close()
	if e.warning != "" {
		fmt.Fprintf(stderr, "miniclaw agent: %s\n", e.warning)
	}
	id, err := agentSession(e.store, *sessionID)
	if err != nil {
		return err
	}
	if *verbose {
		fmt.Fprintf(stderr, "miniclaw agent: session %s\n", id)
	}

	ctx, stop := abortOnSignal()
	defer stop()
	// The one turn needs the MCP servers' tools: wait for their first
	// start (bounded by MINI_OPENCLAW_MCP_START_TIMEOUT). A signal ends
	// the wait, and the turn then reports the abort.
	e.mcp.WaitStarted(ctx)
	// The turn's failure is the command's error message: its log line
	// would say it twice.
	player := &turn.Player{Store: e.store, Runtime: e.runtime, Log: agentLogger(cfg, stderr, *verbose, slog.LevelError), MaxContext: cfg.MaxContext, LockTimeout: cfg.TurnLockTimeout}
	out := &replyWriter{w: stdout, safe: isTerminal(stdout), quiet: *asJSON}
	var progressMu sync.Mutex
	final := player.Play(ctx, id, content, turn.Events{
		Text: out.text,
		ToolStart: func(c core.ToolCall) {
			out.endLine() // the next round's text starts on a line of its own
			if *verbose {
				fmt.Fprintln(stderr, chatclient.ToolStartLine(c.Name, c.Input))
			}
		},
		ToolProgress: func(c core.ToolCall, p tools.Progress) {
			if *verbose {
				// Calls run in parallel report from their own goroutines.
				progressMu.Lock()
				defer progressMu.Unlock()
				fmt.Fprintln(stderr, chatclient.ToolProgressLine(c.Name, p.Progress, p.Total, p.Message))
			}
		},
		ToolDone: func(r core.ToolCallRecord) {
			if *verbose {
				fmt.Fprintln(stderr, chatclient.ToolDoneLine(r.Name, r.Output, r.IsError))
			}
		},
		Compacted: func(ev protocol.Compaction) {
			if *verbose {
				fmt.Fprintf(stderr, "miniclaw agent: compacted %d earlier transcript lines (%d → %d tokens)\n", ev.CoveredMessages, ev.TokensBefore, ev.TokensAfter)
			}
		},
		Status: func(_, message string) {
			fmt.Fprintf(stderr, "miniclaw agent: session %s: %s\n", id, message)
		},
	})
	out.endLine()
	var end protocol.Error
	if err := json.Unmarshal(final, &end); err != nil {
		return fmt.Errorf("the turn's last event does not decode: %w", err)
	}
	if end.Type != protocol.TypeError {
		if *asJSON {
			_, err := fmt.Fprintf(stdout, "%s\n", final)
			return err
		}
		return nil
	}
	err = fmt.Errorf("session %s: %s [%s]", id, termsafe.Line(end.Message), end.Code)
	switch end.Code {
	case protocol.CodeAborted:
		return statusError{130, err}
	case protocol.CodeShuttingDown:
		return statusError{143, err}
	}
	return err
}

// agentLogger logs to stderr from level on, from Info on when verbose.
func agentLogger(cfg config.Config, stderr io.Writer, verbose bool, level slog.Level) *slog.Logger {
	if verbose {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}
	if cfg.LogJSON {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

// helpAsked tells whether args ask for the help, which then goes to stdout.
func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// agentMessage is the turn's message: -m, standard input, or -m with what
// is piped in appended after a blank line. A terminal on standard input is
// read only without -m.
func agentMessage(m string, stdin *os.File, stderr io.Writer) (string, error) {
	tty := term.IsTerminal(int(stdin.Fd()))
	if m == "" || !tty {
		if m == "" && tty {
			fmt.Fprintln(stderr, "miniclaw agent: reading the message from standard input; end it with Ctrl-D")
		}
		b, err := io.ReadAll(io.LimitReader(stdin, maxMessageBytes+1))
		if err != nil {
			return "", fmt.Errorf("reading standard input: %w", err)
		}
		if in := strings.TrimRight(string(b), "\r\n"); strings.TrimSpace(in) != "" {
			m = strings.Join(append(nonEmpty(m), in), "\n\n")
		}
	}
	switch {
	case strings.TrimSpace(m) == "":
		return "", usageError{errors.New(`no message: give one with -m "..." or on standard input`)}
	case len(m) > maxMessageBytes:
		return "", fmt.Errorf("the message is over %d bytes, the most a turn takes", maxMessageBytes)
	}
	return m, nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// agentSession is the session the turn runs in: a new one of channel cli,
// or the one id names exactly or as the unique prefix of one ID.
func agentSession(st session.Backend, id string) (string, error) {
	if id == "" {
		m, _, err := st.Create(uuid.NewString(), cliChannel)
		return m.SessionID, err
	}
	return resolveSession(st, id)
}

// abortOnSignal is a context that SIGINT cancels as an abort by the user
// and SIGTERM as an interruption; stop releases the signals and the
// goroutine that waits for them.
func abortOnSignal() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case s := <-sigs:
			if s == os.Interrupt {
				cancel(core.ErrAborted)
			} else {
				cancel(core.ErrInterrupted)
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		<-exited
		cancel(nil)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// replyWriter streams the reply's text to stdout: as it comes on a pipe,
// with control characters shown rather than obeyed on a terminal, nothing
// with --json (quiet).
type replyWriter struct {
	w           io.Writer
	safe, quiet bool
	open        bool // text written that does not end with a newline
}

func (r *replyWriter) text(s string) {
	if r.quiet || s == "" {
		return
	}
	if r.safe {
		s = termsafe.Text(s)
	}
	io.WriteString(r.w, s)
	r.open = !strings.HasSuffix(s, "\n")
}

// endLine ends the text written so far with a newline, if it lacks one.
func (r *replyWriter) endLine() {
	if r.open {
		io.WriteString(r.w, "\n")
		r.open = false
	}
}
