package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/miniclaw/miniclaw/internal/pgstore"
	"github.com/miniclaw/miniclaw/internal/session"
)

func importCmd(fs *flag.FlagSet) sessionsCmd {
	from := fs.String("from", "", "the files store to copy: a data directory (holding sessions/) or a sessions directory")
	return sessionsCmd{
		usage: "import --from DIR",
		about: `Copies the sessions of a files store into the PostgreSQL store
(MINI_OPENCLAW_DATABASE_URL): every live session and every archived copy, line
for line, so that "sessions export" prints the same bytes on both.

Each session is copied in one transaction: stopped at any point, the import
leaves each session whole or absent, and running it again copies the rest. A
session the database already holds line for line is skipped; one of which it
holds the first lines gets the lines added since (stop the gateways on the
files store before the last run). A session the database holds with more or
other lines is a conflict: reported, left alone, never merged. A line that is
no message is copied as it is; a torn last line (an append cut short by a
crash) is left out and reported.

Progress and a summary go to stderr; the exit code is 0 only when every
session was imported, caught up or skipped.`,
		database: true,
		check: func() error {
			if *from == "" {
				return errors.New("--from DIR is required: the data directory or sessions directory to copy")
			}
			return nil
		},
		run: func(st session.Backend, _ []string, _, stderr io.Writer) error {
			return runImport(st.(*pgstore.Store), *from, stderr)
		},
	}
}

// runImport copies the files store at from into db, reporting on stderr.
func runImport(db *pgstore.Store, from string, stderr io.Writer) error {
	dir := from
	if fi, err := os.Stat(filepath.Join(from, "sessions")); err == nil && fi.IsDir() {
		dir = filepath.Join(from, "sessions")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("--from %s: not a data directory or a sessions directory", from)
	}
	// Its warnings (a transcript it cannot read) go to stderr too.
	src, err := session.Open(dir, session.Options{Logger: sessionsLog(stderr)})
	if err != nil {
		return err
	}
	defer src.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "importing the sessions of %s into %s\n", dir, db.Where())
	sum, err := db.Import(ctx, src, func(r pgstore.ImportReport) {
		fmt.Fprintf(stderr, "[%d/%d] %s\n", r.N, r.Of, importLine(r))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "import: %d imported, %d caught up, %d skipped, %d conflicts, %d failed\n",
		sum.Imported, sum.CaughtUp, sum.Skipped, sum.Conflicts, sum.Failed)
	if !sum.OK() {
		return fmt.Errorf("%d sessions were not imported (conflicts and failures above); the others are in the database", sum.Conflicts+sum.Failed)
	}
	return nil
}

// importLine says what the import did, or is doing, with one transcript.
func importLine(r pgstore.ImportReport) string {
	what := "session " + r.Session
	if r.Archive != "" {
		what = fmt.Sprintf("archived session %s (%s)", r.Session, r.Archive)
	}
	var line string
	switch r.Outcome {
	case "":
		line = fmt.Sprintf("%s: copying %d lines", what, r.Lines)
	case pgstore.Skipped:
		line = what + ": skipped, already in the database"
	case pgstore.Conflict, pgstore.Failed:
		line = fmt.Sprintf("%s: %s", what, r.Outcome)
	default:
		line = fmt.Sprintf("%s: %s (%d lines)", what, r.Outcome, r.Lines)
	}
	if r.Detail != "" {
		line += ": " + r.Detail
	}
	return line
}
