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
	"github.com/miniclaw/miniclaw/internal/memory"
	"github.com/miniclaw/miniclaw/internal/skills"
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

// afterConversation separates, in promptOf's result, the stable system
// prompt from the volatile part sent after the conversation.
const afterConversation = "\n[sent after the conversation:]\n"

// promptOf runs a one-round turn and returns the prompt the model got: the
// System, then the Volatile part.
func promptOf(t *testing.T, rt *Runtime) string {
	t.Helper()
	req := requestOf(t, rt)
	return req.System + afterConversation + req.Volatile + "\n"
}

// requestOf runs a one-round turn and returns the model's request.
func requestOf(t *testing.T, rt *Runtime) core.Request {
	t.Helper()
	p := &fakeProvider{replies: []reply{{chunks: []string{"ok"}}}}
	rt.Provider = p
	if _, err := rt.Run(context.Background(), "s", []core.Message{user("hi")}, Events{}); err != nil {
		t.Fatal(err)
	}
	return p.requests(t)[0]
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

	// The sections come in the prompt's fixed order, but for the time and memory,
	// which change from turn to turn and come after the conversation.
	order := []string{
		Identity,
		"## Identity & Personality\nYou are Claw",
		"## Tool Usage Guidelines\nPrefer read_file",
		"\n<available_skills>",
		"## Runtime Information\n- Working directory: " + rt.Workspace + "\n- Platform: " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		"## Available Tools\n- bash: ",
		afterConversation + "<miniclaw-context>\n- Time: 2025-03-14 15:09:26 UTC (Friday)\n",
		"## Memory\n### Long-term memory",
		"</miniclaw-context>\n",
	}
	wantInOrder(t, got, order...)
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
	if !strings.Contains(got, "\n## Tool Usage Guidelines\nUse bash sparingly.\n\n## Runtime Information\n") ||
		!strings.Contains(got, "\n\n## Memory\n- likes Go\n</miniclaw-context>\n") {
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

// realKnowledge is the memory and skills layers as the gateway wires them.
type realKnowledge struct {
	*memory.Store
	*skills.Index
}

// The whole system prompt built from real files by the real memory and
// skills layers, with every source present and with each one alone: one
// golden file per case, and the sections in the prompt's fixed order.
func TestSystemPromptKnowledgeGolden(t *testing.T) {
	soul := "You are Claw: terse, kind, and exact.\n"
	toolsMD := "Prefer read_file over cat.\n"
	files := map[string]string{ // relative to the workspace
		"workspace-memory": "MEMORY.md",
		"data-memory":      ".mini-openclaw/memory/MEMORY.md",
		"daily-logs":       ".mini-openclaw/memory/daily-logs/2025-03-13.md",
		"skills":           ".openclaw/skills/pdf/SKILL.md",
	}
	content := map[string]string{
		"workspace-memory": "# About the user\n- Name: Ada. Works on compilers.\n",
		"data-memory":      "- prefers tea\n- the deploy key is in vault\n",
		"daily-logs":       "- [09:12:00] asked \"fix the build\"; tools: bash×2\n",
		"skills":           "---\nname: pdf\ndescription: |\n  Read & fill <PDF> forms.\n  Use for any .pdf file.\n---\n# PDF\n",
	}
	extra := map[string]map[string]string{ // more files of a case
		"daily-logs": {".mini-openclaw/memory/daily-logs/2025-03-14.md": "- [15:00:00] asked \"hello\"\n", ".mini-openclaw/memory/daily-logs/2025-03-11.md": "- [08:00:00] too old\n"},
		"skills":     {".openclaw/skills/broken/SKILL.md": "no frontmatter\n", ".openclaw/skills/git/SKILL.md": "---\ndescription: \"Commit: small, focused\"\n---\n"},
	}
	cases := []string{"all", "none", "soul", "tools-md", "workspace-memory", "data-memory", "daily-logs", "skills"}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			boot := map[string]string{}
			if name == "all" || name == "soul" {
				boot["SOUL.md"] = soul
			}
			if name == "all" || name == "tools-md" {
				boot["TOOLS.md"] = toolsMD
			}
			rt := promptRuntime(t, boot, nil, true)
			for key, rel := range files {
				if name == "all" || name == key {
					writeWS(t, rt.Workspace, rel, content[key])
					for rel, c := range extra[key] {
						writeWS(t, rt.Workspace, rel, c)
					}
				}
			}
			mem := &memory.Store{Workspace: rt.Workspace, Dir: filepath.Join(rt.Workspace, ".mini-openclaw", "memory"), Now: func() time.Time { return fixedNow }}
			rt.Tools.Add(mem.Tools()...)
			rt.Knowledge = realKnowledge{mem, skills.New(filepath.Join(rt.Workspace, ".openclaw", "skills"), rt.Workspace, nil)}
			got := promptOf(t, rt)
			golden(t, "prompt_"+name+".golden", got, rt.Workspace)
			if name != "all" {
				return
			}
			order := []string{
				Identity + "\n",
				"\n## Identity & Personality\nYou are Claw",
				"\n## Tool Usage Guidelines\nPrefer read_file",
				"\n## Skills\nSkills are instructions",
				"\n<available_skills>\n<skill>\n<name>git</name>",
				"<name>pdf</name>\n<description>Read &amp; fill &lt;PDF&gt; forms. Use for any .pdf file.</description>\n<location>.openclaw/skills/pdf/SKILL.md</location>",
				"\n## Runtime Information\n",
				"\n## Available Tools\n",
				"\n- memory_search: ",
				"\n- memory_write: ",
				afterConversation,
				"\n## Memory\n### Long-term memory (MEMORY.md)\n",
				"\n### Long-term memory (.mini-openclaw/memory/MEMORY.md)\n",
				"\n### Daily log 2025-03-13\n",
				"\n### Daily log 2025-03-14 (today)\n",
			}
			wantInOrder(t, got, order...)
			for _, absent := range []string{"too old", "broken"} {
				if strings.Contains(got, absent) {
					t.Errorf("prompt holds %q", absent)
				}
			}
		})
	}
}

func writeWS(t *testing.T, ws, rel, content string) {
	t.Helper()
	p := filepath.Join(ws, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantInOrder checks that each part appears in the prompt, after the one
// before it.
func wantInOrder(t *testing.T, got string, parts ...string) {
	t.Helper()
	last := -1
	for _, s := range parts {
		i := strings.Index(got, s)
		if i < 0 {
			t.Fatalf("prompt lacks %q", s)
		}
		if i <= last {
			t.Errorf("%q is out of order", s)
		}
		last = i
	}
}

// The system prompt is the cacheable prefix of a session's requests: two
// turns at different times, with the daily log grown and long-term memory
// rewritten in between, send byte-identical System; the time and memory
// still reach the model, in Volatile.
func TestSystemPromptStableAcrossTurns(t *testing.T) {
	rt := promptRuntime(t, map[string]string{"SOUL.md": "You are Claw.", "TOOLS.md": "Prefer read_file."}, nil, true)
	mem := &memory.Store{Workspace: rt.Workspace, Dir: filepath.Join(rt.Workspace, ".mini-openclaw", "memory")}
	rt.Tools.Add(mem.Tools()...)
	rt.Knowledge = realKnowledge{mem, skills.New(filepath.Join(rt.Workspace, ".openclaw", "skills"), rt.Workspace, nil)}
	writeWS(t, rt.Workspace, ".openclaw/skills/pdf/SKILL.md", "---\nname: pdf\ndescription: Read PDF forms.\n---\n")

	turn := func(now time.Time, memoryLine, logLine string) core.Request {
		mem.Now = func() time.Time { return now }
		rt.Now = mem.Now
		writeWS(t, rt.Workspace, "MEMORY.md", memoryLine)
		writeWS(t, rt.Workspace, ".mini-openclaw/memory/daily-logs/"+now.Format(time.DateOnly)+".md", logLine)
		return requestOf(t, rt)
	}
	first := turn(fixedNow, "- likes tea\n", "- [15:00:00] asked \"hello\"\n")
	second := turn(fixedNow.Add(26*time.Hour+17*time.Second), "- likes coffee now\n", "- [17:09:00] asked \"read big.txt\"\n")
	if first.System != second.System {
		t.Errorf("the system prompt changed between turns:\n--- first\n%s\n--- second\n%s", first.System, second.System)
	}
	for _, want := range []string{"- Time: 2025-03-14 15:09:26 UTC (Friday)\n", "- likes tea", "asked \"hello\""} {
		if !strings.Contains(first.Volatile, want) || strings.Contains(first.System, want) {
			t.Errorf("first turn: %q is not in Volatile alone:\nsystem %s\nvolatile %s", want, first.System, first.Volatile)
		}
	}
	for _, want := range []string{"- Time: 2025-03-15 17:09:43 UTC (Saturday)\n", "- likes coffee now", "asked \"read big.txt\""} {
		if !strings.Contains(second.Volatile, want) {
			t.Errorf("second turn: Volatile lacks %q:\n%s", want, second.Volatile)
		}
	}
}
