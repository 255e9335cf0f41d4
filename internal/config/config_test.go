package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns a getenv backed by m; names not in m are unset.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// load runs Load with env plus a fresh workspace (unless env names one).
func load(t *testing.T, env map[string]string, args ...string) (Config, string, error) {
	t.Helper()
	full := map[string]string{}
	if _, ok := env["MINI_OPENCLAW_WORKSPACE"]; !ok {
		full["MINI_OPENCLAW_WORKSPACE"] = t.TempDir()
	}
	for k, v := range env {
		full[k] = v
	}
	var out bytes.Buffer
	c, err := Load(envOf(full), args, &out)
	return c, out.String(), err
}

func mustLoad(t *testing.T, env map[string]string, args ...string) Config {
	t.Helper()
	c, out, err := load(t, env, args...)
	if err != nil {
		t.Fatalf("Load(env=%v, args=%q): %v", env, args, err)
	}
	if out != "" {
		t.Fatalf("Load(env=%v, args=%q) wrote %q, want nothing", env, args, out)
	}
	return c
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want error %q", want)
	}
	if err.Error() != want {
		t.Fatalf("Load error\n got %q\nwant %q", err.Error(), want)
	}
}

func TestLoadDefaults(t *testing.T) {
	ws := t.TempDir()
	c, err := Load(envOf(map[string]string{"MINI_OPENCLAW_WORKSPACE": ws}), nil, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(ws, ".mini-openclaw")
	want := Config{
		Host:              "127.0.0.1",
		Port:              3210,
		Workspace:         ws,
		DataDir:           data,
		SessionsDir:       filepath.Join(data, "sessions"),
		MemoryDir:         filepath.Join(data, "memory"),
		SkillsDir:         filepath.Join(ws, ".openclaw", "skills"),
		Model:             "claude-sonnet-4-20250514",
		MaxContext:        1000,
		MaxToolRounds:     10,
		BashTimeout:       30 * time.Second,
		Fsync:             FsyncAlways,
		Provider:          ProviderScripted,
		ProviderDefaulted: true,
		ShutdownTimeout:   10 * time.Second,
		TurnLockTimeout:   10 * time.Minute,
		MCPStartTimeout:   10 * time.Second,
		Sandbox:           SandboxWorkspace,
		Database:          Database{MaxConns: 8, MaxTurns: 32},
	}
	if dir, err := os.UserConfigDir(); err == nil {
		want.MCPTrustFile = filepath.Join(dir, "miniclaw", "mcp-trust.json")
	}
	want.ContextWindow, want.ContextWindowSource = 200000, "default for claude models"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", c, want)
	}
	if got := c.Addr(); got != "127.0.0.1:3210" {
		t.Errorf("Addr() = %q, want 127.0.0.1:3210", got)
	}
	if !c.IsLoopback() {
		t.Error("default host is not loopback")
	}
}

func TestLoadWorkspaceDefaultsToCwd(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(envOf(nil), nil, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if c.Workspace != wd {
		t.Errorf("Workspace = %q, want cwd %q", c.Workspace, wd)
	}
	if want := filepath.Join(wd, ".mini-openclaw"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
	if want := filepath.Join(wd, ".openclaw", "skills"); c.SkillsDir != want {
		t.Errorf("SkillsDir = %q, want %q", c.SkillsDir, want)
	}
}

func TestLoadFromEnv(t *testing.T) {
	ws := t.TempDir()
	data := t.TempDir()
	c := mustLoad(t, map[string]string{
		"MINI_OPENCLAW_HOST":             "0.0.0.0",
		"MINI_OPENCLAW_PORT":             " 8080 ",
		"MINI_OPENCLAW_WORKSPACE":        ws,
		"MINI_OPENCLAW_DATA_DIR":         data,
		"MINI_OPENCLAW_MODEL":            "llama3",
		"MINI_OPENCLAW_MAX_CONTEXT":      "100000",
		"MINI_OPENCLAW_MAX_TOOL_ROUNDS":  "1",
		"MINI_OPENCLAW_BASH_TIMEOUT":     "2m",
		"MINI_OPENCLAW_FSYNC":            "never",
		"MINI_OPENCLAW_TOKEN":            "tok-0123456789abcdef",
		"MINI_OPENCLAW_PROVIDER":         "openai",
		"MINI_OPENCLAW_ALLOWED_ORIGINS":  " example.com, ,*.example.org:8443,",
		"MINI_OPENCLAW_ALLOWED_HOSTS":    "gw.lan, ,Box.Example,",
		"MINI_OPENCLAW_SHUTDOWN_TIMEOUT": "0s",
		"MINI_OPENCLAW_LOG_FORMAT":       "json",
		"MINI_OPENCLAW_MCP_TRUST_FILE":   "/srv/miniclaw/mcp-trust.json",
		"ANTHROPIC_API_KEY":              "ak",
		"ANTHROPIC_BASE_URL":             "http://127.0.0.1:1/a",
		"OPENAI_API_KEY":                 "ok",
		"OPENAI_BASE_URL":                "http://127.0.0.1:11434/v1",
	})
	want := Config{
		Host:             "0.0.0.0",
		Port:             8080,
		Workspace:        ws,
		DataDir:          data,
		SessionsDir:      filepath.Join(data, "sessions"),
		MemoryDir:        filepath.Join(data, "memory"),
		SkillsDir:        filepath.Join(ws, ".openclaw", "skills"),
		Model:            "llama3",
		MaxContext:       100000,
		MaxToolRounds:    1,
		BashTimeout:      2 * time.Minute,
		Fsync:            FsyncNever,
		Token:            "tok-0123456789abcdef",
		Provider:         ProviderOpenAI,
		AnthropicAPIKey:  "ak",
		AnthropicBaseURL: "http://127.0.0.1:1/a",
		OpenAIAPIKey:     "ok",
		OpenAIBaseURL:    "http://127.0.0.1:11434/v1",
		AllowedOrigins:   []string{"example.com", "*.example.org:8443"},
		AllowedHosts:     []string{"gw.lan", "Box.Example"},
		LogJSON:          true,
		TurnLockTimeout:  10 * time.Minute,
		MCPStartTimeout:  10 * time.Second,
		Sandbox:          SandboxWorkspace,
		MCPTrustFile:     "/srv/miniclaw/mcp-trust.json",
		Database:         Database{MaxConns: 8, MaxTurns: 32},
	}
	want.ContextWindow, want.ContextWindowSource = 32768, "conservative default for non-Claude models; set MINI_OPENCLAW_CONTEXT_WINDOW"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("from env\n got %+v\nwant %+v", c, want)
	}
	if c.IsLoopback() {
		t.Error("0.0.0.0 reported as loopback")
	}
}

func TestLoadMCPStartTimeout(t *testing.T) {
	if c := mustLoad(t, nil); c.MCPStartTimeout != 10*time.Second {
		t.Errorf("default MCPStartTimeout = %s, want 10s", c.MCPStartTimeout)
	}
	if c := mustLoad(t, nil, "--mcp-start-timeout", "1m"); c.MCPStartTimeout != time.Minute {
		t.Errorf("MCPStartTimeout from the flag = %s, want 1m", c.MCPStartTimeout)
	}
}

func TestLoadTurnLockTimeout(t *testing.T) {
	if c := mustLoad(t, map[string]string{"MINI_OPENCLAW_TURN_LOCK_TIMEOUT": "90s"}); c.TurnLockTimeout != 90*time.Second {
		t.Fatalf("TurnLockTimeout from env = %s, want 1m30s", c.TurnLockTimeout)
	}
	if c := mustLoad(t, nil, "--turn-lock-timeout", "2h"); c.TurnLockTimeout != 2*time.Hour {
		t.Fatalf("TurnLockTimeout from the flag = %s, want 2h", c.TurnLockTimeout)
	}
}

func TestLoadFlagsOverrideEnv(t *testing.T) {
	envWS, flagWS := t.TempDir(), t.TempDir()
	env := map[string]string{
		"MINI_OPENCLAW_WORKSPACE":       envWS,
		"MINI_OPENCLAW_PORT":            "4000",
		"MINI_OPENCLAW_MODEL":           "env-model",
		"MINI_OPENCLAW_MAX_CONTEXT":     "not-a-number", // overridden, so never parsed as an error
		"MINI_OPENCLAW_MAX_TOOL_ROUNDS": "5",
		"MINI_OPENCLAW_BASH_TIMEOUT":    "5s",
		"MINI_OPENCLAW_FSYNC":           "sometimes",
		"MINI_OPENCLAW_PROVIDER":        "gpt",
		"MINI_OPENCLAW_HOST":            "0.0.0.0",
		"MINI_OPENCLAW_LOG_FORMAT":      "json",
	}
	c := mustLoad(t, env,
		"--port", "5000",
		"-model=flag-model",
		"--max-context=7",
		"--max-tool-rounds", "3",
		"--bash-timeout=90s",
		"--fsync", "never",
		"--provider", "scripted",
		"--host", "::1",
		"--workspace", flagWS,
		"--log-format=text",
	)
	if c.Port != 5000 || c.Model != "flag-model" || c.MaxContext != 7 || c.MaxToolRounds != 3 ||
		c.BashTimeout != 90*time.Second || c.Fsync != FsyncNever || c.Provider != ProviderScripted ||
		c.ProviderDefaulted || c.Host != "::1" || c.Workspace != flagWS || c.LogJSON {
		t.Fatalf("flags did not win over env: %+v", c)
	}
	if got := c.Addr(); got != "[::1]:5000" {
		t.Errorf("Addr() = %q, want [::1]:5000", got)
	}
	if want := filepath.Join(flagWS, ".mini-openclaw", "sessions"); c.SessionsDir != want {
		t.Errorf("SessionsDir = %q, want %q", c.SessionsDir, want)
	}
}

func TestLoadRelativeDataDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	c := mustLoad(t, map[string]string{"MINI_OPENCLAW_WORKSPACE": ws}, "--data-dir", "rel/data")
	if want := filepath.Join(wd, "rel", "data"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
	if want := filepath.Join(wd, "rel", "data", "memory"); c.MemoryDir != want {
		t.Errorf("MemoryDir = %q, want %q", c.MemoryDir, want)
	}
	// Skills live in the workspace, not the data dir.
	if want := filepath.Join(ws, ".openclaw", "skills"); c.SkillsDir != want {
		t.Errorf("SkillsDir = %q, want %q", c.SkillsDir, want)
	}
}

func TestLoadPortZeroAllowed(t *testing.T) {
	if c := mustLoad(t, map[string]string{"MINI_OPENCLAW_PORT": "0"}); c.Port != 0 {
		t.Fatalf("Port = %d, want 0", c.Port)
	}
}

func TestLoadBadValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"port abc", map[string]string{"MINI_OPENCLAW_PORT": "abc"}, nil,
			`MINI_OPENCLAW_PORT="abc": must be a whole number from 0 to 65535`},
		{"port 70000", map[string]string{"MINI_OPENCLAW_PORT": "70000"}, nil,
			`MINI_OPENCLAW_PORT="70000": must be a whole number from 0 to 65535`},
		{"port negative", map[string]string{"MINI_OPENCLAW_PORT": "-1"}, nil,
			`MINI_OPENCLAW_PORT="-1": must be a whole number from 0 to 65535`},
		{"port float", map[string]string{"MINI_OPENCLAW_PORT": "80.5"}, nil,
			`MINI_OPENCLAW_PORT="80.5": must be a whole number from 0 to 65535`},
		{"port flag abc", nil, []string{"--port", "abc"},
			`--port="abc": must be a whole number from 0 to 65535`},
		{"port flag empty", nil, []string{"--port="},
			`--port="": must be a whole number from 0 to 65535`},
		{"port flag beats good env", map[string]string{"MINI_OPENCLAW_PORT": "80"}, []string{"-port=99999"},
			`--port="99999": must be a whole number from 0 to 65535`},
		{"max context -1", map[string]string{"MINI_OPENCLAW_MAX_CONTEXT": "-1"}, nil,
			`MINI_OPENCLAW_MAX_CONTEXT="-1": must be a whole number from 1 to 100000`},
		{"max context 0", map[string]string{"MINI_OPENCLAW_MAX_CONTEXT": "0"}, nil,
			`MINI_OPENCLAW_MAX_CONTEXT="0": must be a whole number from 1 to 100000`},
		{"max context flag", nil, []string{"--max-context", "100001"},
			`--max-context="100001": must be a whole number from 1 to 100000`},
		{"context window too small", map[string]string{"MINI_OPENCLAW_CONTEXT_WINDOW": "1000"}, nil,
			`MINI_OPENCLAW_CONTEXT_WINDOW="1000": must be a whole number from 2048 to 10000000`},
		{"context window flag", nil, []string{"--context-window", "lots"},
			`--context-window="lots": must be a whole number from 2048 to 10000000`},
		{"tool rounds 0", map[string]string{"MINI_OPENCLAW_MAX_TOOL_ROUNDS": "0"}, nil,
			`MINI_OPENCLAW_MAX_TOOL_ROUNDS="0": must be a whole number from 1 to 1000`},
		{"bash timeout forever", map[string]string{"MINI_OPENCLAW_BASH_TIMEOUT": "forever"}, nil,
			`MINI_OPENCLAW_BASH_TIMEOUT="forever": must be a duration such as 30s, from 1s to 24h0m0s`},
		{"bash timeout no unit", map[string]string{"MINI_OPENCLAW_BASH_TIMEOUT": "30"}, nil,
			`MINI_OPENCLAW_BASH_TIMEOUT="30": must be a duration such as 30s, from 1s to 24h0m0s`},
		{"bash timeout too short", nil, []string{"--bash-timeout", "500ms"},
			`--bash-timeout="500ms": must be a duration such as 30s, from 1s to 24h0m0s`},
		{"bash timeout too long", map[string]string{"MINI_OPENCLAW_BASH_TIMEOUT": "25h"}, nil,
			`MINI_OPENCLAW_BASH_TIMEOUT="25h": must be a duration such as 30s, from 1s to 24h0m0s`},
		{"shutdown timeout negative", map[string]string{"MINI_OPENCLAW_SHUTDOWN_TIMEOUT": "-1s"}, nil,
			`MINI_OPENCLAW_SHUTDOWN_TIMEOUT="-1s": must be a duration such as 30s, from 0s to 1h0m0s`},
		{"turn lock timeout too short", map[string]string{"MINI_OPENCLAW_TURN_LOCK_TIMEOUT": "100ms"}, nil,
			`MINI_OPENCLAW_TURN_LOCK_TIMEOUT="100ms": must be a duration such as 30s, from 1s to 24h0m0s`},
		{"MCP start timeout too long", map[string]string{"MINI_OPENCLAW_MCP_START_TIMEOUT": "11m"}, nil,
			`MINI_OPENCLAW_MCP_START_TIMEOUT="11m": must be a duration such as 30s, from 1s to 10m0s`},
		{"fsync sometimes", map[string]string{"MINI_OPENCLAW_FSYNC": "sometimes"}, nil,
			`MINI_OPENCLAW_FSYNC="sometimes": must be one of always, never`},
		{"fsync case", nil, []string{"--fsync=Always"},
			`--fsync="Always": must be one of always, never`},
		{"provider gpt", map[string]string{"MINI_OPENCLAW_PROVIDER": "gpt"}, nil,
			`MINI_OPENCLAW_PROVIDER="gpt": must be one of anthropic, openai, scripted`},
		{"provider flag gpt", nil, []string{"--provider", "gpt"},
			`--provider="gpt": must be one of anthropic, openai, scripted`},
		{"log format", map[string]string{"MINI_OPENCLAW_LOG_FORMAT": "xml"}, nil,
			`MINI_OPENCLAW_LOG_FORMAT="xml": must be one of text, json`},
		{"host name", map[string]string{"MINI_OPENCLAW_HOST": "example.com"}, nil,
			`MINI_OPENCLAW_HOST="example.com": must be an IP address or localhost`},
		{"host flag name", nil, []string{"--host", "example.com"},
			`--host="example.com": must be an IP address or localhost`},
		{"host flag empty", nil, []string{"--host="},
			`--host: must not be empty`},
		{"model flag empty", nil, []string{"--model="},
			`--model: must not be empty`},
		{"two bad values both reported", map[string]string{"MINI_OPENCLAW_PORT": "abc", "MINI_OPENCLAW_FSYNC": "sometimes"}, nil,
			"MINI_OPENCLAW_PORT=\"abc\": must be a whole number from 0 to 65535\n" +
				`MINI_OPENCLAW_FSYNC="sometimes": must be one of always, never`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := load(t, tt.env, tt.args...)
			wantErr(t, err, tt.want)
		})
	}
}

func TestLoadProvider(t *testing.T) {
	t.Run("no key no provider: scripted, defaulted", func(t *testing.T) {
		c := mustLoad(t, nil)
		if c.Provider != ProviderScripted || !c.ProviderDefaulted {
			t.Fatalf("Provider=%q ProviderDefaulted=%v, want scripted true", c.Provider, c.ProviderDefaulted)
		}
	})
	t.Run("anthropic key: anthropic", func(t *testing.T) {
		c := mustLoad(t, map[string]string{"ANTHROPIC_API_KEY": "sk-ant"})
		if c.Provider != ProviderAnthropic || c.ProviderDefaulted || c.AnthropicAPIKey != "sk-ant" {
			t.Fatalf("Provider=%q ProviderDefaulted=%v key=%q", c.Provider, c.ProviderDefaulted, c.AnthropicAPIKey)
		}
	})
	t.Run("scripted chosen: not defaulted", func(t *testing.T) {
		c := mustLoad(t, map[string]string{"MINI_OPENCLAW_PROVIDER": "scripted", "ANTHROPIC_API_KEY": "sk-ant"})
		if c.Provider != ProviderScripted || c.ProviderDefaulted {
			t.Fatalf("Provider=%q ProviderDefaulted=%v, want scripted false", c.Provider, c.ProviderDefaulted)
		}
	})
	t.Run("openai without key: allowed for local servers", func(t *testing.T) {
		c := mustLoad(t, map[string]string{"MINI_OPENCLAW_PROVIDER": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "MINI_OPENCLAW_MODEL": "llama3.2"})
		if c.Provider != ProviderOpenAI || c.OpenAIAPIKey != "" || c.Model != "llama3.2" {
			t.Fatalf("Provider=%q key=%q model=%q", c.Provider, c.OpenAIAPIKey, c.Model)
		}
	})
	t.Run("openai with the default (Claude) model: error naming MINI_OPENCLAW_MODEL", func(t *testing.T) {
		_, _, err := load(t, map[string]string{"MINI_OPENCLAW_PROVIDER": "openai"})
		if err == nil || !strings.Contains(err.Error(), "needs MINI_OPENCLAW_MODEL") {
			t.Fatalf("err = %v, want one naming MINI_OPENCLAW_MODEL", err)
		}
		if c := mustLoad(t, map[string]string{"MINI_OPENCLAW_PROVIDER": "openai"}, "--model", "qwen3"); c.Model != "qwen3" {
			t.Fatalf("--model should satisfy it, got model %q", c.Model)
		}
	})
	t.Run("script with scripted", func(t *testing.T) {
		c := mustLoad(t, nil, "--script", "turns.json")
		if c.Script != "turns.json" || c.Provider != ProviderScripted {
			t.Fatalf("Script=%q Provider=%q", c.Script, c.Provider)
		}
	})
	t.Run("anthropic without key", func(t *testing.T) {
		_, _, err := load(t, map[string]string{"MINI_OPENCLAW_PROVIDER": "anthropic"})
		wantErr(t, err, "MINI_OPENCLAW_PROVIDER=anthropic needs ANTHROPIC_API_KEY")
	})
	t.Run("anthropic flag without key", func(t *testing.T) {
		_, _, err := load(t, nil, "--provider=anthropic")
		wantErr(t, err, "--provider=anthropic needs ANTHROPIC_API_KEY")
	})
	t.Run("script with anthropic", func(t *testing.T) {
		_, _, err := load(t, map[string]string{"ANTHROPIC_API_KEY": "k", "MINI_OPENCLAW_SCRIPT": "s.json"})
		wantErr(t, err, "MINI_OPENCLAW_SCRIPT is only used by the scripted provider, but the provider is anthropic")
	})
}

func TestLoadHostAndToken(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "::1", "localhost"} {
		c := mustLoad(t, map[string]string{"MINI_OPENCLAW_HOST": host})
		if !c.IsLoopback() || c.Host != host {
			t.Errorf("host %q: Host=%q IsLoopback=%v", host, c.Host, c.IsLoopback())
		}
	}
	_, _, err := load(t, map[string]string{"MINI_OPENCLAW_HOST": "0.0.0.0"})
	wantErr(t, err, "MINI_OPENCLAW_HOST=0.0.0.0 is not a loopback address: set MINI_OPENCLAW_TOKEN so the gateway is not open to the network")

	_, _, err = load(t, nil, "--host", "::")
	wantErr(t, err, "--host=:: is not a loopback address: set MINI_OPENCLAW_TOKEN so the gateway is not open to the network")

	c := mustLoad(t, map[string]string{"MINI_OPENCLAW_HOST": "0.0.0.0", "MINI_OPENCLAW_TOKEN": "s3cret-s3cret-s3"})
	if c.Token != "s3cret-s3cret-s3" || c.IsLoopback() {
		t.Fatalf("Token=%q IsLoopback=%v", c.Token, c.IsLoopback())
	}
	c = mustLoad(t, nil, "--host", "192.168.1.10", "--token", "flagtok-flagtok-flagtok")
	if c.Token != "flagtok-flagtok-flagtok" || c.Addr() != "192.168.1.10:3210" {
		t.Fatalf("Token=%q Addr=%q", c.Token, c.Addr())
	}
	// Off loopback the token is all that guards a shell: a guessable one is
	// refused, and the error does not echo it.
	for _, tok := range []string{" ", "x", "fifteen-chars-x", "                "} {
		_, _, err := load(t, map[string]string{"MINI_OPENCLAW_HOST": "0.0.0.0", "MINI_OPENCLAW_TOKEN": tok})
		wantErr(t, err, "MINI_OPENCLAW_TOKEN is too short for a non-loopback MINI_OPENCLAW_HOST=0.0.0.0: use at least 16 characters")
	}
	_, _, err = load(t, nil, "--host", "::", "--token", "short")
	wantErr(t, err, "--token is too short for a non-loopback --host=::: use at least 16 characters")
	// On loopback a short token is the user's business.
	if c := mustLoad(t, map[string]string{"MINI_OPENCLAW_TOKEN": "x"}); c.Token != "x" {
		t.Fatalf("loopback with a short token: Token=%q", c.Token)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.255.0.1": true, "::1": true,
		"0.0.0.0": false, "::": false, "10.0.0.1": false, "": false, "example.com": false, "LOCALHOST": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestLoadWorkspaceMustExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, _, err := load(t, map[string]string{"MINI_OPENCLAW_WORKSPACE": missing})
	wantErr(t, err, `MINI_OPENCLAW_WORKSPACE="`+missing+`": not an existing directory`)

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = load(t, nil, "--workspace", file)
	wantErr(t, err, `--workspace="`+file+`": not an existing directory`)
}

func TestLoadHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		t.Run(arg, func(t *testing.T) {
			secrets := map[string]string{"ANTHROPIC_API_KEY": "sk-secret-123", "MINI_OPENCLAW_TOKEN": "tok-secret-456"}
			_, out, err := load(t, secrets, arg)
			if !errors.Is(err, flag.ErrHelp) || !errors.Is(err, ErrHelp) {
				t.Fatalf("Load(%s) error = %v, want flag.ErrHelp", arg, err)
			}
			if !strings.HasPrefix(out, "Usage: miniclaw gateway [flags]\n") {
				t.Errorf("usage starts with %q", out[:min(len(out), 60)])
			}
			for _, s := range settings {
				if !strings.Contains(out, s.env) {
					t.Errorf("usage does not mention %s", s.env)
				}
				if s.flag != "" && !strings.Contains(out, "-"+s.flag+" ") {
					t.Errorf("usage does not list -%s", s.flag)
				}
			}
			for _, want := range []string{"default 3210", "default 127.0.0.1", "default claude-sonnet-4-20250514", "default 30s",
				"  -port int\n", "  -max-context int\n", "  -context-window int\n", "  -max-tool-rounds int\n",
				"  -bash-timeout duration\n", "  -shutdown-timeout duration\n", "  -turn-lock-timeout duration\n", "  -model string\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("usage lacks %q", want)
				}
			}
			for _, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("usage contains secret %q", secret)
				}
			}
		})
	}
}

func TestLoadArgumentErrors(t *testing.T) {
	_, _, err := load(t, nil, "extra")
	wantErr(t, err, `unexpected argument "extra" (see miniclaw gateway --help)`)

	_, _, err = load(t, nil, "--port", "5000", "serve", "more")
	wantErr(t, err, `unexpected argument "serve" (see miniclaw gateway --help)`)

	_, out, err := load(t, nil, "--bogus")
	wantErr(t, err, "flag provided but not defined: -bogus")
	if !strings.Contains(out, "flag provided but not defined: -bogus") || !strings.Contains(out, "Usage: miniclaw gateway") {
		t.Errorf("unknown flag output = %q", out)
	}

	_, _, err = load(t, nil, "--token")
	wantErr(t, err, "flag needs an argument: -token")

	// Provider keys are environment-only.
	_, _, err = load(t, nil, "--anthropic-api-key=k")
	wantErr(t, err, "flag provided but not defined: -anthropic-api-key")
}

// No error path may echo a secret: keys and tokens end up in logs and
// terminals shared in bug reports.
func TestLoadErrorsNeverContainSecrets(t *testing.T) {
	secrets := map[string]string{
		"ANTHROPIC_API_KEY":   "sk-secret-123",
		"OPENAI_API_KEY":      "sk-openai-secret-789",
		"MINI_OPENCLAW_TOKEN": "tok-secret-456",
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"bad port", map[string]string{"MINI_OPENCLAW_PORT": "abc"}, nil},
		{"bad port flag and token flag", nil, []string{"--port=abc", "--token=tok-flag-secret"}},
		{"many bad values", map[string]string{
			"MINI_OPENCLAW_PORT": "70000", "MINI_OPENCLAW_MAX_CONTEXT": "-1", "MINI_OPENCLAW_BASH_TIMEOUT": "forever",
			"MINI_OPENCLAW_FSYNC": "sometimes", "MINI_OPENCLAW_PROVIDER": "gpt", "MINI_OPENCLAW_LOG_FORMAT": "xml",
			"MINI_OPENCLAW_HOST": "example.com", "MINI_OPENCLAW_WORKSPACE": "/nonexistent/miniclaw-ws",
		}, nil},
		{"script with anthropic", map[string]string{"MINI_OPENCLAW_SCRIPT": "x.json"}, nil},
		{"unknown flag", nil, []string{"--bogus=1"}},
		{"positional", nil, []string{"oops"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range secrets {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			_, out, err := load(t, env, tc.args...)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, secret := range []string{"sk-secret-123", "sk-openai-secret-789", "tok-secret-456", "tok-flag-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error contains secret %q: %v", secret, err)
				}
				if strings.Contains(out, secret) {
					t.Errorf("output contains secret %q: %s", secret, out)
				}
			}
		})
	}
}

// PathFlags resolves --workspace and --data-dir like Load: flags over env,
// the data dir under the workspace by default, errors naming the setting.
func TestPathFlags(t *testing.T) {
	ws, other := t.TempDir(), t.TempDir()
	env := map[string]string{"MINI_OPENCLAW_WORKSPACE": ws}
	for _, tc := range []struct {
		args     []string
		wantWS   string
		wantData string
	}{
		{nil, ws, filepath.Join(ws, ".mini-openclaw")},
		{[]string{"--workspace", other}, other, filepath.Join(other, ".mini-openclaw")},
		{[]string{"--data-dir", filepath.Join(other, "d")}, ws, filepath.Join(other, "d")},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		paths := PathFlags(fs, func(k string) string { return env[k] })
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		p, err := paths()
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if p.Workspace != tc.wantWS || p.DataDir != tc.wantData || p.MemoryDir != filepath.Join(tc.wantData, "memory") ||
			p.SkillsDir != filepath.Join(tc.wantWS, ".openclaw", "skills") {
			t.Errorf("%v: paths = %+v", tc.args, p)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	paths := PathFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse([]string{"--workspace", filepath.Join(ws, "missing")}); err != nil {
		t.Fatal(err)
	}
	if _, err := paths(); err == nil || !strings.Contains(err.Error(), "--workspace") {
		t.Errorf("missing workspace: err = %v, want one naming --workspace", err)
	}
}

// TestContextWindow: set, it wins and is named in the source; unset, the
// model's family decides; --help says what it resolved to.
func TestContextWindow(t *testing.T) {
	ws := t.TempDir()
	env := map[string]string{"MINI_OPENCLAW_WORKSPACE": ws, "MINI_OPENCLAW_CONTEXT_WINDOW": "100000"}
	c, err := Load(envOf(env), nil, new(bytes.Buffer))
	if err != nil || c.ContextWindow != 100000 || c.ContextWindowSource != "set by MINI_OPENCLAW_CONTEXT_WINDOW" {
		t.Errorf("set: %d (%s), %v", c.ContextWindow, c.ContextWindowSource, err)
	}
	c, err = Load(envOf(map[string]string{"MINI_OPENCLAW_WORKSPACE": ws}), []string{"--model", "Claude-Opus-4", "--context-window=4096"}, new(bytes.Buffer))
	if err != nil || c.ContextWindow != 4096 || c.ContextWindowSource != "set by --context-window" {
		t.Errorf("flag: %d (%s), %v", c.ContextWindow, c.ContextWindowSource, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "Context window: 200000 tokens for model claude-sonnet-4-20250514 (default for claude models)."},
		{[]string{"--model", "llama3.2"}, nil, "Context window: 32768 tokens for model llama3.2 (conservative default"},
		{nil, map[string]string{"MINI_OPENCLAW_CONTEXT_WINDOW": "65536"}, "Context window: 65536 tokens (set)."},
	} {
		var out strings.Builder
		_, err := Load(envOf(withWS(tc.env, ws)), append(tc.args, "--help"), &out)
		if !errors.Is(err, ErrHelp) || !strings.Contains(out.String(), tc.want) {
			t.Errorf("--help with %v %v: %v, output lacks %q:\n%s", tc.args, tc.env, err, tc.want, out.String())
		}
	}
}

func withWS(env map[string]string, ws string) map[string]string {
	out := map[string]string{"MINI_OPENCLAW_WORKSPACE": ws}
	for k, v := range env {
		out[k] = v
	}
	return out
}

func TestLoadMCPTrustFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", home)
	if c := mustLoad(t, nil); c.MCPTrustFile != filepath.Join(home, ".config", "miniclaw", "mcp-trust.json") {
		t.Errorf("default MCPTrustFile = %q, want it in %s/.config/miniclaw", c.MCPTrustFile, home)
	}
	if c := mustLoad(t, map[string]string{"MINI_OPENCLAW_MCP_TRUST_FILE": "/etc/miniclaw//trust.json"}); c.MCPTrustFile != "/etc/miniclaw/trust.json" {
		t.Errorf("MCPTrustFile from env = %q", c.MCPTrustFile)
	}
	_, _, err := load(t, nil, "--mcp-trust-file", "trust.json")
	wantErr(t, err, `--mcp-trust-file="trust.json": not an absolute path`)
}
