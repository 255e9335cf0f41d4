package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/miniclaw/miniclaw/internal/chatclient"
	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/termsafe"
)

// `miniclaw sessions` works on the data directory itself, beside a running
// gateway or without one. It goes through session.Store, whose appends are
// serialised across processes by an flock on each transcript: reads see
// whole lines, and a fork or an archive takes the same lock as the
// gateway's appends. What it prints from transcripts and metas goes through
// termsafe (chatclient's renderers do it for theirs), so that their control
// characters are shown, not obeyed by the terminal; `export --format jsonl`
// alone copies the transcript's bytes exactly.

const sessionsUsage = `Usage: miniclaw sessions <command> [flags]

Reads and manages the sessions in the data directory, or in the PostgreSQL
database (see below), directly (no gateway needed; safe beside a running one).

Commands:
  list                     all sessions, most recent first (--json for JSON; --archived: the archived ones)
  show ID                  the messages of a session, with tool calls (--limit N: the last N, --full: whole tool output)
  export ID                the transcript as JSONL (exact bytes) or Markdown (--format md), -o FILE
  fork ID                  a new session from the first --messages N messages (all by default), --to NEWID
  archive ID               move a session to sessions/archive/ (see --help about running gateways)
  rename ID TITLE          set a session's title (--help: running gateways)
  unarchive ID             move an archived session back (the newest copy of its ID)
  import --from DIR        copy a files store (a data dir or its sessions/) into the PostgreSQL store

ID may be the first characters of a session ID, when no other ID starts with
them (miniclaw sessions show 3649).

Each command takes --workspace and --data-dir (env MINI_OPENCLAW_WORKSPACE,
MINI_OPENCLAW_DATA_DIR), as the gateway does, and --database-url (env
MINI_OPENCLAW_DATABASE_URL): when set, the commands work on the sessions in
that PostgreSQL database instead. Run "miniclaw sessions <command> --help".
`

// sessionsCmd is one subcommand: its flags, and what it does with its
// arguments once the store is open.
type sessionsCmd struct {
	usage string // the first help line, after "Usage: miniclaw sessions "
	about string
	args  int // positional arguments: 0, 1 (the session ID) or 2 (the ID and a value)
	// archived: the ID names an archived session, not a live one.
	archived bool
	// check validates the flags, before any file is touched; nil: nothing to check.
	check func() error
	// database: the command works on the PostgreSQL store only.
	database bool
	run      func(st session.Backend, args []string, stdout, stderr io.Writer) error
}

func runSessions(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, sessionsUsage)
		return usageError{errors.New("a command is required")}
	}
	switch args[0] {
	case "help", "--help", "-h":
		fmt.Fprint(stdout, sessionsUsage)
		return nil
	}
	fs := flag.NewFlagSet("miniclaw sessions "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	paths := config.PathFlags(fs, getenv)
	database := config.DatabaseFlags(fs, getenv)
	var cmd sessionsCmd
	switch args[0] {
	case "list":
		cmd = listCmd(fs)
	case "show":
		cmd = showCmd(fs)
	case "export":
		cmd = exportCmd(fs)
	case "fork":
		cmd = forkCmd(fs)
	case "archive":
		cmd = archiveCmd(fs)
	case "rename":
		cmd = renameCmd()
	case "unarchive":
		cmd = unarchiveCmd()
	case "import":
		cmd = importCmd(fs)
	default:
		fmt.Fprint(stderr, sessionsUsage)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: miniclaw sessions %s\n\n%s\n\n", cmd.usage, cmd.about)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != cmd.args {
		want := [...]string{"no arguments", "one argument, the session ID", "two arguments, the session ID and the title"}[cmd.args]
		return usageError{fmt.Errorf("%s takes %s (see miniclaw sessions %s --help)", args[0], want, args[0])}
	}
	if cmd.args >= 1 {
		if err := protocol.ValidateSessionID(pos[0]); err != nil {
			return usageError{fmt.Errorf("session ID %q: %w", pos[0], err)}
		}
	}
	if cmd.check != nil {
		if err := cmd.check(); err != nil {
			return usageError{err}
		}
	}
	p, err := paths()
	if err != nil {
		return err
	}
	db, err := database()
	if err != nil {
		return err
	}
	if cmd.database && db.URL == "" {
		return usageError{fmt.Errorf("%s works on the PostgreSQL store: set MINI_OPENCLAW_DATABASE_URL or --database-url", args[0])}
	}
	// Fsync always: a fork is one append, and a command line is not a hot path.
	st, err := openStore(storeOptions{db: db, sessionsDir: p.SessionsDir, workspace: p.Workspace, fsync: true, log: sessionsLog(stderr), existing: true})
	if err != nil {
		return err
	}
	defer st.Close()
	if cmd.args >= 1 {
		if pos[0], err = resolveID(st, pos[0], cmd.archived); err != nil {
			return err
		}
	}
	return cmd.run(st, pos, stdout, stderr)
}

// parseInterspersed parses flags placed before or after the positional
// arguments ("show ID --limit 5" as well as "show --limit 5 ID"), which the
// flag package alone stops at. Errors are usage errors.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseFlags is fs.Parse with its errors as usage errors, but for a
// request for help (flag.ErrHelp), which the caller answers with exit 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}

// sessionsLog is where the store's warnings (a session left out of the
// listing, a meta file repaired) go: stderr.
func sessionsLog(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: dropTime}))
}

// dropTime leaves the time out of a command's log lines: they are printed
// as they happen.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// resolveSession is the session ID that id names exactly or as the unique
// prefix of one (the first characters of a UUID are enough to type); the
// error names where it looked, or the IDs an ambiguous prefix starts.
func resolveSession(st session.Backend, id string) (string, error) { return resolveID(st, id, false) }

// resolveID is resolveSession among the live sessions or, when archived,
// among the archived ones.
func resolveID(st session.Backend, id string, archived bool) (string, error) {
	resolve, where, list := st.Resolve, st.Where(), "list"
	if archived {
		resolve, where, list = st.ResolveArchived, st.ArchiveWhere(), "list --archived"
	}
	full, err := resolve(id)
	if errors.Is(err, session.ErrNotFound) {
		return "", fmt.Errorf("session %s not found in %s (miniclaw sessions %s shows them)", termsafe.Line(id), where, list)
	}
	return full, err
}

// notFound names the session and where it was looked for.
func notFound(st session.Backend, id string, err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("session %s not found in %s", id, st.Where())
	}
	return err
}

func listCmd(fs *flag.FlagSet) sessionsCmd {
	asJSON := fs.Bool("json", false, "print a JSON array of the sessions' meta")
	archived := fs.Bool("archived", false, "list the archived sessions (sessions/archive/) instead")
	return sessionsCmd{
		usage: "list [--json] [--archived]",
		about: `Lists all sessions, most recently updated first: ID, channel, messages, updated, title.

With --archived, lists the sessions archived to sessions/archive/ instead, most
recently archived first: ID, when archived, messages, title. An ID archived more
than once is listed once per copy; "miniclaw sessions unarchive ID" moves the
newest copy back.`,
		run: func(st session.Backend, _ []string, stdout, _ io.Writer) error {
			if *archived {
				all, err := st.ListArchived()
				if err != nil {
					return err
				}
				if *asJSON {
					return writeJSON(stdout, all)
				}
				return writeArchivedTable(stdout, all, time.Now())
			}
			metas, err := st.List()
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(stdout, metas)
			}
			return chatclient.WriteSessionTable(stdout, metas, "", time.Now())
		},
	}
}

// writeJSON prints v as indented JSON, its strings safe for a terminal.
func writeJSON(stdout io.Writer, v any) error {
	b, err := core.MarshalJSONIndent(v, "  ")
	if err != nil {
		return err
	}
	_, err = stdout.Write(termsafe.JSON(append(b, '\n')))
	return err
}

// writeArchivedTable lists archived sessions one per line: ID, when
// archived, messages, title.
func writeArchivedTable(w io.Writer, all []session.Archived, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tARCHIVED\tMESSAGES\tTITLE")
	for _, a := range all {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", termsafe.Line(a.SessionID), chatclient.Ago(time.UnixMilli(a.ArchivedAt), now), a.MessageCount, termsafe.Line(a.Title))
	}
	return tw.Flush()
}

func showCmd(fs *flag.FlagSet) sessionsCmd {
	limit := fs.Int("limit", 0, "show only the last N messages (0: all)")
	full := fs.Bool("full", false, "print every tool call's whole input and output instead of a line each")
	return sessionsCmd{
		usage: "show ID [--limit N] [--full]",
		about: "Prints the messages of a session, with their tool calls and results: one numbered line\neach for a call and its result, or with --full the whole input and output.",
		args:  1,
		check: func() error {
			if *limit < 0 {
				return fmt.Errorf("--limit %d: must be 0 (all) or more", *limit)
			}
			return nil
		},
		run: func(st session.Backend, args []string, stdout, stderr io.Writer) error {
			id := args[0]
			meta, err := st.Get(id)
			if err != nil {
				return notFound(st, id, err)
			}
			var msgs []core.Message
			var corrupt []session.LineError
			if *limit > 0 {
				msgs, corrupt, err = st.Tail(id, *limit)
			} else {
				msgs, corrupt, err = st.Load(id)
			}
			if err != nil {
				return notFound(st, id, err)
			}
			warnCorrupt(stderr, id, corrupt)
			fmt.Fprintf(stdout, "Session %s · %s · %s · \"%s\"\n\n", id, termsafe.Line(meta.Channel), chatclient.Count(meta.MessageCount, "message"), termsafe.Line(meta.Title))
			return chatclient.WriteTranscript(stdout, msgs, chatclient.ToolView{Full: *full})
		},
	}
}

func exportCmd(fs *flag.FlagSet) sessionsCmd {
	format := fs.String("format", "jsonl", "jsonl (the transcript's exact lines) or md (a Markdown document)")
	out := fs.String("o", "", "write to this file instead of standard output")
	return sessionsCmd{
		usage: "export ID [--format jsonl|md] [-o FILE]",
		about: "Exports a session: jsonl copies the transcript's complete lines byte for byte;\nmd writes a readable Markdown document with tool calls in fenced blocks.",
		args:  1,
		check: func() error {
			if *format != "jsonl" && *format != "md" {
				return fmt.Errorf("--format %q: must be jsonl or md", *format)
			}
			return nil
		},
		run: func(st session.Backend, args []string, stdout, stderr io.Writer) error {
			id := args[0]
			meta, err := st.Get(id)
			if err != nil {
				return notFound(st, id, err)
			}
			var buf bytes.Buffer
			if *format == "jsonl" {
				err = st.Export(&buf, id)
			} else {
				var msgs []core.Message
				var corrupt []session.LineError
				if msgs, corrupt, err = st.Load(id); err == nil {
					warnCorrupt(stderr, id, corrupt)
					err = chatclient.WriteMarkdown(&buf, meta, msgs)
				}
			}
			if err != nil {
				return notFound(st, id, err)
			}
			if *out == "" {
				_, err = stdout.Write(buf.Bytes())
				return err
			}
			if err := os.WriteFile(*out, buf.Bytes(), 0o600); err != nil {
				return fmt.Errorf("export %s: %w", id, err)
			}
			fmt.Fprintf(stderr, "exported session %s to %s (%s)\n", id, *out, chatclient.Count(buf.Len(), "byte"))
			return nil
		},
	}
}

func forkCmd(fs *flag.FlagSet) sessionsCmd {
	n := fs.Int("messages", 0, "copy the first N messages (0: all)")
	to := fs.String("to", "", "ID of the new session (default: a new UUID)")
	return sessionsCmd{
		usage: "fork ID [--messages N] [--to NEWID]",
		about: "Creates a new session holding the first N messages of session ID and prints its ID.\nA running gateway lists the new session within a moment.",
		args:  1,
		check: func() error {
			if *n < 0 {
				return fmt.Errorf("--messages %d: must be 0 (all) or more", *n)
			}
			if *to != "" {
				if err := protocol.ValidateSessionID(*to); err != nil {
					return fmt.Errorf("--to %q: %w", *to, err)
				}
			}
			return nil
		},
		run: func(st session.Backend, args []string, stdout, stderr io.Writer) error {
			id := args[0]
			m, skipped, err := st.Fork(id, *n, *to)
			if err != nil {
				return notFound(st, id, err)
			}
			warnCorrupt(stderr, id, skipped)
			fmt.Fprintf(stderr, "forked session %s into %s (%s)\n", id, m.SessionID, chatclient.Count(m.MessageCount, "message"))
			fmt.Fprintln(stdout, m.SessionID)
			return nil
		},
	}
}

func archiveCmd(fs *flag.FlagSet) sessionsCmd {
	force := fs.Bool("force", false, "archive even if the last message has no reply (a turn may be running)")
	return sessionsCmd{
		usage: "archive ID [--force]",
		about: `Moves a session's files to sessions/archive/<id>.<UTC time>.jsonl (and .meta.json).
Nothing is deleted. On PostgreSQL (MINI_OPENCLAW_DATABASE_URL) the session is
archived in the database, under the same name.

This command cannot see a gateway's running turns. It takes the transcript's
lock, so an append in progress finishes first and no later append can land in
the archive; but a turn still running would lose its reply. So it refuses while
the last message is a user message without a reply (a turn started and has not
finished, or a gateway crashed during it): wait, archive through the gateway
(POST /api/sessions/ID/archive), or pass --force. A running gateway drops the
session from its list within a moment and answers 404 for it; a client still
attached to it that sends a message starts a new, empty session with that ID.
While one runs, prefer archiving through it. "miniclaw sessions unarchive ID"
moves it back.`,
		args: 1,
		run: func(st session.Backend, args []string, stdout, stderr io.Writer) error {
			id := args[0]
			if !*force {
				last, _, err := st.Tail(id, 1)
				if err != nil {
					return notFound(st, id, err)
				}
				if n := len(last); n > 0 && last[n-1].Role == core.RoleUser {
					ago := time.Since(time.UnixMilli(last[n-1].Timestamp)).Round(time.Second)
					return fmt.Errorf("session %s may have a turn running: its last message (%s ago) has no reply yet; "+
						"wait, archive it through the gateway (POST /api/sessions/%s/archive), or pass --force", id, ago, id)
				}
			}
			path, err := st.Archive(id)
			if err != nil {
				return notFound(st, id, err)
			}
			fmt.Fprintf(stdout, "archived session %s to %s\n", id, path)
			return nil
		},
	}
}

func renameCmd() sessionsCmd {
	return sessionsCmd{
		usage: "rename ID TITLE",
		about: `Sets the title that lists show for a session: one line of at most 80 characters.
The title is kept in the session's meta file (sessions/<id>.meta.json).

A running gateway shows the new title within a moment, and never writes the
old one back.`,
		args: 2,
		run: func(st session.Backend, args []string, stdout, _ io.Writer) error {
			m, err := st.Rename(args[0], args[1])
			if err != nil {
				return notFound(st, args[0], err)
			}
			fmt.Fprintf(stdout, "renamed session %s to \"%s\"\n", m.SessionID, termsafe.Line(m.Title))
			return nil
		},
	}
}

func unarchiveCmd() sessionsCmd {
	return sessionsCmd{
		usage: "unarchive ID",
		about: `Moves an archived session (see "miniclaw sessions list --archived") back from
sessions/archive/ to the live sessions, under its ID, with its title and channel.
When the ID was archived more than once, the newest copy comes back and the
others stay archived. Refused when a live session has the ID: nothing is
replaced. A running gateway lists the session again within a moment.`,
		args:     1,
		archived: true,
		run: func(st session.Backend, args []string, stdout, _ io.Writer) error {
			id := args[0]
			a, copies, err := st.Unarchive(id)
			if errors.Is(err, session.ErrLive) {
				return fmt.Errorf("session %s is live in %s: unarchive never replaces a session (miniclaw sessions show %s)", id, st.Where(), id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "unarchived session %s from %s (%s, \"%s\")\n", id, a.File, chatclient.Count(a.MessageCount, "message"), termsafe.Line(a.Title))
			if copies > 1 {
				fmt.Fprintf(stdout, "it was the newest of %d archived copies of %s; the others stay in %s\n", copies, id, st.ArchiveWhere())
			}
			return nil
		},
	}
}

func warnCorrupt(w io.Writer, id string, lines []session.LineError) {
	for _, le := range lines {
		fmt.Fprintf(w, "warning: session %s: unreadable transcript %s (left out)\n", id, termsafe.Line(le.String()))
	}
}
