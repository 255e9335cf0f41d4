package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeTree creates files (relative path → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSkillsList(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	env := map[string]string{"MINI_OPENCLAW_WORKSPACE": ws}

	r := runCLI(t, cliTimeout, env, "skills", "list")
	if r.code != 0 || r.stdout != "no skills in "+filepath.Join(ws, ".openclaw", "skills")+"\n" {
		t.Errorf("no skills: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	writeTree(t, ws, map[string]string{
		".openclaw/skills/pdf/SKILL.md": "---\nname: pdf\ndescription: \"Fill PDF forms: fast\"\n---\n",
		".openclaw/skills/git/SKILL.md": "---\ndescription: >\n  Small,\n  focused commits\n---\n",
	})
	r = runCLI(t, cliTimeout, env, "skills", "list")
	want := "NAME  LOCATION                       DESCRIPTION             PROBLEM\n" +
		"git   .openclaw/skills/git/SKILL.md  Small, focused commits  -\n" +
		"pdf   .openclaw/skills/pdf/SKILL.md  Fill PDF forms: fast    -\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("skills list: exit %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}

	// A broken skill: listed with its problem, exit 1. The flag overrides
	// the environment.
	other := t.TempDir()
	writeTree(t, other, map[string]string{".openclaw/skills/broken/SKILL.md": "---\nname: [x\n---\n"})
	r = runCLI(t, cliTimeout, env, "skills", "list", "--workspace", other)
	if r.code != 1 || !strings.Contains(r.stdout, "broken  .openclaw/skills/broken/SKILL.md  -") ||
		!strings.Contains(r.stdout, "frontmatter") || !strings.Contains(r.stderr, "1 of 1 skills have a problem") {
		t.Errorf("broken skill: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	for _, args := range [][]string{{"skills"}, {"skills", "lst"}, {"skills", "list", "extra"}, {"skills", "list", "--bogus"}} {
		if r := runCLI(t, cliTimeout, env, args...); r.code != 2 {
			t.Errorf("miniclaw %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	r = runCLI(t, cliTimeout, env, "skills", "list", "--workspace", filepath.Join(ws, "missing"))
	if r.code != 1 || !strings.Contains(r.stderr, "--workspace") {
		t.Errorf("missing workspace: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestMemoryShowAndSearch(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"MINI_OPENCLAW_WORKSPACE": ws, "MINI_OPENCLAW_DATA_DIR": data}

	r := runCLI(t, cliTimeout, env, "memory", "show")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "no memory yet") {
		t.Errorf("memory show without memory: exit %d, stdout %q", r.code, r.stdout)
	}

	writeTree(t, ws, map[string]string{"MEMORY.md": "# Notes\n- The deploy script lives in ops/.\n"})
	writeTree(t, data, map[string]string{
		"memory/MEMORY.md":                "- prefers tea\n",
		"memory/daily-logs/2020-01-01.md": "- [10:00:00] asked \"deploy staging\"\n",
	})
	r = runCLI(t, cliTimeout, env, "memory", "show")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "### Long-term memory (MEMORY.md)\n# Notes\n") ||
		!strings.Contains(r.stdout, "### Long-term memory ("+filepath.Join(data, "memory", "MEMORY.md")+")\n- prefers tea\n") {
		t.Errorf("memory show: exit %d\n%s", r.code, r.stdout)
	}

	r = runCLI(t, cliTimeout, env, "memory", "search", "deploy", "staging")
	want := filepath.Join(data, "memory", "daily-logs", "2020-01-01.md") + ":1: - [10:00:00] asked \"deploy staging\"\n" +
		"MEMORY.md:2: - The deploy script lives in ops/.\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("memory search: exit %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	if r := runCLI(t, cliTimeout, env, "memory", "search", "deploy", "--limit", "1"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("--limit 1 after the query: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, cliTimeout, env, "memory", "search", "coffee"); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `no results for "coffee"`) {
		t.Errorf("no results: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"memory"}, {"memory", "search"}, {"memory", "show", "x"}, {"memory", "search", "a", "--limit", "0"}, {"memory", "forget"}} {
		if r := runCLI(t, cliTimeout, env, args...); r.code != 2 {
			t.Errorf("miniclaw %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"memory", "--help"}, {"memory", "search", "--help"}, {"skills", "help"}, {"skills", "list", "-h"}} {
		r := runCLI(t, cliTimeout, env, args...)
		if out := r.stdout + r.stderr; r.code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "-data-dir") {
			t.Errorf("miniclaw %s: exit %d, output %q", strings.Join(args, " "), r.code, out)
		}
	}
}

// The gateway binary wires the knowledge layer: skills are indexed at
// startup (a broken one is reported then), memory_write is a tool, every
// turn leaves a daily log line, and `miniclaw memory search` finds both.
func TestGatewayKnowledgeWiring(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, ".mini-openclaw")
	writeTree(t, ws, map[string]string{
		".openclaw/skills/pdf/SKILL.md":    "---\nname: pdf\ndescription: Fill PDF forms\n---\n",
		".openclaw/skills/broken/SKILL.md": "no frontmatter\n",
	})
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{{"name": "memory_write", "input": map[string]string{"fact": "The wifi password is on the fridge."}}}},
		{"text": "Noted."},
	})
	env := gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_SCRIPT": script})
	g := startGateway(t, "gateway", env)
	log := g.stderr.String()
	if !strings.Contains(log, "skills=2") || !strings.Contains(log, "file="+filepath.Join(ws, ".openclaw", "skills", "broken", "SKILL.md")) {
		t.Errorf("startup log lacks the skills count or the broken skill:\n%s", log)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialSession(ctx, g.addr, "wiring")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.send(ctx, "remember where the wifi password is"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitDone(ctx); err != nil {
		t.Fatalf("turn failed: %v", err)
	}
	r := runCLI(t, cliTimeout, env, "memory", "search", "wifi", "password")
	if r.code != 0 || !strings.Contains(r.stdout, ".mini-openclaw/memory/MEMORY.md:1: - The wifi password is on the fridge.\n") ||
		!regexp.MustCompile(`\.mini-openclaw/memory/daily-logs/\d{4}-\d\d-\d\d\.md:1: - \[\d\d:\d\d:\d\d\] asked "remember where the wifi password is"; tools: memory_write\n`).MatchString(r.stdout) {
		t.Errorf("memory search after the turn: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
