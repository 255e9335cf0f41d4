package mcp

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// everything is the reference server-everything on stdio, run with the
// pinned Node.
func everything(t *testing.T, name string) Server {
	in := testutil.NeedInterop(t)
	return Server{Name: name, Type: Stdio, Command: in.Node, Args: []string{filepath.Join(in.Modules, "@modelcontextprotocol", "server-everything", "dist", "index.js")}}
}

func TestInteropServerEverything(t *testing.T) {
	lb := &testutil.Buffer{}
	m := start(t, debugLog(lb), Options{Helper: helper(t)}, everything(t, "everything"))
	if st := m.Status()[0]; st.State != StateReady {
		t.Fatalf("status %+v", st)
	}
	for _, tc := range []struct{ tool, in, want string }{
		{"echo", `{"message":"hello"}`, "Echo: hello"},
		{"get-sum", `{"a":2,"b":40}`, "The sum of 2 and 40 is 42."},
		{"get-tiny-image", `{}`, "Here's the image you requested:\n[image image/png, "},
		{"get-structured-content", `{"location":"Chicago"}`, `{"temperature":36,"conditions":"Light rain / drizzle","humidity":82}`},
		{"trigger-long-running-operation", `{"duration":0.2,"steps":2}`, "Long running operation completed"},
	} {
		out, err := call(t, m, ToolName("everything", tc.tool), tc.in)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %q, %v\nwant it to hold %q", tc.tool, out, err, tc.want)
		}
	}
	if !strings.Contains(lb.String(), `msg="MCP tool progress" server=everything tool=trigger-long-running-operation progress=1 total=2`) {
		t.Errorf("no progress logged:\n%s", lb.String())
	}
	if !tool(t, m, "mcp__everything__echo").ReadOnly() || tool(t, m, "mcp__everything__toggle-simulated-logging").ReadOnly() {
		t.Error("readOnlyHint not followed")
	}
}

func TestInteropServerFilesystem(t *testing.T) {
	in := testutil.NeedInterop(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "note.txt"), []byte("remember the milk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := Server{Name: "fs", Type: Stdio, Command: in.Node, Args: []string{filepath.Join(in.Modules, "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), dir}}
	m := start(t, nil, Options{Helper: helper(t)}, fs)
	out, err := call(t, m, "mcp__fs__read_text_file", `{"path":"`+filepath.Join(dir, "note.txt")+`"}`)
	if err != nil || !strings.Contains(out, "remember the milk") {
		t.Errorf("read_text_file: %q, %v", out, err)
	}
	out, err = call(t, m, "mcp__fs__read_text_file", `{"path":"/etc/passwd"}`)
	if err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Errorf("read outside its directory: %q, %v; want the server's isError result", out, err)
	}
}

// The streamable HTTP transport, against server-everything serving it.
func TestInteropHTTP(t *testing.T) {
	in := testutil.NeedInterop(t)
	port := freePort(t)
	cmd := exec.Command(in.Node, filepath.Join(in.Modules, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on port") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	srv := Server{Name: "web", Type: HTTP, URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/mcp", Headers: map[string]string{"X-Test": "1"}}
	m := start(t, nil, Options{}, srv)
	if out, err := call(t, m, "mcp__web__echo", `{"message":"over http"}`); err != nil || out != "Echo: over http" {
		t.Errorf("echo: %q, %v; status %+v", out, err, m.Status())
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
