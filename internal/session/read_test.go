package session

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// sizedMsgs returns n messages whose transcript lines are about size bytes.
func sizedMsgs(n, size int) []core.Message {
	out := make([]core.Message, n)
	for i := range out {
		head := fmt.Sprintf("m%d:", i)
		out[i] = testutil.UserMsg(head+strings.Repeat("x", max(0, size-len(head)-50)), int64(i+1))
	}
	return out
}

func TestTail(t *testing.T) {
	torn := []byte(`{"role":"user","content":"never acknowledged`)
	longTorn := []byte(`{"role":"user","content":"` + strings.Repeat("t", 70<<10))
	cases := []struct {
		name string
		msgs []core.Message
		torn []byte
	}{
		{"short lines torn tail", sizedMsgs(10, 100), torn},
		{"long lines torn tail", sizedMsgs(6, 40<<10), torn},
		{"long lines long torn tail", sizedMsgs(6, 40<<10), longTorn},
		{"lines of one block", sizedMsgs(5, tailBlock), nil},
		{"lines of many blocks", sizedMsgs(3, 3*tailBlock+7), torn},
		{"single line", sizedMsgs(1, 10), torn},
		{"only torn", nil, longTorn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newStore(t)
			mustCreate(t, s, "t", "webchat")
			if len(tc.msgs) > 0 {
				mustAppend(t, s, "t", tc.msgs...)
			}
			if tc.torn != nil {
				appendFile(t, filepath.Join(dir, "t.jsonl"), tc.torn)
			}
			total := len(tc.msgs)
			for _, n := range []int{-1, 0, 1, 2, total - 1, total, total + 1, 100} {
				got, corrupt, err := s.Tail("t", n)
				if err != nil || len(corrupt) != 0 {
					t.Fatalf("Tail(%d): err %v, corrupt %v", n, err, corrupt)
				}
				want := tc.msgs[total-min(max(n, 0), total):]
				testutil.EqualMsgs(t, fmt.Sprintf("Tail(%d)", n), got, want)
			}
		})
	}
}

// Tail reads from the end: a corrupt line before the last n is not even
// looked at, and blank lines do not count as messages.
func TestTailReadsFromTheEnd(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "e", "webchat")
	path := filepath.Join(dir, "e.jsonl")
	appendFile(t, path, []byte(strings.Repeat("#", 1<<20)+"\n"))
	msgs := sizedMsgs(4, 40<<10)
	mustAppend(t, s, "e", msgs...)
	got, corrupt, err := s.Tail("e", 3)
	if err != nil || len(corrupt) != 0 {
		t.Fatalf("Tail: err %v, corrupt %v", err, corrupt)
	}
	testutil.EqualMsgs(t, "Tail(3)", got, msgs[1:])

	// Blank lines (hand edits) are skipped by Load, so Tail must look past
	// them for its n messages.
	appendFile(t, path, []byte("\n\n  \n\r\n"))
	for n := 1; n <= 4; n++ {
		got, _, err := s.Tail("e", n)
		if err != nil {
			t.Fatal(err)
		}
		testutil.EqualMsgs(t, fmt.Sprintf("Tail(%d) after blank lines", n), got, msgs[4-n:])
	}
	// More blank lines than one block holds, then a message, then more.
	appendFile(t, path, []byte(strings.Repeat("\n", 3*tailBlock)))
	last := testutil.UserMsg("last", 99)
	mustAppend(t, s, "e", last)
	appendFile(t, path, []byte(strings.Repeat(" \n", tailBlock)))
	want := append(append([]core.Message(nil), msgs...), last)
	for n := 1; n <= 6; n++ {
		got, _, err := s.Tail("e", n)
		if err != nil {
			t.Fatal(err)
		}
		testutil.EqualMsgs(t, fmt.Sprintf("Tail(%d) among many blank lines", n), got, want[max(0, 5-n):])
	}
}

// TestTailMatchesLoadRandom is the fuzz property on transcripts larger than
// the fuzzer makes: long, blank, CRLF, corrupt lines and torn tails around
// the tail block boundaries.
func TestTailMatchesLoadRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { tailMatchesLoadRound(t, rng) })
	}
}

func tailMatchesLoadRound(t *testing.T, rng *rand.Rand) {
	var data []byte
	for i := range rng.IntN(30) {
		var l []byte
		switch rng.IntN(6) {
		case 0:
			l = []byte(strings.Repeat("\n", rng.IntN(3*tailBlock/2)))
		case 1:
			l = []byte("garbage " + strings.Repeat("g", rng.IntN(2*tailBlock)) + "\n")
		case 2:
			l = line(t, testutil.UserMsg(strings.Repeat("c", rng.IntN(tailBlock)), int64(i)))
			l = append(l[:len(l)-1], '\r', '\n')
		default:
			l = line(t, testutil.AsstMsg(fmt.Sprint(i, strings.Repeat("x", rng.IntN(2*tailBlock))), int64(i)))
		}
		data = append(data, l...)
	}
	if rng.IntN(2) == 0 {
		data = append(data, strings.Repeat("t", rng.IntN(2*tailBlock))...)
	}
	s, dir := newStore(t)
	writeFile(t, filepath.Join(dir, "r.jsonl"), data)
	msgs, corrupt, err := s.Load("r")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 5, 8, 13, 40} {
		checkTailAgainstLoad(t, s, "r", n, msgs, corrupt)
	}
}

// corruptTranscript is a hand-made transcript with bad lines among good ones.
func corruptTranscript(t *testing.T) (data []byte, good []core.Message, bad []LineError) {
	g := testutil.Numbered("g", 4)
	parts := [][]byte{
		line(t, g[0]),
		line(t, g[1]),
		[]byte("not json at all\n"),
		line(t, g[2]),
		[]byte(`{"role":"bogus","content":"x","timestamp":1}` + "\n"),
		[]byte(`{"content":"no role","timestamp":1}` + "\n"),
		[]byte(`{"role":"user","timestamp":"soon"}` + "\n"),
		line(t, g[3]),
		[]byte(`{"role":"user","content":"torn`), // never acknowledged: not an error
	}
	var off []int64
	for _, p := range parts {
		off = append(off, int64(len(data)))
		data = append(data, p...)
	}
	bad = []LineError{
		{Line: 3, Offset: off[2], Err: "invalid character"},
		{Line: 5, Offset: off[4], Err: `unknown role "bogus"`},
		{Line: 6, Offset: off[5], Err: `missing "role"`},
		{Line: 7, Offset: off[6], Err: "cannot unmarshal string"},
	}
	return data, g, bad
}

func checkLineErrors(t *testing.T, what string, got, want []LineError) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: corrupt = %v, want %v", what, got, want)
	}
	for i := range want {
		if got[i].Line != want[i].Line || got[i].Offset != want[i].Offset || !strings.Contains(got[i].Err, want[i].Err) {
			t.Errorf("%s: corrupt[%d] = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func TestCorruptLines(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "c", "webchat")
	data, good, bad := corruptTranscript(t)
	writeFile(t, filepath.Join(dir, "c.jsonl"), data)

	msgs, corrupt, err := s.Load("c")
	if err != nil {
		t.Fatal(err)
	}
	testutil.EqualMsgs(t, "Load", msgs, good)
	checkLineErrors(t, "Load", corrupt, bad)
	if got := corrupt[0].String(); !strings.HasPrefix(got, fmt.Sprintf("line 3 (byte %d): invalid character", bad[0].Offset)) {
		t.Errorf("LineError.String() = %q", got)
	}

	// From the end there are no line numbers, only byte offsets.
	fromEnd := func(les []LineError) []LineError {
		out := append([]LineError(nil), les...)
		for i := range out {
			out[i].Line = 0
		}
		return out
	}
	msgs, corrupt, err = s.Tail("c", 100)
	if err != nil {
		t.Fatal(err)
	}
	testutil.EqualMsgs(t, "Tail(100)", msgs, good)
	checkLineErrors(t, "Tail(100)", corrupt, fromEnd(bad))
	if got := corrupt[0].String(); !strings.HasPrefix(got, fmt.Sprintf("byte %d: ", bad[0].Offset)) {
		t.Errorf("LineError.String() from the end = %q", got)
	}
	msgs, corrupt, err = s.Tail("c", 3) // lines 6, 7, 8
	if err != nil {
		t.Fatal(err)
	}
	testutil.EqualMsgs(t, "Tail(3)", msgs, good[3:])
	checkLineErrors(t, "Tail(3)", corrupt, fromEnd(bad[2:]))

	p, err := s.Page("c", 1, 4) // lines 2-5
	if err != nil {
		t.Fatal(err)
	}
	testutil.EqualMsgs(t, "Page(1, 4)", p.Messages, good[1:3])
	checkLineErrors(t, "Page(1, 4)", p.Corrupt, bad[:2])
	if p.Total != 8 {
		t.Errorf("Page total = %d, want 8", p.Total)
	}
	if m, _ := openStore(t, dir, Options{}).Get("c"); m.MessageCount != 8 {
		t.Errorf("MessageCount = %d, want 8 (every complete line)", m.MessageCount)
	}
}

func TestCRLFLines(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "crlf", "webchat")
	msgs := testutil.Numbered("w", 3)
	var data []byte
	for _, m := range msgs {
		l := line(t, m)
		data = append(append(data, l[:len(l)-1]...), '\r', '\n')
	}
	writeFile(t, filepath.Join(dir, "crlf.jsonl"), data)
	got, corrupt, err := s.Load("crlf")
	if err != nil || len(corrupt) != 0 {
		t.Fatalf("Load: %v %v", err, corrupt)
	}
	testutil.EqualMsgs(t, "Load", got, msgs)
	got, corrupt, err = s.Tail("crlf", 2)
	if err != nil || len(corrupt) != 0 {
		t.Fatalf("Tail: %v %v", err, corrupt)
	}
	testutil.EqualMsgs(t, "Tail(2)", got, msgs[1:])
}
