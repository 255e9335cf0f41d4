package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// sortedDurations returns a sorted copy.
func sortedDurations(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// pct is the nearest-rank percentile p (0-100] of sorted samples.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median(d []time.Duration) time.Duration { return pct(sortedDurations(d), 50) }

// ms formats a duration in milliseconds with sensible precision.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 1:
		return fmt.Sprintf("%.3f ms", f)
	case f < 100:
		return fmt.Sprintf("%.2f ms", f)
	default:
		return fmt.Sprintf("%.0f ms", f)
	}
}

// mib formats KiB as MiB.
func mib(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }

// thousands formats n with thin separators for readability.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	out := []byte{}
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}
