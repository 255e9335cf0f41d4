package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// binPath is the miniclaw binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "miniclaw-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "miniclaw")
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain: the go command is needed to build miniclaw:", err)
		return 1
	}
	// -buildvcs=auto overrides a GOFLAGS=-buildvcs=false, so a binary built
	// in a git checkout carries its commit, as a user's build does.
	args := []string{"build", "-buildvcs=auto", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

const cliTimeout = 20 * time.Second

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, cliTimeout, nil, "version")
	if r.code != 0 {
		t.Fatalf("miniclaw version: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "miniclaw ") || !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("miniclaw version printed %q, want one line starting with %q", r.stdout, "miniclaw ")
	}
}

// TestVersionNamesTheCommit: a binary built in a git checkout says which
// commit, of when, and whether the tree had changes, as its build info
// records them.
func TestVersionNamesTheCommit(t *testing.T) {
	t.Parallel()
	info, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatalf("read the build info of %s: %v", binPath, err)
	}
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	if vcs["vcs.revision"] == "" {
		t.Skip("the test binary carries no VCS stamps: not built in a git clone (a git worktree's .git file is not recognised by go build)")
	}
	r := runCLI(t, cliTimeout, nil, "version")
	if r.code != 0 {
		t.Fatalf("miniclaw version: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{vcs["vcs.revision"][:12], vcs["vcs.time"], info.GoVersion} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("miniclaw version printed %q, want it to contain %q (build info %v)", r.stdout, want, vcs)
		}
	}
	if got, want := strings.Contains(r.stdout, "modified"), vcs["vcs.modified"] == "true"; got != want {
		t.Errorf("miniclaw version printed %q; vcs.modified is %q", r.stdout, vcs["vcs.modified"])
	}
}

// TestArchiveHelpSaysWhenTheGatewayNotices: the help says what a running
// gateway does with a session archived behind its back, as the README does
// (and the store does: its watch drops it; TestGatewaySeesCLIChanges).
func TestArchiveHelpSaysWhenTheGatewayNotices(t *testing.T) {
	t.Parallel()
	r := runCLI(t, cliTimeout, nil, "sessions", "archive", "--help")
	if r.code != 0 {
		t.Fatalf("miniclaw sessions archive --help: exit %d, stderr %q", r.code, r.stderr)
	}
	help := strings.Join(strings.Fields(r.stdout+r.stderr), " ")
	if want := "drops the session from its list within a moment"; !strings.Contains(help, want) || strings.Contains(help, "until it restarts") {
		t.Errorf("miniclaw sessions archive --help does not say %q:\n%s", want, help)
	}
}

func TestVersionString(t *testing.T) {
	t.Parallel()
	stamped := func(main string, settings ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: main}}
		for i := 0; i+1 < len(settings); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return info
	}
	const rev = "7e3b1f5e55b3b1b7c6c4afdfcacc0aa4d3051edd"
	for _, tc := range []struct {
		name   string
		ldflag string
		info   *debug.BuildInfo
		want   string
	}{
		{"git checkout", "", stamped("(devel)", "vcs", "git", "vcs.revision", rev, "vcs.time", "2026-11-30T08:12:03Z", "vcs.modified", "false"),
			"dev (commit 7e3b1f5e55b3 of 2026-11-30T08:12:03Z, go1.26.8)"},
		{"uncommitted changes", "", stamped("(devel)", "vcs.revision", rev, "vcs.time", "2026-11-30T08:12:03Z", "vcs.modified", "true"),
			"dev (commit 7e3b1f5e55b3 of 2026-11-30T08:12:03Z, modified, go1.26.8)"},
		{"go install @latest", "", stamped("v0.0.0-20261130081203-7e3b1f5e55b3"),
			"v0.0.0-20261130081203-7e3b1f5e55b3 (go1.26.8)"},
		{"release", "v1.2.3", stamped("(devel)", "vcs.revision", rev, "vcs.time", "2026-11-30T08:12:03Z"),
			"v1.2.3 (commit 7e3b1f5e55b3 of 2026-11-30T08:12:03Z, go1.26.8)"},
		{"no VCS", "", stamped("(devel)"),
			"dev (no commit recorded: built outside a git checkout or with -buildvcs=false; go1.26.8)"},
		{"no build info", "", nil, "dev"},
	} {
		if got := versionString(tc.ldflag, tc.info); got != tc.want {
			t.Errorf("%s: versionString = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNoArgsPrintsUsage(t *testing.T) {
	t.Parallel()
	r := runCLI(t, cliTimeout, nil)
	if r.code != 2 {
		t.Errorf("miniclaw with no arguments: exit %d, want 2", r.code)
	}
	if !strings.Contains(r.stderr, "Usage:") || !strings.Contains(r.stderr, "miniclaw gateway") {
		t.Errorf("miniclaw with no arguments: stderr %q, want the usage", r.stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	r := runCLI(t, cliTimeout, nil, "bogus")
	if r.code != 2 {
		t.Errorf("miniclaw bogus: exit %d, want 2", r.code)
	}
	if !strings.Contains(r.stderr, "bogus") || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("miniclaw bogus: stderr %q, want the command named and the usage", r.stderr)
	}
}

func TestGatewayHelp(t *testing.T) {
	t.Parallel()
	r := runCLI(t, cliTimeout, nil, "gateway", "--help")
	if r.code != 0 {
		t.Errorf("miniclaw gateway --help: exit %d, want 0", r.code)
	}
	out := r.stdout + r.stderr
	for _, want := range []string{"MINI_OPENCLAW_PORT", "MINI_OPENCLAW_DATA_DIR", "MINI_OPENCLAW_TOKEN", "ANTHROPIC_API_KEY"} {
		if !strings.Contains(out, want) {
			t.Errorf("miniclaw gateway --help does not mention %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "miniclaw gateway listening") {
		t.Errorf("miniclaw gateway --help started a gateway:\n%s", out)
	}
}

// Bad configuration is a startup error naming the variable, exit 1, and the
// gateway never listens.
func TestGatewayBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		vars  map[string]string
		names string // the stderr must name this variable
	}{
		{"port not a number", map[string]string{"MINI_OPENCLAW_PORT": "abc"}, "MINI_OPENCLAW_PORT"},
		{"port out of range", map[string]string{"MINI_OPENCLAW_PORT": "70000"}, "MINI_OPENCLAW_PORT"},
		{"non-loopback host without token", map[string]string{"MINI_OPENCLAW_HOST": "0.0.0.0"}, "MINI_OPENCLAW_TOKEN"},
		{"negative max context", map[string]string{"MINI_OPENCLAW_MAX_CONTEXT": "-1"}, "MINI_OPENCLAW_MAX_CONTEXT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := t.TempDir()
			vars := gatewayEnv(ws, filepath.Join(ws, "data"), tc.vars)
			r := runCLI(t, cliTimeout, vars, "gateway")
			if r.code != 1 {
				t.Errorf("exit %d, want 1\nstderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.names) {
				t.Errorf("stderr does not name %s:\n%s", tc.names, r.stderr)
			}
			if strings.Contains(r.stderr, "miniclaw gateway listening") {
				t.Errorf("the gateway listened despite the bad configuration:\n%s", r.stderr)
			}
		})
	}
}

// With no key and no provider chosen the gateway starts on the scripted
// provider and says so loudly: a WARN log naming ANTHROPIC_API_KEY, and
// provider + providerWarning in /readyz.
func TestGatewayNoKeyFallsBackToScripted(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_PROVIDER": ""}))
	var warn string
	for line := range strings.SplitSeq(g.stderr.String(), "\n") {
		if strings.Contains(line, "ANTHROPIC_API_KEY") {
			warn = line
			break
		}
	}
	if warn == "" {
		t.Fatalf("no startup warning naming ANTHROPIC_API_KEY:\n%s", g.stderr.String())
	}
	if !strings.Contains(warn, "level=WARN") || !strings.Contains(warn, "scripted") {
		t.Errorf("the fallback warning is not a WARN about the scripted provider: %s", warn)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ready struct {
		Status          string `json:"status"`
		Provider        string `json:"provider"`
		ProviderWarning string `json:"providerWarning"`
	}
	if err := g.getJSON(ctx, "/readyz", &ready); err != nil {
		t.Fatal(err)
	}
	if ready.Status != "ready" || ready.Provider != "scripted" {
		t.Errorf("/readyz = %+v, want status ready and provider scripted", ready)
	}
	if !strings.Contains(ready.ProviderWarning, "ANTHROPIC_API_KEY") {
		t.Errorf("/readyz providerWarning %q does not tell what to set", ready.ProviderWarning)
	}
	if code, took := g.terminate(10 * time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d after %s, want 0", code, took)
	}
}

// An explicitly chosen scripted provider is not a fallback: no warning.
func TestGatewayExplicitScriptedNoWarning(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ready struct {
		Provider        string `json:"provider"`
		ProviderWarning string `json:"providerWarning"`
	}
	if err := g.getJSON(ctx, "/readyz", &ready); err != nil {
		t.Fatal(err)
	}
	if ready.Provider != "scripted" || ready.ProviderWarning != "" {
		t.Errorf("/readyz = %+v, want provider scripted without a warning", ready)
	}
}

// SIGTERM on an idle gateway is a clean, quick exit with status 0.
func TestGatewaySIGTERMIdle(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), nil))
	code, took := g.terminate(5 * time.Second)
	if code != 0 {
		t.Errorf("SIGTERM on an idle gateway: exit %d, want 0\nstderr:\n%s", code, g.stderr.String())
	}
	if took > 3*time.Second {
		t.Errorf("SIGTERM on an idle gateway took %s", took)
	}
}
