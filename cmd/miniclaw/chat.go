package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/miniclaw/miniclaw/internal/chatclient"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

const defaultGatewayURL = "http://127.0.0.1:3210"

// runChat is `miniclaw chat`: flags, the terminal's raw mode, signals; the
// client itself is internal/chatclient.
func runChat(args []string, getenv func(string) string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miniclaw chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "gateway address, http(s):// or ws(s):// (env MINI_OPENCLAW_URL, default "+defaultGatewayURL+")")
	token := fs.String("token", "", "gateway auth token (env MINI_OPENCLAW_TOKEN)")
	sessionID := fs.String("session", "", "session ID, or a unique prefix of one, to resume, or an ID to create (default: the most recently active session of any channel, else a new one); sessions chat starts are of channel \"cli\"")
	full := fs.Bool("full", false, "show every tool call's whole input and output instead of a line each")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: miniclaw chat [flags]

Chats with a running gateway from the terminal: replies stream as they are
written, tool calls show as one numbered line each (/tool N shows call N
whole, --full shows them all whole). A resumed session shows its last 3
turns. Type /help in the chat for the commands (/new, /sessions,
/switch ID, /history [N], /tool [N], /abort, /quit). Ctrl-C aborts the
running reply; pressed again within 2 s, or when nothing runs, it quits.
At connect it says so when the gateway runs on the offline scripted
provider (no model is called). While the gateway is unreachable, one
status line says so and counts the attempts to reconnect.

When standard input is not a terminal, each line is sent as a message and
answered before the next is read; the command exits at the end of input,
with status 1 if any message was answered with an error. Standard output
then carries the replies alone; connection notes, tool, usage and status
lines and errors go to standard error.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (see miniclaw chat --help)", fs.Arg(0))}
	}
	if *sessionID != "" {
		if err := protocol.ValidateSessionID(*sessionID); err != nil {
			return usageError{fmt.Errorf("--session %q: %w", *sessionID, err)}
		}
	}
	opt := chatclient.Options{
		URL:       firstSet(*url, getenv("MINI_OPENCLAW_URL"), defaultGatewayURL),
		Token:     firstSet(*token, getenv("MINI_OPENCLAW_TOKEN")),
		SessionID: *sessionID,
		Full:      *full,
		In:        stdin,
		Out:       stdout,
		Stderr:    stderr,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	opt.Interrupt = interrupts

	fd := int(stdin.Fd())
	if term.IsTerminal(fd) {
		state, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		defer term.Restore(fd, state)
		opt.Terminal = true
		opt.Size = func() (int, int, error) { return term.GetSize(fd) }
	}
	return chatclient.Run(ctx, opt)
}

// firstSet returns the first non-empty value.
func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// usageError is a command line that does not make sense: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode reports a command's error and maps it to the exit status: 0 for
// none or --help, 2 for a command line that does not make sense, a
// statusError's own, else 1.
func exitCode(stderr io.Writer, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "miniclaw %s: %v\n", name, err)
	var se statusError
	switch {
	case errors.As(err, new(usageError)):
		return 2
	case errors.As(err, &se):
		return se.status
	}
	return 1
}
