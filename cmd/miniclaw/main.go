// Command miniclaw is a self-hosted AI agent gateway: one binary, one port,
// conversations kept as plain JSONL files. See `miniclaw help`.
package main

import (
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
  miniclaw sessions <cmd>    list, show, export, fork or archive sessions in the data dir
  miniclaw skills list       list the workspace's skills and their problems
  miniclaw memory <cmd>      show the memory the model sees (show) or search it (search QUERY)
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
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "miniclaw %s\n", versionString())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "miniclaw: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	if ok {
		v += " (" + info.GoVersion + ")"
	}
	return v
}
