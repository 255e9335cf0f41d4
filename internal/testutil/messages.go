package testutil

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Contents is each message's Content, in order.
func Contents(msgs []core.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Content
	}
	return out
}

// Short quotes ss with each string cut to 24 bytes, for a failure message.
func Short(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 24 {
			s = s[:24] + "…"
		}
		out[i] = s
	}
	return fmt.Sprintf("%q", out)
}

// EqualMsgs fails t, saying what and both lists' contents, unless got and
// want are equal (both empty counts as equal, nil or not).
func EqualMsgs(t testing.TB, what string, got, want []core.Message) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %d %s\nwant %d %s", what, len(got), Short(Contents(got)), len(want), Short(Contents(want)))
	}
}

// CheckWriters verifies that msgs holds exactly count messages
// "<prefix>-0" ... "<prefix>-<count-1>" from each writer, in order per
// writer, and nothing else: what concurrent appenders must leave.
func CheckWriters(t testing.TB, msgs []core.Message, prefixes []string, count int) {
	t.Helper()
	next := map[string]int{}
	for _, p := range prefixes {
		next[p] = 0
	}
	for i, m := range msgs {
		p, num, ok := strings.Cut(m.Content, "-")
		n, err := strconv.Atoi(num)
		want, known := next[p]
		if !ok || err != nil || !known || n != want {
			t.Fatalf("message %d is %q; writer %q expected its message %d next", i, m.Content, p, want)
		}
		next[p]++
	}
	for _, p := range prefixes {
		if next[p] != count {
			t.Errorf("writer %q: %d messages, want %d", p, next[p], count)
		}
	}
}

// UserMsg and AsstMsg build messages whose content identifies them.
func UserMsg(content string, ts int64) core.Message {
	return core.Message{Role: core.RoleUser, Content: content, Timestamp: ts}
}

func AsstMsg(content string, ts int64) core.Message {
	return core.Message{Role: core.RoleAssistant, Content: content, Timestamp: ts}
}

// Numbered returns n user messages "<prefix>-0" ... with timestamps 1000+i.
func Numbered(prefix string, n int) []core.Message {
	out := make([]core.Message, n)
	for i := range out {
		out[i] = UserMsg(fmt.Sprintf("%s-%d", prefix, i), int64(1000+i))
	}
	return out
}
