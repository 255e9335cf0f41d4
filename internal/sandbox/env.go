package sandbox

import (
	"strings"
)

// passedByDefault reports whether every tool process gets the gateway's
// variable name: what shells and common tools need to behave (locale,
// terminal, time zone, who the user is, where programs are). Nothing else is
// passed unless the operator names it (MINI_OPENCLAW_TOOL_ENV), so the
// gateway's own secrets (ANTHROPIC_API_KEY, OPENAI_API_KEY,
// MINI_OPENCLAW_TOKEN) and whatever else its environment holds (cloud
// credentials, SSH_AUTH_SOCK, proxy URLs with passwords) never reach a tool.
func passedByDefault(name string) bool {
	switch name {
	case "PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR":
		return true
	}
	return strings.HasPrefix(name, "LC_") // the locale categories
}

// FilterEnv returns the entries of environ ("NAME=value", as os.Environ
// returns them) that are passed by default (PATH, HOME, LANG, LANGUAGE,
// LC_*, TERM, TZ, USER, LOGNAME, SHELL, TMPDIR) or named in pass, in the
// order of environ; then each entry of set ("NAME=value") replaces or adds
// its variable. An MCP client starting stdio servers builds their
// environment the same way.
func FilterEnv(environ, pass, set []string) []string {
	keep := map[string]bool{}
	for _, n := range pass {
		keep[n] = true
	}
	overridden := map[string]bool{}
	for _, kv := range set {
		name, _, _ := strings.Cut(kv, "=")
		overridden[name] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || overridden[name] {
			continue
		}
		if keep[name] || passedByDefault(name) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}
