package chatclient

import "testing"

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 messages"}, {1, "1 message"}, {2, "2 messages"}} {
		if got := Count(c.n, "message"); got != c.want {
			t.Errorf("Count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	if got := CompactionLine(1, 900, 100); got != "Compacted: 1 earlier message summarised (900 → 100 tokens)" {
		t.Errorf("CompactionLine(1) = %q", got)
	}
}
