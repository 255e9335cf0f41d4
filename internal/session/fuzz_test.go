package session

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// FuzzLoadTranscript feeds arbitrary bytes as a transcript. Reads must not
// panic and must agree with each other, and an append must repair a torn
// tail without touching any complete line, corrupt or not.
func FuzzLoadTranscript(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "fz.jsonl")
		writeFile(t, path, data)
		s := openStore(t, dir, Options{Now: fixedClock(t0)})
		meta, err := s.Get("fz")
		if err != nil {
			t.Fatal(err)
		}
		msgs, corrupt, err := s.Load("fz")
		if err != nil {
			t.Fatal(err)
		}
		lines := len(msgs) + len(corrupt)
		if meta.MessageCount != lines || meta.Size != int64(len(data)) {
			t.Fatalf("meta %+v; Load found %d lines in %d bytes", meta, lines, len(data))
		}
		badAt := map[int64]LineError{}
		for i, c := range corrupt {
			if c.Line < 1 || c.Line > lines || i > 0 && (c.Line <= corrupt[i-1].Line || c.Offset <= corrupt[i-1].Offset) {
				t.Fatalf("corrupt lines out of order or range: %v", corrupt)
			}
			badAt[c.Offset] = c
		}

		checkTailAgainstLoad(t, s, "fz", 5, msgs, corrupt)
		p, err := s.Page("fz", -1, 3)
		if err != nil || p.Total != lines || p.Offset != max(0, lines-3) || len(p.Messages)+len(p.Corrupt) != min(3, lines) {
			t.Fatalf("Page(-1, 3) = offset %d total %d, %d+%d lines, err %v; %d lines", p.Offset, p.Total, len(p.Messages), len(p.Corrupt), err, lines)
		}

		next := testutil.UserMsg("appended after fuzz", 7)
		after, err := s.Append("fz", next)
		if err != nil {
			t.Fatal(err)
		}
		good := data[:bytes.LastIndexByte(data, '\n')+1]
		torn := data[len(good):]
		got := readFile(t, path)
		if want := string(good) + string(line(t, next)); string(got) != want {
			t.Fatalf("after append the file is\n%q\nwant\n%q", got, want)
		}
		if len(torn) > 0 {
			if frag := readFile(t, path+".torn"); string(frag) != string(torn)+"\n" {
				t.Fatalf(".torn = %q, want %q", frag, string(torn)+"\n")
			}
		} else if exists(path + ".torn") {
			t.Fatal(".torn written without a torn tail")
		}
		if after.MessageCount != lines+1 || after.Size != int64(len(got)) {
			t.Fatalf("meta after append %+v; %d lines, %d bytes", after, lines+1, len(got))
		}
		// Every line decodes except the ones that were corrupt before.
		var off int64
		for _, l := range bytes.SplitAfter(got, []byte{'\n'}) {
			body := bytes.TrimRight(l, "\r\n")
			if _, err := DecodeLine(body); err != nil && len(bytes.TrimSpace(body)) > 0 {
				if _, ok := badAt[off]; !ok {
					t.Fatalf("line at byte %d %q does not decode: %v", off, body, err)
				}
			}
			off += int64(len(l))
		}
		msgs2, corrupt2, err := s.Load("fz")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(corrupt2, corrupt) && len(corrupt)+len(corrupt2) > 0 {
			t.Fatalf("corrupt lines changed by the append: %v -> %v", corrupt, corrupt2)
		}
		if len(msgs2) != len(msgs)+1 || !reflect.DeepEqual(msgs2[len(msgs)], next) ||
			len(msgs) > 0 && !reflect.DeepEqual(msgs2[:len(msgs)], msgs) {
			t.Fatalf("messages after append %q, before %q", testutil.Contents(msgs2), testutil.Contents(msgs))
		}
	})
}

// checkTailAgainstLoad checks that Tail(n) returns the last n lines that
// Load found, the good ones as messages and the bad ones as errors.
func checkTailAgainstLoad(t testing.TB, s *Store, id string, n int, msgs []core.Message, corrupt []LineError) {
	t.Helper()
	tail, tailBad, err := s.Tail(id, n)
	if err != nil {
		t.Fatal(err)
	}
	lines := len(msgs) + len(corrupt)
	if len(tail)+len(tailBad) != min(n, lines) {
		t.Fatalf("Tail(%d) gave %d messages and %d corrupt lines of %d", n, len(tail), len(tailBad), lines)
	}
	if len(tail) > len(msgs) || !reflect.DeepEqual(tail, msgs[len(msgs)-len(tail):]) && len(tail) > 0 {
		t.Fatalf("Tail(%d) is not the end of Load:\ntail %s\nload %s", n, testutil.Short(testutil.Contents(tail)), testutil.Short(testutil.Contents(msgs)))
	}
	if len(tailBad) > len(corrupt) || len(tailBad) > 0 && !reflect.DeepEqual(stripLines(tailBad), stripLines(corrupt[len(corrupt)-len(tailBad):])) {
		t.Fatalf("Tail(%d)'s corrupt lines %v are not the end of Load's %v", n, tailBad, corrupt)
	}
}

// stripLines drops line numbers, which Tail cannot know.
func stripLines(les []LineError) []LineError {
	out := append([]LineError(nil), les...)
	for i := range out {
		out[i].Line = 0
	}
	return out
}
