package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/memory"
	"github.com/miniclaw/miniclaw/internal/skills"
)

const skillsUsage = `Usage: miniclaw skills list [flags]

Lists the skills of the workspace (<workspace>/.openclaw/skills/<name>/SKILL.md) as the
gateway indexes them for the system prompt: name, location (the path the model passes
to read_file), description, and the problem of a skill that is left out of the prompt.
Exit status: 0 when every skill is usable, 1 when one has a problem, 2 for a bad
command line.

Flags:
`

const memoryUsage = `Usage:
  miniclaw memory show [flags]           print the Memory section of the system prompt, as the model sees it now
  miniclaw memory search [flags] QUERY   ranked keyword search of both MEMORY.md files and the daily logs

search prints file:line: text, best first. Exit status: 0 with results, 1 without
(or on an error), 2 for a bad command line.

Flags:
`

// runSkills is `miniclaw skills`.
func runSkills(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, paths := knowledgeFlags("skills", skillsUsage, stderr, getenv)
	if len(args) == 0 || args[0] != "list" {
		if len(args) > 0 && isHelp(args[0]) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		fs.Usage()
		return usageError{errors.New(`the command is "skills list"`)}
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", pos[0])}
	}
	p, err := paths()
	if err != nil {
		return err
	}
	list := skills.New(p.SkillsDir, p.Workspace, nil).Skills()
	if len(list) == 0 {
		fmt.Fprintf(stdout, "no skills in %s\n", p.SkillsDir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLOCATION\tDESCRIPTION\tPROBLEM")
	bad := 0
	for _, s := range list {
		problem := "-"
		if s.Problem != "" {
			problem = s.Problem
			bad++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Location, orDash(s.Description), problem)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d skills have a problem and are left out of the prompt", bad, len(list))
	}
	return nil
}

// runMemory is `miniclaw memory`.
func runMemory(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, paths := knowledgeFlags("memory", memoryUsage, stderr, getenv)
	limit := fs.Int("limit", memory.DefaultSearchLimit, "search: most results to print")
	if len(args) == 0 || args[0] != "show" && args[0] != "search" {
		if len(args) > 0 && isHelp(args[0]) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		fs.Usage()
		return usageError{errors.New(`the command is "memory show" or "memory search QUERY"`)}
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case args[0] == "show" && len(pos) > 0:
		return usageError{fmt.Errorf("show takes no arguments, got %q", pos[0])}
	case args[0] == "search" && len(pos) == 0:
		return usageError{errors.New("search needs a QUERY")}
	case *limit < 1:
		return usageError{fmt.Errorf("--limit must be 1 or more, got %d", *limit)}
	}
	p, err := paths()
	if err != nil {
		return err
	}
	store := &memory.Store{Workspace: p.Workspace, Dir: p.MemoryDir}
	if args[0] == "show" {
		section := store.MemorySection()
		if section == "" {
			fmt.Fprintf(stdout, "no memory yet: %s, %s and %s are empty or missing\n",
				store.WorkspaceFile(), store.File(), store.LogDir())
			return nil
		}
		_, err := io.WriteString(stdout, section)
		return err
	}
	query := strings.Join(pos, " ")
	hits, err := store.Search(query, *limit)
	if err != nil {
		return err
	}
	if len(hits) == 0 {
		return fmt.Errorf("no results for %q", query)
	}
	_, err = io.WriteString(stdout, memory.FormatHits(hits))
	return err
}

// knowledgeFlags is the flag set of `miniclaw skills|memory`: the
// gateway's --workspace and --data-dir, and the command's usage.
func knowledgeFlags(name, usage string, stderr io.Writer, getenv func(string) string) (*flag.FlagSet, func() (config.Paths, error)) {
	fs := flag.NewFlagSet("miniclaw "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	paths := config.PathFlags(fs, getenv)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, paths
}

func isHelp(arg string) bool { return arg == "help" || arg == "--help" || arg == "-h" }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
