package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With MINI_OPENCLAW_SCRIPT set, the startup log and /readyz (which the
// WebChat banner shows) say a script is playing, name it and count its
// turns, whether the scripted provider was chosen or fallen back to; no
// line claims it echoes or names the Claude model it does not call.
func TestGatewayScriptSaysItPlays(t *testing.T) {
	t.Parallel()
	for name, provider := range map[string]string{"chosen": "scripted", "fallback": ""} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ws := t.TempDir()
			script := writeScript(t, []map[string]string{{"text": "one"}, {"text": "two"}})
			g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{
				"MINI_OPENCLAW_PROVIDER": provider,
				"MINI_OPENCLAW_SCRIPT":   script,
			}))
			want := "playing the script " + script + " (2 model turns)"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var ready struct {
				ProviderWarning string `json:"providerWarning"`
			}
			if err := g.getJSON(ctx, "/readyz", &ready); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(ready.ProviderWarning, want) || strings.Contains(ready.ProviderWarning, "echo") {
				t.Errorf("/readyz providerWarning %q, want it to say %q", ready.ProviderWarning, want)
			}
			log := g.stderr.String()
			if !strings.Contains(log, want) || strings.Contains(log, "echo") || strings.Contains(log, "claude-") {
				t.Errorf("startup log:\n%s\nwant %q, no echo and no Claude model", log, want)
			}
		})
	}
}

// Without a script the scripted provider echoes, and the log says so
// without naming a Claude model either (the default model is one).
func TestGatewayEchoNamesNoModel(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_PROVIDER": "", "MINI_OPENCLAW_CONTEXT_WINDOW": ""}))
	log := g.stderr.String()
	if !strings.Contains(log, "echoes your messages") || strings.Contains(log, "claude-") {
		t.Errorf("startup log:\n%s\nwant the echo notice and no Claude model", log)
	}
}
