package agent

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// knowledge is a stub of the memory and skills layer.
type knowledge struct{ memory, skills string }

func (k knowledge) MemorySection() string { return k.memory }
func (k knowledge) SkillsSection() string { return k.skills }

// golden compares got with testdata/<name>, after replacing the parts that
// vary by machine with placeholders; -update rewrites the file.
func golden(t *testing.T, name, got, workspace string) {
	t.Helper()
	got = strings.NewReplacer(
		workspace, "{{WORKSPACE}}",
		"Platform: "+runtime.GOOS+"/"+runtime.GOARCH, "Platform: {{PLATFORM}}",
	).Replace(got)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("system prompt differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// promptOf runs a one-round turn and returns the System the model got.
func promptOf(t *testing.T, rt *Runtime) string {
	t.Helper()
	p := &fakeProvider{replies: []reply{{chunks: []string{"ok"}}}}
	rt.Provider = p
	if _, err := rt.Run(context.Background(), []core.Message{user("hi")}, Events{}); err != nil {
		t.Fatal(err)
	}
	return p.requests(t)[0].System
}

func promptRuntime(t *testing.T, files map[string]string, k Knowledge, withTools bool) *Runtime {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, ".openclaw", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rt := &Runtime{Model: "m", Workspace: dir, Knowledge: k, Now: func() time.Time { return fixedNow }}
	if withTools {
		ws, err := tools.OpenWorkspace(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		rt.Tools = tools.NewSet(append(ws.FileTools(), tools.Bash{Dir: dir, Timeout: 30 * time.Second})...)
	}
	return rt
}

var fullKnowledge = knowledge{
	memory: "### Long-term memory (MEMORY.md)\n- The user prefers tea.\n\n### Daily log 2025-03-14\n- [09:12:00] fixed the build\n",
	skills: "<available_skills>\n<skill>\n<name>pdf</name>\n<description>Read &amp; fill PDF forms</description>\n<location>/skills/pdf/SKILL.md</location>\n</skill>\n</available_skills>",
}

func TestSystemPromptFull(t *testing.T) {
	rt := promptRuntime(t, map[string]string{
		"SOUL.md":  "You are Claw: terse, kind, and exact.\n",
		"TOOLS.md": "\nPrefer read_file over cat.\nNever run rm -rf.\n\n",
	}, fullKnowledge, true)
	got := promptOf(t, rt)
	golden(t, "system_full.golden", got, rt.Workspace)

	// The sections come in SPEC §6's order.
	order := []string{
		Identity,
		"## Identity & Personality\nYou are Claw",
		"## Tool Usage Guidelines\nPrefer read_file",
		"## Memory\n### Long-term memory",
		"\n<available_skills>",
		"## Runtime Information\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n- Working directory: " + rt.Workspace + "\n- Platform: " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		"## Available Tools\n- bash: ",
	}
	last := -1
	for _, s := range order {
		i := strings.Index(got, s)
		if i < 0 {
			t.Fatalf("prompt lacks %q", s)
		}
		if i <= last {
			t.Errorf("%q is out of order", s)
		}
		last = i
	}
	if !strings.HasPrefix(got, Identity+"\n") {
		t.Errorf("prompt does not start with the identity line")
	}
	for _, name := range []string{"bash", "edit_file", "list_files", "read_file", "write_file"} {
		if !strings.Contains(got, "\n- "+name+": ") {
			t.Errorf("tool %s not listed", name)
		}
	}
}

func TestSystemPromptMinimal(t *testing.T) {
	// No .openclaw files, no knowledge, no tools: identity and runtime only.
	rt := promptRuntime(t, nil, nil, false)
	got := promptOf(t, rt)
	golden(t, "system_minimal.golden", got, rt.Workspace)
	for _, absent := range []string{"## Identity & Personality", "## Tool Usage Guidelines", "## Memory", "<available_skills>", "## Available Tools"} {
		if strings.Contains(got, absent) {
			t.Errorf("prompt holds %q", absent)
		}
	}
}

func TestSystemPromptPartial(t *testing.T) {
	// Only TOOLS.md, an empty SOUL.md, memory without skills: the missing
	// and empty sources leave no heading behind.
	rt := promptRuntime(t, map[string]string{"SOUL.md": "  \n\n", "TOOLS.md": "Use bash sparingly."}, knowledge{memory: "- likes Go"}, true)
	got := promptOf(t, rt)
	golden(t, "system_partial.golden", got, rt.Workspace)
	if strings.Contains(got, "## Identity & Personality") || strings.Contains(got, "<available_skills>") {
		t.Errorf("prompt holds an empty section:\n%s", got)
	}
	if !strings.Contains(got, "\n## Tool Usage Guidelines\nUse bash sparingly.\n\n## Memory\n- likes Go\n\n## Runtime Information\n") {
		t.Errorf("sections not adjacent as expected:\n%s", got)
	}
}

func TestSystemPromptCutsLongBootstrap(t *testing.T) {
	soul := strings.Repeat("s", maxBootstrapBytes+100)
	rt := promptRuntime(t, map[string]string{"SOUL.md": soul}, nil, false)
	got := promptOf(t, rt)
	want := "## Identity & Personality\n" + strings.Repeat("s", maxBootstrapBytes) + "\n[SOUL.md cut at 20000 bytes]\n"
	if !strings.Contains(got, want) {
		t.Errorf("SOUL.md not cut at %d bytes with a note", maxBootstrapBytes)
	}
	if strings.Contains(got, strings.Repeat("s", maxBootstrapBytes+1)) {
		t.Error("more than the cap made it into the prompt")
	}
}

func TestSystemPromptClock(t *testing.T) {
	// The time line follows Runtime.Now, in its zone.
	rt := promptRuntime(t, nil, nil, false)
	zone := time.FixedZone("CET", 3600)
	rt.Now = func() time.Time { return time.Date(2024, 12, 31, 23, 59, 58, 0, zone) }
	if got := promptOf(t, rt); !strings.Contains(got, "- Time: 2024-12-31 23:59:58 CET (Tuesday)\n") {
		t.Errorf("time line missing:\n%s", got)
	}
}
