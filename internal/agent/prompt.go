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

// systemPrompt assembles the prompt in SPEC §6's order: identity, SOUL.md,
// TOOLS.md, memory (long-term, then recent daily logs), the skills index,
// runtime information, tools. A section whose source is missing or empty is
// left out.
func (r *Runtime) systemPrompt(now time.Time) string {
	var b strings.Builder
	b.WriteString(Identity)
	b.WriteString("\n")
	section := func(title, body string) {
		if body = strings.TrimSpace(body); body != "" {
			fmt.Fprintf(&b, "\n## %s\n", title)
			b.WriteString(body)
			b.WriteString("\n")
		}
	}
	section("Identity & Personality", r.bootstrap("SOUL.md"))
	section("Tool Usage Guidelines", r.bootstrap("TOOLS.md"))
	if r.Knowledge != nil {
		section("Memory", r.Knowledge.MemorySection())
		section("Skills", r.Knowledge.SkillsSection())
	}
	section("Runtime Information", fmt.Sprintf("- Time: %s\n- Working directory: %s\n- Platform: %s/%s",
		now.Format("2006-01-02 15:04:05 MST (Monday)"), r.Workspace, runtime.GOOS, runtime.GOARCH))
	if r.Tools != nil {
		var tb strings.Builder
		for _, s := range r.Tools.Specs() {
			fmt.Fprintf(&tb, "- %s: %s\n", s.Name, s.Description)
		}
		section("Available Tools", tb.String())
	}
	return b.String()
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
