package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/sandbox"
)

// MaxBashOutput is how many characters of a command's output the model sees.
const MaxBashOutput = 10_000

// DefaultBashTimeout applies when Bash.Timeout is zero.
const DefaultBashTimeout = 30 * time.Second

// Bash runs shell commands in the workspace, through Sandbox: confined by
// Landlock (unless the sandbox is off), with an environment that holds none
// of the gateway's secrets. When a command ends, times out or is aborted,
// every process it started is killed, however it detached.
type Bash struct {
	Dir     string
	Timeout time.Duration // 0 means DefaultBashTimeout
	// Sandbox runs the shell; nil runs it directly, unconfined, with the
	// gateway's environment (see sandbox.Sandbox.Command). miniclaw always
	// sets it.
	Sandbox *sandbox.Sandbox
}

func (b Bash) timeout() time.Duration {
	if b.Timeout > 0 {
		return b.Timeout
	}
	return DefaultBashTimeout
}

func (Bash) ReadOnly() bool { return false }
func (b Bash) Spec() core.ToolSpec {
	return spec("bash", fmt.Sprintf("Run a bash command in the workspace directory. stdout and stderr are merged; output is cut at %d characters. Commands time out after %s.", MaxBashOutput, b.timeout()),
		schema([]string{"command"}, map[string]map[string]string{
			"command": {"type": "string", "description": "the bash command line to run"},
		}))
}

func (b Bash) Run(ctx context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Command string `json:"command"`
	}
	if err := DecodeInput("bash", input, &in); err != nil {
		return "", err
	}
	if strings.TrimSpace(in.Command) == "" {
		return "", errors.New(`bash: "command" is required`)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, b.timeout(), errTimeout)
	defer cancel()
	cmd := b.Sandbox.Command(ctx, b.Dir, "bash", "-c", in.Command)
	out := &capped{limit: MaxBashOutput * 4}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	text := out.text(MaxBashOutput)
	switch {
	case errors.Is(context.Cause(ctx), errTimeout):
		return "", fmt.Errorf("%s\n[command timed out after %s and was killed]", text, b.timeout())
	case ctx.Err() != nil:
		return "", fmt.Errorf("%s\n[command aborted]", text)
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("%s\n[exit code %d]", text, exit.ExitCode())
		}
		return "", fmt.Errorf("bash: %v", err)
	}
	if text == "" {
		return "(no output)", nil
	}
	return text, nil
}

var errTimeout = errors.New("bash timeout")

// capped keeps the first limit bytes written to it and counts the rest.
type capped struct {
	mu      sync.Mutex
	buf     []byte
	limit   int
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - len(c.buf)
	if room >= len(p) {
		c.buf = append(c.buf, p...)
	} else {
		c.buf = append(c.buf, p[:max(room, 0)]...)
		c.dropped += len(p) - max(room, 0)
	}
	return len(p), nil
}

// text returns at most max characters, with a note when output was cut.
func (c *capped) text(maxChars int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.ToValidUTF8(string(c.buf), "\uFFFD")
	n := utf8.RuneCountInString(s)
	if n <= maxChars && c.dropped == 0 {
		return strings.TrimRight(s, "\n")
	}
	if n > maxChars {
		s = string([]rune(s)[:maxChars])
	}
	return s + fmt.Sprintf("\n[output truncated: showing the first %d characters]", maxChars)
}
