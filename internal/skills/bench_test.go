package skills

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchSkills writes n skills with realistic frontmatter and bodies.
func benchSkills(b *testing.B, n int) (dir, ws string) {
	b.Helper()
	ws = b.TempDir()
	dir = filepath.Join(ws, ".openclaw", "skills")
	for i := range n {
		name := fmt.Sprintf("skill-%03d", i)
		content := fmt.Sprintf("---\nname: %s\ndescription: >\n  Use this skill when the user asks about topic %d: it explains\n  the steps, the tools to call and the pitfalls.\nlicense: MIT\n---\n# %s\n\n%s", name, i, name, strings.Repeat("Step by step instructions.\n", 80))
		p := filepath.Join(dir, name, FileName)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir, ws
}

// BenchmarkIndexCold: a fresh index of 500 skills (every file read and
// parsed), as at gateway start.
func BenchmarkIndexCold(b *testing.B) {
	dir, ws := benchSkills(b, 500)
	for b.Loop() {
		if New(dir, ws, nil).SkillsSection() == "" {
			b.Fatal("empty section")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/index")
}

// BenchmarkIndexWarm: the per-turn cost of an up-to-date index of 500
// skills (one stat per skill, nothing read or rendered).
func BenchmarkIndexWarm(b *testing.B) {
	dir, ws := benchSkills(b, 500)
	x := New(dir, ws, nil)
	x.SkillsSection()
	for b.Loop() {
		x.SkillsSection()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/turn")
}
