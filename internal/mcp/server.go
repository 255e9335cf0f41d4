package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/sandbox"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// terminateAfter is how long a stdio server has to exit once its stdin is
// closed, before SIGTERM (and as long again before SIGKILL).
const terminateAfter = 2 * time.Second

// server supervises one configured server: it starts it, serves its tools
// while it runs, and restarts it when it dies. Its fields below mu are
// guarded by the manager's mu.
type server struct {
	m   *Manager
	cfg Server

	state    string
	lastErr  string
	restarts int // starts after the first
	tools    []Tool
	session  *sdk.ClientSession

	tokens   atomic.Int64
	progress sync.Map // progress token → the call's progressTarget
}

// supervise runs the server until ctx is done, restarting it when it
// fails or dies, if the manager restarts servers.
func (s *server) supervise(ctx context.Context) {
	lo, hi := s.m.opts.backoff()
	wait := lo
	for {
		up, err := s.serve(ctx)
		if ctx.Err() != nil {
			s.m.update(func() { s.session, s.tools = nil, nil })
			return
		}
		next := StateFailed
		if up > 0 {
			next = StateRestarting
		}
		s.m.update(func() { s.state, s.lastErr, s.session, s.tools = next, err.Error(), nil, nil })
		if !s.m.opts.Restart {
			s.m.log.Warn("MCP server failed", "server", s.cfg.Name, "err", err)
			return
		}
		if up > hi {
			wait = lo // it ran for a while: this is a new failure, not a crash loop
		}
		s.m.log.Warn("MCP server failed; restarting", "server", s.cfg.Name, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, hi)
		s.m.update(func() { s.restarts++ })
	}
}

// serve starts the server once and serves it until it dies or ctx is
// done. It returns how long the server was ready (0: it never was) and
// why it ended.
func (s *server) serve(ctx context.Context) (time.Duration, error) {
	// The process outlives ctx by a little: on shutdown its stdin is
	// closed first, so it can exit on its own, and only then is it killed.
	procCtx, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	transport, stderr, err := s.transport(procCtx)
	if err != nil {
		return 0, err
	}
	refresh := make(chan struct{}, 1)
	client := sdk.NewClient(&sdk.Implementation{Name: "miniclaw", Version: s.m.opts.Version}, &sdk.ClientOptions{
		// No roots, sampling or elicitation: miniclaw only calls tools.
		Capabilities: &sdk.ClientCapabilities{},
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			// The handler runs on the connection's reader: list from the
			// serving loop, never here.
			select {
			case refresh <- struct{}{}:
			default:
			}
		},
		ProgressNotificationHandler: s.onProgress,
	})
	startCtx, cancel := context.WithTimeout(ctx, s.m.opts.startTimeout())
	defer cancel()
	startFailed := func(what string, err error) error {
		if errors.Is(startCtx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s (MINI_OPENCLAW_MCP_START_TIMEOUT)", s.m.opts.startTimeout())
		}
		return failure(what, err, stderr)
	}
	cs, err := client.Connect(startCtx, transport, nil)
	if err != nil {
		return 0, startFailed("start", err)
	}
	dead := make(chan error, 1)
	go func() { dead <- cs.Wait() }()
	defer func() { cs.Close(); <-dead }()
	list, err := s.listTools(startCtx, cs)
	if err != nil {
		return 0, startFailed("tools/list", err)
	}
	cancel()
	s.m.update(func() { s.state, s.lastErr, s.session, s.tools = StateReady, "", cs, list })
	s.m.log.Info("MCP server ready", "server", s.cfg.Name, "transport", s.cfg.Type, "tools", len(list))
	ready := time.Now()
	for {
		select {
		case err := <-dead:
			dead <- err // for the deferred Close
			return time.Since(ready), failure("exited", errors.New("the connection ended"), stderr)
		case <-ctx.Done():
			return time.Since(ready), context.Cause(ctx)
		case <-refresh:
			lctx, cancel := context.WithTimeout(ctx, s.m.opts.startTimeout())
			list, err := s.listTools(lctx, cs)
			cancel()
			if err != nil {
				s.m.log.Warn("MCP server: tools/list after tools/list_changed failed; keeping the previous list", "server", s.cfg.Name, "err", err)
				continue
			}
			s.m.update(func() { s.tools = list })
			s.m.log.Info("MCP server's tools changed", "server", s.cfg.Name, "tools", len(list))
		}
	}
}

// failure words why a start or a run ended, with the last lines the
// server wrote to stderr (a stdio server's own explanation).
func failure(what string, err error, stderr *tail) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	if t := stderr.String(); t != "" {
		msg += "; stderr: " + t
	}
	return errors.New(msg)
}

// transport builds the server's transport; a stdio server's process lives
// until procCtx is done.
func (s *server) transport(procCtx context.Context) (sdk.Transport, *tail, error) {
	stderr := &tail{}
	if s.m.opts.Transport != nil {
		t, err := s.m.opts.Transport(s.cfg)
		return t, stderr, err
	}
	if s.cfg.Type == HTTP {
		return &sdk.StreamableClientTransport{
			Endpoint:   s.cfg.URL,
			HTTPClient: &http.Client{Transport: headers{h: s.cfg.Headers, next: http.DefaultTransport}},
			MaxRetries: -1, // a lost connection is a restart, with the backoff
		}, stderr, nil
	}
	dir := s.cfg.Cwd
	if dir == "" {
		dir = s.m.opts.Workspace
	}
	cmd := s.m.opts.Helper.Command(procCtx, dir, append([]string{s.cfg.Command}, s.cfg.Args...)...)
	cmd.Env = sandbox.FilterEnv(s.m.opts.Environ, s.m.opts.PassEnv, s.cfg.Env)
	cmd.Stderr = stderr
	return &sdk.CommandTransport{Command: cmd.Cmd, TerminateDuration: terminateAfter}, stderr, nil
}

// headers adds the configured headers to every request of an http server.
type headers struct {
	h    map[string]string
	next http.RoundTripper
}

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.h {
		r.Header.Set(k, v)
	}
	return h.next.RoundTrip(r)
}

// listTools lists the server's tools as agent tools. A tool whose name
// cannot be made a valid tool name, or that another of its tools already
// took, is left out with a warning.
func (s *server) listTools(ctx context.Context, cs *sdk.ClientSession) ([]Tool, error) {
	var out []Tool
	seen := map[string]bool{}
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		name := ToolName(s.cfg.Name, t.Name)
		switch {
		case len(name) > MaxToolName:
			s.m.log.Warn("MCP tool left out: its name is too long for the model APIs", "server", s.cfg.Name, "tool", t.Name, "name", name, "max", MaxToolName)
			continue
		case seen[name]:
			s.m.log.Warn("MCP tool left out: another tool of the server has the same name once sanitised", "server", s.cfg.Name, "tool", t.Name, "name", name)
			continue
		}
		seen[name] = true
		schema := json.RawMessage(`{"type":"object"}`)
		if t.InputSchema != nil {
			b, err := core.MarshalJSON(t.InputSchema)
			if err != nil {
				return nil, fmt.Errorf("tool %s: input schema: %w", t.Name, err)
			}
			schema = b
		}
		out = append(out, Tool{
			srv: s, name: t.Name,
			spec:     core.ToolSpec{Name: name, Description: t.Description, InputSchema: schema},
			readOnly: t.Annotations != nil && t.Annotations.ReadOnlyHint,
		})
	}
	return out, nil
}

// MaxToolName is the longest tool name every provider takes: OpenAI's
// function names are ^[a-zA-Z0-9_-]{1,64}$, Anthropic's allow 128.
const MaxToolName = 64

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// ToolName is the agent's name of a server's tool: mcp__<server>__<tool>
// (Claude Code's convention), with every character the model APIs refuse
// replaced by _.
func ToolName(server, tool string) string {
	return "mcp__" + unsafeChars.ReplaceAllString(server, "_") + "__" + unsafeChars.ReplaceAllString(tool, "_")
}

// progressTarget is where the progress notifications of one call go.
type progressTarget struct {
	tool   string               // the server's name of the tool
	report func(tools.Progress) // the call's reporter; nil when nobody listens
}

// onProgress logs a call's progress notifications and hands them to the
// call's reporter (see tools.WithProgress). A notification for a call that
// has returned is dropped.
func (s *server) onProgress(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
	p := req.Params
	v, ok := s.progress.Load(fmt.Sprint(p.ProgressToken))
	if !ok {
		return
	}
	to := v.(progressTarget)
	s.m.log.Debug("MCP tool progress", "server", s.cfg.Name, "tool", to.tool, "progress", p.Progress, "total", p.Total, "message", p.Message)
	if to.report != nil {
		to.report(tools.Progress{Progress: p.Progress, Total: p.Total, Message: p.Message})
	}
}

// call calls a tool of the server's current session.
func (s *server) call(ctx context.Context, name string, input json.RawMessage) (*sdk.CallToolResult, error) {
	s.m.mu.Lock()
	cs, state, lastErr := s.session, s.state, s.lastErr
	s.m.mu.Unlock()
	if cs == nil {
		return nil, fmt.Errorf("MCP server %q is %s: %s", s.cfg.Name, state, lastErr)
	}
	params := &sdk.CallToolParams{Name: name, Arguments: input}
	token := fmt.Sprintf("%s-%d", s.cfg.Name, s.tokens.Add(1))
	params.SetProgressToken(token)
	s.progress.Store(token, progressTarget{tool: name, report: tools.ProgressReporter(ctx)})
	defer s.progress.Delete(token)
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("MCP server %q: %s: call stopped: %w", s.cfg.Name, name, context.Cause(ctx))
		}
		return nil, fmt.Errorf("MCP server %q: %s: %w", s.cfg.Name, name, err)
	}
	return res, nil
}

// tail keeps the last bytes a server wrote to stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 1024

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = t.buf[len(t.buf)-tailBytes:]
	}
	return len(p), nil
}

// String is the tail's last lines, on one line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(t.buf), "?")), " ")
}
