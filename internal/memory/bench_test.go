package memory

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkSearchYear: memory_search over a year of daily logs (365
// files of 40 turns each, about 3.4 MB) and a MEMORY.md of 200 facts.
func BenchmarkSearchYear(b *testing.B) {
	s := newStore(b)
	words := []string{"deploy", "staging", "invoice", "tea", "kubernetes", "budget", "review", "lunch", "backup", "printer"}
	var mem strings.Builder
	for i := range 200 {
		fmt.Fprintf(&mem, "- fact %d about %s and %s\n", i, words[i%10], words[(i*7)%10])
	}
	writeFile(b, s.File(), mem.String())
	for d := range 365 {
		var log strings.Builder
		for i := range 40 {
			fmt.Fprintf(&log, "- [%02d:%02d:00] asked \"please check the %s of the %s for day %d\"; tools: bash, read_file×2\n",
				9+i/6, i%60, words[(d+i)%10], words[(d*3+i)%10], d)
		}
		writeFile(b, s.DayFile(day(-d)), log.String())
	}
	for b.Loop() {
		hits, err := s.Search("deploy staging budget", DefaultSearchLimit)
		if err != nil || len(hits) != DefaultSearchLimit {
			b.Fatalf("%d hits, %v", len(hits), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/search")
}
