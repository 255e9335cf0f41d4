// Command miniclaw is a self-hosted AI agent gateway: one binary, one port,
// conversations kept as plain JSONL files. See `miniclaw help`.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/miniclaw/miniclaw/internal/sandbox"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

const usage = `miniclaw — a self-hosted AI agent gateway

Usage:
  miniclaw gateway [flags]   run the gateway (HTTP, WebSocket and WebChat on one port)
  miniclaw agent -m MESSAGE  run one turn from the shell (no gateway needed), the reply on stdout
  miniclaw chat [flags]      chat with a running gateway from the terminal
  miniclaw sessions <cmd>    list, show, export, fork, archive, unarchive or rename sessions; import a data dir into PostgreSQL
  miniclaw skills list       list the workspace's skills and their problems
  miniclaw memory <cmd>      show the memory the model sees (show) or search it (search QUERY)
  miniclaw mcp <cmd>         show the MCP servers' state and tools (list), approve the workspace's (trust, untrust)
  miniclaw version           print the version
  miniclaw help              show this help

Run "miniclaw gateway --help" for the gateway's flags and environment variables,
and "miniclaw <command> --help" for any other command.
`

func main() {
	// A re-run of this binary as the bash sandbox helper does only that.
	sandbox.RunHelperIfAsked()
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "gateway":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := runGateway(ctx, args[1:], getenv, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "miniclaw gateway: %v\n", err)
			return 1
		}
		return 0
	case "agent":
		return exitCode(stderr, "agent", runAgent(args[1:], getenv, os.Stdin, stdout, stderr))
	case "chat":
		return exitCode(stderr, "chat", runChat(args[1:], getenv, os.Stdin, stdout, stderr))
	case "sessions":
		return exitCode(stderr, "sessions", runSessions(args[1:], getenv, stdout, stderr))
	case "skills":
		return exitCode(stderr, "skills", runSkills(args[1:], getenv, stdout, stderr))
	case "memory":
		return exitCode(stderr, "memory", runMemory(args[1:], getenv, stdout, stderr))
	case "mcp":
		return exitCode(stderr, "mcp", runMCP(args[1:], getenv, stdout, stderr))
	case "version", "--version", "-v":
		info, _ := debug.ReadBuildInfo() // nil without build info
		fmt.Fprintf(stdout, "miniclaw %s\n", versionString(version, info))
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "miniclaw: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// versionString says what the binary was built from: the -ldflags version
// or the module version (go install …@latest records a pseudo-version with
// the commit's date and hash), then the commit, its time and whether the
// tree had changes, from the VCS stamps go build records in a git checkout.
func versionString(ldflag string, info *debug.BuildInfo) string {
	v := ldflag
	if info == nil {
		return cmp.Or(v, "dev")
	}
	if v == "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	v = cmp.Or(v, "dev")
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	rev := vcs["vcs.revision"]
	switch {
	case rev != "":
		from := "commit " + rev[:min(12, len(rev))]
		if t := vcs["vcs.time"]; t != "" {
			from += " of " + t
		}
		if vcs["vcs.modified"] == "true" {
			from += ", modified"
		}
		return v + " (" + from + ", " + info.GoVersion + ")"
	case v == "dev":
		return v + " (no commit recorded: built outside a git checkout or with -buildvcs=false; " + info.GoVersion + ")"
	default:
		return v + " (" + info.GoVersion + ")"
	}
}
