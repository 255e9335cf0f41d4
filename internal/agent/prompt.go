package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Identity is the first line of every system prompt.
const Identity = "You are a personal AI assistant running inside miniclaw, a self-hosted agent gateway. You work in the user's workspace with the tools below."

// maxBootstrapBytes caps SOUL.md and TOOLS.md in the prompt.
const maxBootstrapBytes = 20_000

// ContextTag wraps the prompt's volatile part where the providers put it:
// at the end of the request's last user message.
const ContextTag = "miniclaw-context"

// systemPrompt assembles a turn's prompt in two parts, so that a provider's
// prompt cache can serve all but the newest messages of a session.
//
// stable is the system prompt proper, byte-identical on every request of a
// session as long as the workspace's files do not change: identity,
// SOUL.md, TOOLS.md, the skills index, runtime information (working
// directory, platform), tools, in that order, with the time and memory
// moved out. A section whose source is missing or empty is left out.
//
// volatile is what changes from turn to turn: the time, then memory
// (long-term, then the daily logs, which grow after every turn). It goes in
// core.Request.Volatile, which providers send after the conversation: in
// the system prompt it would change the prefix of everything after it, the
// whole conversation, on every turn.
func (r *Runtime) systemPrompt(now time.Time) (stable, volatile string) {
	var b strings.Builder
	section := func(title, body string) {
		if body = strings.TrimSpace(body); body != "" {
			fmt.Fprintf(&b, "\n## %s\n", title)
			b.WriteString(body)
			b.WriteString("\n")
		}
	}
	b.WriteString(Identity)
	b.WriteString("\n")
	section("Identity & Personality", r.bootstrap("SOUL.md"))
	section("Tool Usage Guidelines", r.bootstrap("TOOLS.md"))
	if r.Knowledge != nil {
		section("Skills", r.Knowledge.SkillsSection())
	}
	section("Runtime Information", fmt.Sprintf("- Working directory: %s\n- Platform: %s/%s\n"+
		"- Time and memory: the latest message ends with a <%s> block that miniclaw adds on every turn (the user did not write it): the current time and your memory.",
		r.Workspace, runtime.GOOS, runtime.GOARCH, ContextTag))
	if r.Tools != nil {
		var tb strings.Builder
		for _, s := range r.Tools.Specs() {
			fmt.Fprintf(&tb, "- %s: %s\n", s.Name, s.Description)
		}
		section("Available Tools", tb.String())
	}
	stable = b.String()

	b.Reset()
	fmt.Fprintf(&b, "<%s>\n- Time: %s\n", ContextTag, now.Format("2006-01-02 15:04:05 MST (Monday)"))
	if r.Knowledge != nil {
		section("Memory", r.Knowledge.MemorySection())
	}
	fmt.Fprintf(&b, "</%s>", ContextTag)
	return stable, b.String()
}

// bootstrap reads <workspace>/.openclaw/<name>, cut at maxBootstrapBytes:
// only that much is read, whatever the file's size. A missing file is "";
// one that cannot be read (a FIFO, a device, no permission, a link leading
// out of the workspace) is a note saying why, so the model can tell the
// user. The file is read through a root of the workspace: the model's shell
// can make SOUL.md a link to ~/.ssh/id_rsa, and the gateway must not read
// for the model what the model may not read itself.
func (r *Runtime) bootstrap(name string) string {
	b, cut, err := readWorkspaceHead(r.Workspace, filepath.Join(".openclaw", name), maxBootstrapBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ""
	case err != nil:
		return fmt.Sprintf("[%s left out: %v]", name, err)
	case cut:
		// ToValidUTF8 drops a character the cut split in two.
		return strings.ToValidUTF8(string(b), "") + fmt.Sprintf("\n[%s cut at %d bytes]", name, maxBootstrapBytes)
	}
	return string(b)
}

// readWorkspaceHead is safeopen.ReadHeadIn of rel in a root of workspace.
func readWorkspaceHead(workspace, rel string, limit int) ([]byte, bool, error) {
	root, err := safeopen.OpenRoot(workspace)
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	return safeopen.ReadHeadIn(root, rel, limit)
}
