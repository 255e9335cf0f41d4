// Package config builds the gateway's configuration from the environment
// (the seed's MINI_OPENCLAW_* names) and command-line flags, flags winning.
// A value that does not parse is an error naming the variable or flag; no
// bad value is ever replaced by a silent default.
package config

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Provider names.
const (
	ProviderAnthropic = "anthropic"
	ProviderOpenAI    = "openai"
	ProviderScripted  = "scripted"
)

// Fsync policies for transcript appends.
const (
	FsyncAlways = "always" // fsync after every append: survives power loss
	FsyncNever  = "never"  // leave it to the OS: survives a process crash, not power loss
)

// MinNetworkTokenLen is the shortest token accepted for a non-loopback bind.
const MinNetworkTokenLen = 16

// Config is the resolved configuration of a gateway process.
type Config struct {
	Host          string
	Port          int
	Workspace     string
	DataDir       string
	SessionsDir   string
	MemoryDir     string
	SkillsDir     string
	Model         string
	MaxContext    int
	MaxToolRounds int
	BashTimeout   time.Duration
	Fsync         string
	Token         string
	Provider      string
	// ProviderDefaulted is true when no provider was chosen and no API key
	// was found, so the gateway fell back to the offline scripted provider.
	ProviderDefaulted bool
	Script            string // scripted provider: JSON file of model turns ("" = echo)
	AnthropicAPIKey   string
	AnthropicBaseURL  string
	OpenAIAPIKey      string
	OpenAIBaseURL     string
	AllowedOrigins    []string
	AllowedHosts      []string // Host names served without a token, besides loopback ones
	ShutdownTimeout   time.Duration
	LogJSON           bool
	// TurnLockTimeout bounds how long a turn waits for a turn of the same
	// session that another process on the data dir runs.
	TurnLockTimeout time.Duration
	// ContextWindow is the model's context window in tokens, and
	// ContextWindowSource says where it came from (the setting, or the
	// default for the model's family), for the startup log.
	ContextWindow       int
	ContextWindowSource string
	// Sandbox is how bash is confined: SandboxWorkspace or SandboxOff.
	Sandbox      string
	SandboxRead  []string // extra paths bash may read and execute
	SandboxWrite []string // extra paths bash may write
	ToolEnv      []string // more variables of the gateway's environment passed to tools
	// MCPStartTimeout bounds one start of an MCP server (spawn or
	// connect, initialize, the first tools/list).
	MCPStartTimeout time.Duration
	// MCPTrustFile holds the operator's approvals of MCP servers the
	// agent could have configured; "" when there is no user config dir
	// to default to.
	MCPTrustFile string
	// Database is the PostgreSQL store; its URL is "" for the files store.
	Database Database
}

// Sandbox modes.
const (
	SandboxWorkspace = "workspace" // Landlock: write the workspace and temp dir only
	SandboxOff       = "off"
)

// Addr is the host:port the gateway listens on.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// IsLoopback reports whether Host only accepts connections from this machine.
func (c Config) IsLoopback() bool { return IsLoopbackHost(c.Host) }

// IsLoopbackHost reports whether host is "localhost" or a loopback IP.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// setting is one configurable value: its env name, flag name and help.
type setting struct {
	env, flag, def, help string
	secret               bool // never echoed in --help defaults or errors
	// kind is the type --help shows beside the flag: "int", "duration" or
	// "" for a string. Every flag is read as a string (so an env value and
	// a flag value are checked alike, and errors name the one that won):
	// kind only documents what the check accepts.
	kind string
}

var settings = []setting{
	{env: "MINI_OPENCLAW_HOST", flag: "host", def: "127.0.0.1", help: "address to bind; a non-loopback address requires a token"},
	{env: "MINI_OPENCLAW_PORT", flag: "port", def: "3210", help: "TCP port for HTTP and WebSocket (0 picks a free one)", kind: "int"},
	{env: "MINI_OPENCLAW_WORKSPACE", flag: "workspace", def: "", help: "agent workspace directory (default: current directory)"},
	{env: "MINI_OPENCLAW_DATA_DIR", flag: "data-dir", def: "", help: "data directory (default: <workspace>/.mini-openclaw)"},
	{env: "MINI_OPENCLAW_MODEL", flag: "model", def: "claude-sonnet-4-20250514", help: "model name sent to the provider"},
	{env: "MINI_OPENCLAW_MAX_CONTEXT", flag: "max-context", def: "1000", help: "most transcript lines a turn reads back, to the latest summary (1-100000); a turn compacts once 3/4 of them follow the summary, and the token budget decides what is sent", kind: "int"},
	{env: "MINI_OPENCLAW_CONTEXT_WINDOW", flag: "context-window", def: "", help: fmt.Sprintf("the model's context window in tokens (%d-%d; default %d for claude-* models, else %d)", MinContextWindow, MaxContextWindow, ClaudeContextWindow, OtherContextWindow), kind: "int"},
	{env: "MINI_OPENCLAW_MAX_TOOL_ROUNDS", flag: "max-tool-rounds", def: "10", help: "model/tool rounds per turn (1-1000)", kind: "int"},
	{env: "MINI_OPENCLAW_BASH_TIMEOUT", flag: "bash-timeout", def: "30s", help: "timeout of one bash tool call (Go duration, 1s-24h)", kind: "duration"},
	{env: "MINI_OPENCLAW_FSYNC", flag: "fsync", def: FsyncAlways, help: "transcript durability: always (fsync each append) or never (OS decides)"},
	{env: "MINI_OPENCLAW_TOKEN", flag: "token", def: "", help: "gateway auth token (required off loopback)", secret: true},
	{env: "MINI_OPENCLAW_PROVIDER", flag: "provider", def: "", help: "anthropic, openai or scripted (default: anthropic with a key, else scripted)"},
	{env: "MINI_OPENCLAW_SCRIPT", flag: "script", def: "", help: "scripted provider: JSON file of model turns (default: echo)"},
	{env: "MINI_OPENCLAW_ALLOWED_ORIGINS", flag: "allowed-origins", def: "", help: "extra browser Origins allowed to open a WebSocket, comma-separated host[:port] patterns"},
	{env: "MINI_OPENCLAW_ALLOWED_HOSTS", flag: "allowed-hosts", def: "", help: "host names, besides localhost, 127.0.0.1 and [::1], that requests may name in Host when no token is set, comma-separated (guards against DNS rebinding)"},
	{env: "MINI_OPENCLAW_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "10s", help: "how long in-flight turns may run after SIGTERM (Go duration)", kind: "duration"},
	{env: "MINI_OPENCLAW_TURN_LOCK_TIMEOUT", flag: "turn-lock-timeout", def: "10m", help: "how long a turn waits for another process's turn on the same session before it fails (Go duration, 1s-24h)", kind: "duration"},
	{env: "MINI_OPENCLAW_LOG_FORMAT", flag: "log-format", def: "text", help: "log format: text or json"},
	{env: "MINI_OPENCLAW_SANDBOX", flag: "sandbox", def: SandboxWorkspace, help: "bash sandbox: workspace (Landlock: write only the workspace and a temp dir, read only those and the system directories) or off"},
	{env: "MINI_OPENCLAW_SANDBOX_READ", flag: "sandbox-read", def: "", help: "extra paths bash may read and execute, comma- or colon-separated, absolute and existing"},
	{env: "MINI_OPENCLAW_SANDBOX_WRITE", flag: "sandbox-write", def: "", help: "extra paths bash may read and write, comma- or colon-separated, absolute and existing"},
	{env: "MINI_OPENCLAW_TOOL_ENV", flag: "tool-env", def: "", help: "more environment variables passed to bash by name, comma-separated (by default only PATH, HOME, LANG, LANGUAGE, LC_*, TERM, TZ, USER, LOGNAME, SHELL)"},
	{env: "MINI_OPENCLAW_MCP_START_TIMEOUT", flag: "mcp-start-timeout", def: "10s", help: "how long an MCP server of mcp.json / .mcp.json may take to start and list its tools before it is marked failed (Go duration, 1s-10m)", kind: "duration"},
	{env: "MINI_OPENCLAW_MCP_TRUST_FILE", flag: "mcp-trust-file", def: "", help: "the operator's approvals of MCP servers (miniclaw mcp trust), for every workspace; keep it where bash cannot write (absolute path; default: ~/.config/miniclaw/mcp-trust.json)"},
	{env: "MINI_OPENCLAW_DATABASE_URL", flag: "database-url", def: "", secret: true, help: "PostgreSQL URL (postgres://user@host:5432/database) of the session store that several gateways share; unset: sessions are files in the data dir. Give the password by the environment, PGPASSWORD or ~/.pgpass: a flag shows in ps"},
	{env: "MINI_OPENCLAW_DATABASE_MAX_CONNS", flag: "database-max-conns", def: "8", help: "PostgreSQL store: connections of the pool that reads and writes sessions (1-1000)", kind: "int"},
	{env: "MINI_OPENCLAW_DATABASE_MAX_TURNS", flag: "database-max-turns", def: "32", help: "PostgreSQL store: turns run at once, each holding its session's lease on a connection of its own besides the pool (1-10000)", kind: "int"},
	{env: "ANTHROPIC_API_KEY", def: "", secret: true},
	{env: "ANTHROPIC_BASE_URL", def: ""},
	{env: "OPENAI_API_KEY", def: "", secret: true},
	{env: "OPENAI_BASE_URL", def: ""},
}

// Context windows: the default for Claude models (all current ones have
// 200k), and the conservative default for every other model, which
// OpenAI-compatible servers run with anything from 2k to 1M tokens:
// 32k is below what OpenAI's and most served open models offer, so the
// budget errs on the small side, and a server with a smaller window says
// so in its errors, which the agent recovers from (see docs/long-sessions.md).
const (
	ClaudeContextWindow = 200_000
	OtherContextWindow  = 32_768
	MinContextWindow    = 2048
	MaxContextWindow    = 10_000_000
)

// defaultOf is a setting's default.
func defaultOf(env string) string {
	for _, s := range settings {
		if s.env == env {
			return s.def
		}
	}
	return ""
}

// DefaultContextWindow is the window assumed for model when
// MINI_OPENCLAW_CONTEXT_WINDOW is not set, and why.
func DefaultContextWindow(model string) (int, string) {
	if strings.HasPrefix(strings.ToLower(model), "claude") {
		return ClaudeContextWindow, "default for claude models"
	}
	return OtherContextWindow, "conservative default for non-Claude models; set MINI_OPENCLAW_CONTEXT_WINDOW"
}

// envName is what MINI_OPENCLAW_TOOL_ENV accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ErrHelp is returned when --help was asked for; the usage was already printed.
var ErrHelp = flag.ErrHelp

// Load resolves the configuration from getenv and the gateway's flags. Usage
// and flag errors are written to out.
func Load(getenv func(string) string, args []string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("miniclaw gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	resolve := Flags(fs, getenv)
	flagVal := func(name string) string { return fs.Lookup(name).Value.String() }
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: miniclaw gateway [flags]\n\nRuns the gateway: HTTP, WebSocket and the WebChat on one port.\nFlags override the environment variables named beside them.\n\n")
		// fs.PrintDefaults' layout, with the type each setting's check
		// accepts instead of the string every flag is read as.
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  -%s %s\n    \t%s\n", f.Name, flagKind(f.Name), strings.ReplaceAll(f.Usage, "\n", "\n    \t"))
		})
		// What the window resolves to, from what is known so far.
		model := cmp.Or(flagVal("model"), getenv("MINI_OPENCLAW_MODEL"), defaultOf("MINI_OPENCLAW_MODEL"))
		window, source := DefaultContextWindow(model)
		if v := cmp.Or(flagVal("context-window"), getenv("MINI_OPENCLAW_CONTEXT_WINDOW")); v != "" {
			fmt.Fprintf(out, "\nContext window: %s tokens (set).\n", v)
		} else {
			fmt.Fprintf(out, "\nContext window: %d tokens for model %s (%s).\n", window, model, source)
		}
		dbURL, dbName := flagVal("database-url"), "--database-url"
		if dbURL == "" {
			dbURL, dbName = getenv("MINI_OPENCLAW_DATABASE_URL"), "MINI_OPENCLAW_DATABASE_URL"
		}
		fmt.Fprintf(out, "\nSession store: %s.\n", storeHelp(dbURL, dbName))
		fmt.Fprintf(out, "\nProvider keys come from the environment only: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL,\nOPENAI_API_KEY, OPENAI_BASE_URL.\n")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see miniclaw gateway --help)", fs.Arg(0))
	}
	return resolve()
}

// flagKind is the type a setting's flag takes, for --help: int, duration
// or string.
func flagKind(name string) string {
	for _, s := range settings {
		if s.flag == name {
			return cmp.Or(s.kind, "string")
		}
	}
	return "string"
}

// Flags adds every setting's flag to fs, for the commands that run what the
// gateway runs (miniclaw gateway, miniclaw agent). After fs.Parse, the
// returned function resolves the configuration as Load does: flags over the
// environment over the defaults, every bad value an error naming it.
func Flags(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	flagVals := map[string]*string{}
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		help := fmt.Sprintf("%s (env %s", s.help, s.env)
		if s.def != "" && !s.secret {
			help += ", default " + s.def
		}
		flagVals[s.flag] = fs.String(s.flag, "", help+")")
	}
	return func() (Config, error) { return resolve(fs, flagVals, getenv) }
}

// resolve is the configuration from the flags of fs once parsed (flagVals
// by flag name), the environment and the defaults.
func resolve(fs *flag.FlagSet, flagVals map[string]*string, getenv func(string) string) (Config, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// raw returns the value of a setting and the name to blame for it.
	raw := func(env string) (string, string) {
		for _, s := range settings {
			if s.env != env {
				continue
			}
			if s.flag != "" && set[s.flag] {
				return *flagVals[s.flag], "--" + s.flag
			}
			if v := getenv(env); v != "" {
				return v, env
			}
			return s.def, env
		}
		panic("config: unknown setting " + env)
	}
	var errs []error
	intIn := func(env string, lo, hi int) int {
		v, name := raw(env)
		n, err := wholeNumber(v, name, lo, hi)
		if err != nil {
			errs = append(errs, err)
		}
		return n
	}
	durIn := func(env string, lo, hi time.Duration) time.Duration {
		v, name := raw(env)
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < lo || d > hi {
			errs = append(errs, fmt.Errorf("%s=%q: must be a duration such as 30s, from %s to %s", name, v, lo, hi))
		}
		return d
	}
	oneOf := func(env string, allowed ...string) string {
		v, name := raw(env)
		for _, a := range allowed {
			if v == a {
				return v
			}
		}
		errs = append(errs, fmt.Errorf("%s=%q: must be one of %s", name, v, strings.Join(allowed, ", ")))
		return v
	}
	str := func(env string) string { v, _ := raw(env); return v }
	list := func(env string) []string {
		var out []string
		for _, v := range strings.Split(str(env), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	blame := func(env string) string { _, name := raw(env); return name }

	var c Config
	c.Host = str("MINI_OPENCLAW_HOST")
	c.Port = intIn("MINI_OPENCLAW_PORT", 0, 65535)
	c.MaxContext = intIn("MINI_OPENCLAW_MAX_CONTEXT", 1, 100000)
	c.MaxToolRounds = intIn("MINI_OPENCLAW_MAX_TOOL_ROUNDS", 1, 1000)
	if str("MINI_OPENCLAW_CONTEXT_WINDOW") != "" {
		c.ContextWindow, c.ContextWindowSource = intIn("MINI_OPENCLAW_CONTEXT_WINDOW", MinContextWindow, MaxContextWindow), "set by "+blame("MINI_OPENCLAW_CONTEXT_WINDOW")
	}
	c.BashTimeout = durIn("MINI_OPENCLAW_BASH_TIMEOUT", time.Second, 24*time.Hour)
	c.ShutdownTimeout = durIn("MINI_OPENCLAW_SHUTDOWN_TIMEOUT", 0, time.Hour)
	c.TurnLockTimeout = durIn("MINI_OPENCLAW_TURN_LOCK_TIMEOUT", time.Second, 24*time.Hour)
	c.MCPStartTimeout = durIn("MINI_OPENCLAW_MCP_START_TIMEOUT", time.Second, 10*time.Minute)
	c.Fsync = oneOf("MINI_OPENCLAW_FSYNC", FsyncAlways, FsyncNever)
	c.LogJSON = oneOf("MINI_OPENCLAW_LOG_FORMAT", "text", "json") == "json"
	c.Model = str("MINI_OPENCLAW_MODEL")
	c.Token = str("MINI_OPENCLAW_TOKEN")
	c.Script = str("MINI_OPENCLAW_SCRIPT")
	c.AnthropicAPIKey = str("ANTHROPIC_API_KEY")
	c.AnthropicBaseURL = str("ANTHROPIC_BASE_URL")
	c.OpenAIAPIKey = str("OPENAI_API_KEY")
	c.OpenAIBaseURL = str("OPENAI_BASE_URL")
	c.AllowedOrigins = list("MINI_OPENCLAW_ALLOWED_ORIGINS")
	c.AllowedHosts = list("MINI_OPENCLAW_ALLOWED_HOSTS")
	c.Sandbox = oneOf("MINI_OPENCLAW_SANDBOX", SandboxWorkspace, SandboxOff)
	paths := func(env string) []string {
		v, name := raw(env)
		var out []string
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ':' }) {
			p = strings.TrimSpace(p)
			switch _, err := os.Stat(p); {
			case p == "":
			case !filepath.IsAbs(p):
				errs = append(errs, fmt.Errorf("%s: %q is not an absolute path", name, p))
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %q does not exist", name, p))
			default:
				out = append(out, filepath.Clean(p))
			}
		}
		return out
	}
	c.SandboxRead = paths("MINI_OPENCLAW_SANDBOX_READ")
	c.SandboxWrite = paths("MINI_OPENCLAW_SANDBOX_WRITE")
	c.MCPTrustFile = str("MINI_OPENCLAW_MCP_TRUST_FILE")
	if c.MCPTrustFile == "" {
		// Out of the workspace and the data dir, which bash may write.
		if dir, err := os.UserConfigDir(); err == nil {
			c.MCPTrustFile = filepath.Join(dir, "miniclaw", "mcp-trust.json")
		}
	} else if !filepath.IsAbs(c.MCPTrustFile) {
		errs = append(errs, fmt.Errorf("%s=%q: not an absolute path", blame("MINI_OPENCLAW_MCP_TRUST_FILE"), c.MCPTrustFile))
	} else {
		c.MCPTrustFile = filepath.Clean(c.MCPTrustFile)
	}
	for _, n := range list("MINI_OPENCLAW_TOOL_ENV") {
		if !envName.MatchString(n) {
			errs = append(errs, fmt.Errorf("%s: %q is not an environment variable name", blame("MINI_OPENCLAW_TOOL_ENV"), n))
			continue
		}
		c.ToolEnv = append(c.ToolEnv, n)
	}
	if c.Host == "" {
		errs = append(errs, fmt.Errorf("%s: must not be empty", blame("MINI_OPENCLAW_HOST")))
	} else if net.ParseIP(c.Host) == nil && c.Host != "localhost" {
		errs = append(errs, fmt.Errorf("%s=%q: must be an IP address or localhost", blame("MINI_OPENCLAW_HOST"), c.Host))
	} else if !c.IsLoopback() && c.Token == "" {
		errs = append(errs, fmt.Errorf("%s=%s is not a loopback address: set MINI_OPENCLAW_TOKEN so the gateway is not open to the network", blame("MINI_OPENCLAW_HOST"), c.Host))
	} else if !c.IsLoopback() && utf8.RuneCountInString(strings.TrimSpace(c.Token)) < MinNetworkTokenLen {
		// Off loopback the token is all that stands between the network
		// and a shell: refuse one that can be guessed.
		errs = append(errs, fmt.Errorf("%s is too short for a non-loopback %s=%s: use at least %d characters", blame("MINI_OPENCLAW_TOKEN"), blame("MINI_OPENCLAW_HOST"), c.Host, MinNetworkTokenLen))
	}
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("%s: must not be empty", blame("MINI_OPENCLAW_MODEL")))
	}
	if c.ContextWindow == 0 {
		c.ContextWindow, c.ContextWindowSource = DefaultContextWindow(c.Model)
	}

	if v := str("MINI_OPENCLAW_PROVIDER"); v == "" {
		switch {
		case c.AnthropicAPIKey != "":
			c.Provider = ProviderAnthropic
		default:
			c.Provider, c.ProviderDefaulted = ProviderScripted, true
		}
	} else {
		c.Provider = oneOf("MINI_OPENCLAW_PROVIDER", ProviderAnthropic, ProviderOpenAI, ProviderScripted)
	}
	if c.Provider == ProviderAnthropic && c.AnthropicAPIKey == "" {
		errs = append(errs, fmt.Errorf("%s=anthropic needs ANTHROPIC_API_KEY", blame("MINI_OPENCLAW_PROVIDER")))
	}
	if _, src := raw("MINI_OPENCLAW_MODEL"); c.Provider == ProviderOpenAI && src == "MINI_OPENCLAW_MODEL" && getenv("MINI_OPENCLAW_MODEL") == "" {
		errs = append(errs, fmt.Errorf("MINI_OPENCLAW_PROVIDER=openai needs MINI_OPENCLAW_MODEL (or --model): the default is a Claude model; name one your server serves, e.g. llama3.2 for Ollama"))
	}
	if c.Script != "" && c.Provider != ProviderScripted {
		errs = append(errs, fmt.Errorf("%s is only used by the scripted provider, but the provider is %s", blame("MINI_OPENCLAW_SCRIPT"), c.Provider))
	}

	ws, wsName := raw("MINI_OPENCLAW_WORKSPACE")
	data, dataName := raw("MINI_OPENCLAW_DATA_DIR")
	p, err := resolvePaths(ws, wsName, data, dataName)
	if err != nil {
		errs = append(errs, err)
	}
	c.Workspace, c.DataDir, c.SessionsDir, c.MemoryDir, c.SkillsDir = p.Workspace, p.DataDir, p.SessionsDir, p.MemoryDir, p.SkillsDir
	if c.Database, err = resolveDatabase(raw); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// Paths are the directories miniclaw works in, derived as Load derives them.
type Paths struct {
	Workspace   string
	DataDir     string
	SessionsDir string
	MemoryDir   string
	SkillsDir   string
}

// PathFlags adds --workspace and --data-dir to fs, for the commands that
// work on a gateway's files without running one (miniclaw sessions, skills,
// memory). After fs.Parse, the returned function resolves them exactly as
// Load does: flags over MINI_OPENCLAW_WORKSPACE and MINI_OPENCLAW_DATA_DIR
// over the defaults.
func PathFlags(fs *flag.FlagSet, getenv func(string) string) func() (Paths, error) {
	flagOf := map[string]string{} // env name -> flag name
	vals := map[string]*string{}
	for _, s := range settings {
		if s.env == "MINI_OPENCLAW_WORKSPACE" || s.env == "MINI_OPENCLAW_DATA_DIR" {
			flagOf[s.env] = s.flag
			vals[s.env] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s)", s.help, s.env))
		}
	}
	return func() (Paths, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		get := func(env string) (string, string) {
			if set[flagOf[env]] {
				return *vals[env], "--" + flagOf[env]
			}
			return getenv(env), env
		}
		ws, wsName := get("MINI_OPENCLAW_WORKSPACE")
		data, dataName := get("MINI_OPENCLAW_DATA_DIR")
		return resolvePaths(ws, wsName, data, dataName)
	}
}

// resolvePaths derives the paths from the workspace and data dir settings,
// each with the name to blame in errors: the workspace (default: the current
// directory) must exist; the data dir defaults to <workspace>/.mini-openclaw.
func resolvePaths(ws, wsName, data, dataName string) (Paths, error) {
	var p Paths
	var errs []error
	if ws == "" {
		wd, err := os.Getwd()
		if err != nil {
			errs = append(errs, fmt.Errorf("MINI_OPENCLAW_WORKSPACE: not set and the current directory is unknown: %w", err))
		}
		ws = wd
	}
	var err error
	if p.Workspace, err = filepath.Abs(ws); err != nil {
		errs = append(errs, fmt.Errorf("%s=%q: %w", wsName, ws, err))
	} else if fi, err := os.Stat(p.Workspace); err != nil || !fi.IsDir() {
		errs = append(errs, fmt.Errorf("%s=%q: not an existing directory", wsName, ws))
	}
	p.DataDir = data
	if p.DataDir == "" {
		p.DataDir = filepath.Join(p.Workspace, ".mini-openclaw")
	} else if p.DataDir, err = filepath.Abs(p.DataDir); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", dataName, err))
	}
	p.SessionsDir = filepath.Join(p.DataDir, "sessions")
	p.MemoryDir = filepath.Join(p.DataDir, "memory")
	p.SkillsDir = filepath.Join(p.Workspace, ".openclaw", "skills")
	return p, errors.Join(errs...)
}
