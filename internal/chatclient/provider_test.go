package chatclient

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
)

// A gateway on the offline scripted provider is said so at connect, in one
// line: the gateway's own warning from /readyz when it has one, else a
// plain note. In pipe mode the line goes to stderr.
func TestRunSaysScriptedProvider(t *testing.T) {
	t.Parallel()
	const warning = "Running on the scripted provider, playing the script demo.json (2 model turns) offline: no model is called."
	for _, tc := range []struct{ name, warning, want string }{
		{"with a warning", warning, warning + "\n"},
		{"echo", "", "The gateway runs on the offline scripted provider: no model is called.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startGatewayOpts(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), gateway.Options{
				Runtime:         &agent.Runtime{Provider: scripted.Echo(), Model: "test", Workspace: t.TempDir()},
				ProviderWarning: tc.warning,
			})
			var out, errOut strings.Builder
			err := Run(context.Background(), Options{URL: g.addr, In: strings.NewReader("hi\n"), Out: &out, Stderr: &errOut})
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, errOut.String())
			}
			if strings.Count(errOut.String(), tc.want) != 1 {
				t.Errorf("stderr does not hold %q once:\n%s", tc.want, errOut.String())
			}
			if out.String() != "echo: hi\n" {
				t.Errorf("stdout = %q, want the reply alone", out.String())
			}
		})
	}
}
