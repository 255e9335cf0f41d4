package config

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestLoadSandbox(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	c := mustLoad(t, map[string]string{
		"MINI_OPENCLAW_SANDBOX":       "off",
		"MINI_OPENCLAW_SANDBOX_READ":  a + ":" + b + "/",
		"MINI_OPENCLAW_SANDBOX_WRITE": " " + b + " , ",
		"MINI_OPENCLAW_TOOL_ENV":      "GOPATH, HTTPS_PROXY,,",
	})
	if c.Sandbox != SandboxOff || !reflect.DeepEqual(c.SandboxRead, []string{a, b}) ||
		!reflect.DeepEqual(c.SandboxWrite, []string{b}) || !reflect.DeepEqual(c.ToolEnv, []string{"GOPATH", "HTTPS_PROXY"}) {
		t.Errorf("got sandbox %q read %q write %q tool env %q", c.Sandbox, c.SandboxRead, c.SandboxWrite, c.ToolEnv)
	}
	if c := mustLoad(t, nil, "--sandbox", "workspace", "--sandbox-write", a); c.Sandbox != SandboxWorkspace || !reflect.DeepEqual(c.SandboxWrite, []string{a}) {
		t.Errorf("flags: sandbox %q write %q", c.Sandbox, c.SandboxWrite)
	}

	gone := filepath.Join(a, "gone")
	for _, tc := range []struct{ env, val, want string }{
		{"MINI_OPENCLAW_SANDBOX", "strict", `MINI_OPENCLAW_SANDBOX="strict": must be one of workspace, off`},
		{"MINI_OPENCLAW_SANDBOX_READ", "rel/dir", `MINI_OPENCLAW_SANDBOX_READ: "rel/dir" is not an absolute path`},
		{"MINI_OPENCLAW_SANDBOX_WRITE", gone, `MINI_OPENCLAW_SANDBOX_WRITE: "` + gone + `" does not exist`},
		{"MINI_OPENCLAW_TOOL_ENV", "OK,BAD-NAME", `MINI_OPENCLAW_TOOL_ENV: "BAD-NAME" is not an environment variable name`},
	} {
		_, _, err := load(t, map[string]string{tc.env: tc.val})
		wantErr(t, err, tc.want)
	}
}
