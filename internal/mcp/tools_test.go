package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
	"github.com/miniclaw/miniclaw/internal/tools"
)

func memServer(name string) Server { return Server{Name: name, Type: Stdio, Command: "unused"} }

func TestToolsReachTheAgentWithTheirSchemas(t *testing.T) {
	m := start(t, nil, Options{Transport: inMemory}, memServer("srv"))
	if st := m.Status(); len(st) != 1 || st[0].State != StateReady || st[0].Tools != 13 {
		t.Fatalf("status %+v, want srv ready with 13 tools (one left out for its length)", st)
	}
	echo := tool(t, m, "mcp__srv__echo")
	if d := echo.Spec().Description; d != "the echo tool\nsecond line" {
		t.Errorf("description %q", d)
	}
	if !echo.ReadOnly() || tool(t, m, "mcp__srv__odd").ReadOnly() {
		t.Error("readOnly must follow the server's readOnlyHint, and nothing else")
	}
	for name, want := range map[string]string{"mcp__srv__odd": oddSchema, "mcp__srv__none": `{"type":"object"}`} {
		var got, exp any
		json.Unmarshal(tool(t, m, name).Spec().InputSchema, &got)
		json.Unmarshal([]byte(want), &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: schema\n%s\nwant\n%s", name, tool(t, m, name).Spec().InputSchema, want)
		}
	}
	// "with.dots" is sanitised; the 60-x tool's name would be 71 long.
	out, err := tool(t, m, "mcp__srv__with_dots").Run(context.Background(), json.RawMessage(`{}`))
	if err != nil || out != "dots" {
		t.Errorf("with.dots: %q, %v", out, err)
	}
	for _, n := range names(m) {
		if strings.Contains(n, "xxxxx") {
			t.Errorf("a tool name over %d characters was kept: %s", MaxToolName, n)
		}
	}
}

func TestResultsAsText(t *testing.T) {
	m := start(t, nil, Options{Transport: inMemory}, memServer("srv"))
	ctx := context.Background()
	for _, tc := range []struct{ tool, in, want, wantErr string }{
		{tool: "echo", in: `{"text":"hi there"}`, want: "hi there"},
		{tool: "rich", want: "look:\n[image image/png, 12345 bytes]\n[audio audio/wav, 10 bytes]\n[resource file:///a.txt (a.txt, text/plain)]\n[resource mem://note (text/plain)]\nthe note\n[resource mem://blob, 3 bytes]"},
		{tool: "structured", want: `{"sum":3}`},
		{tool: "fail", wantErr: "it broke"},
	} {
		in := json.RawMessage(tc.in)
		if tc.in == "" {
			in = json.RawMessage(`{}`)
		}
		out, err := tool(t, m, "mcp__srv__"+tc.tool).Run(ctx, in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr || out != "" {
				t.Errorf("%s: %q, %v; want the error %q", tc.tool, out, err, tc.wantErr)
			}
			continue
		}
		if err != nil || out != tc.want {
			t.Errorf("%s: %q, %v\nwant %q", tc.tool, out, err, tc.want)
		}
	}
}

func TestToolListChangedIsFollowed(t *testing.T) {
	m := start(t, nil, Options{Transport: inMemory}, memServer("srv"))
	if _, err := tool(t, m, "mcp__srv__grow").Run(context.Background(), json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.waitFor(ctx, func() bool {
		for _, tl := range m.tools {
			if tl.Spec().Name == "mcp__srv__late" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("the new tool never appeared: %v; tools %v", err, names(m))
	}
	if out, err := tool(t, m, "mcp__srv__late").Run(ctx, json.RawMessage(`{}`)); err != nil || out != "late" {
		t.Errorf("late: %q, %v", out, err)
	}
}

// A turn aborted during a slow call: the call returns at once with the
// abort, the server keeps serving, and its progress was logged.
func TestSlowCallStoppedByTheTurn(t *testing.T) {
	lb := &testutil.Buffer{}
	abortSlowCall(t, start(t, debugLog(lb), Options{Transport: inMemory}, memServer("srv")), "srv", lb)
}

// abortSlowCall calls server's slow tool, aborts the call once the server
// said it is halfway, and checks that the call returned with the abort and
// that the server still answers.
func abortSlowCall(t *testing.T, m *Manager, server string, lb *testutil.Buffer) {
	t.Helper()
	ctx, abort := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	slow := tool(t, m, ToolName(server, "slow"))
	go func() {
		_, err := slow.Run(ctx, json.RawMessage(`{}`))
		done <- err
	}()
	waitLog(t, lb, `msg="MCP tool progress" server=`+server+` tool=slow progress=1 total=2 message=halfway`)
	abort(core.ErrAborted)
	var err error
	testutil.Within(t, 5*time.Second, "the aborted call's return", func() { err = <-done })
	if !errors.Is(err, core.ErrAborted) || !strings.Contains(err.Error(), `MCP server "`+server+`": slow: call stopped`) {
		t.Errorf("err = %v, want the abort", err)
	}
	if out, err := tool(t, m, ToolName(server, "echo")).Run(context.Background(), json.RawMessage(`{"text":"after"}`)); err != nil || out != "after" {
		t.Errorf("the server after an aborted call: %q, %v", out, err)
	}
}

// waitLog waits until the log holds s.
func waitLog(t *testing.T, lb *testutil.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(lb.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", s, lb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestToolNames(t *testing.T) {
	for _, tc := range []struct{ server, tool, want string }{
		{"fs", "read_file", "mcp__fs__read_file"},
		{"my-srv", "get.thing/v2 now", "mcp__my-srv__get_thing_v2_now"},
		{"x", "héllo", "mcp__x__h_llo"},
	} {
		if got := ToolName(tc.server, tc.tool); got != tc.want {
			t.Errorf("ToolName(%q, %q) = %q, want %q", tc.server, tc.tool, got, tc.want)
		}
	}
}

// A server's progress notifications during a call reach the reporter the
// call's context carries (the agent turns them into tool_progress events).
func TestProgressReachesTheCallsReporter(t *testing.T) {
	m := start(t, nil, Options{Transport: inMemory}, memServer("srv"))
	got := make(chan tools.Progress, 1)
	ctx, abort := context.WithCancelCause(tools.WithProgress(context.Background(), func(p tools.Progress) {
		select {
		case got <- p:
		default:
		}
	}))
	done := make(chan error, 1)
	go func() {
		_, err := tool(t, m, "mcp__srv__slow").Run(ctx, json.RawMessage(`{}`))
		done <- err
	}()
	var p tools.Progress
	testutil.Within(t, 10*time.Second, "the slow tool's progress", func() { p = <-got })
	if want := (tools.Progress{Progress: 1, Total: 2, Message: "halfway"}); p != want {
		t.Errorf("progress %+v, want %+v", p, want)
	}
	abort(core.ErrAborted)
	testutil.Within(t, 5*time.Second, "the aborted call's return", func() { <-done })
}
