package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// interopGateway starts a gateway with the token "interop-key" that plays
// the scripted model turns of script (JSON) in order.
func interopGateway(t *testing.T, script string) (g *gatewayProc, data string) {
	t.Helper()
	ws, data := t.TempDir(), t.TempDir()
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, "gateway", gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_SCRIPT": path, "MINI_OPENCLAW_TOKEN": "interop-key"})), data
}

// clientSteps is what a testdata/*.mjs client printed: one JSON object a
// line, by its "step".
type clientSteps map[string]map[string]any

// runClient runs testdata/<script> with the pinned Node and env, and
// returns the steps it printed.
func runClient(t *testing.T, in testutil.Interop, script string, env map[string]string) clientSteps {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.Node, filepath.Join("testdata", script))
	cmd.Env = childEnv(t, env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, out, stderr.String())
	}
	steps := clientSteps{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("client printed %q: %v", sc.Text(), err)
		}
		steps[v["step"].(string)] = v
	}
	return steps
}

// want checks fields of what the client printed at step.
func (s clientSteps) want(t *testing.T, step string, fields map[string]any) {
	t.Helper()
	for k, w := range fields {
		if got := s[step][k]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %s = %#v, want %#v (printed: %v)", step, k, got, w, s[step])
		}
	}
}
