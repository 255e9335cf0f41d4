package scripted

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

func userReq(text string, tools bool) core.Request {
	r := core.Request{Messages: []core.Message{{Role: core.RoleUser, Content: text}}}
	if tools {
		r.Tools = []core.ToolSpec{{Name: "bash"}}
	}
	return r
}

// TestEchoStreamsWordByWord: the reply to X is exactly "echo: X", in
// chunks of one word and its trailing space, which concatenate back.
func TestEchoStreamsWordByWord(t *testing.T) {
	var chunks []string
	resp, err := Echo().Complete(context.Background(), userReq("hello  big\nworld", true), func(s string) { chunks = append(chunks, s) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"echo: ", "hello  ", "big\n", "world"}
	if strings.Join(chunks, "|") != strings.Join(want, "|") || resp.Text != "echo: hello  big\nworld" || resp.StopReason != "end_turn" || len(resp.ToolCalls) != 0 {
		t.Fatalf("chunks %q, resp %+v", chunks, resp)
	}
}

// TestScriptPlaysTurnsInOrderAndCycles: one turn per model call, tool
// calls with fresh IDs, and no tool calls on a call offered no tools (the
// loop's last round).
func TestScriptPlaysTurnsInOrderAndCycles(t *testing.T) {
	turns, err := Parse([]byte(`[{"text":"one","toolCalls":[{"name":"bash","input":{"command":"ls"}},{"name":"list_files"}]},{"text":"two"}]`))
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{turns: turns}
	var got []string
	for _, tools := range []bool{true, true, true, false} {
		resp, err := p.Complete(context.Background(), userReq("x", tools), func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		for _, c := range resp.ToolCalls {
			calls = append(calls, c.ID+":"+c.Name+string(c.Input))
		}
		got = append(got, resp.Text+" "+resp.StopReason+" "+strings.Join(calls, ","))
	}
	want := []string{
		`one tool_use call_1:bash{"command":"ls"},call_2:list_files{}`,
		"two end_turn ",
		`one tool_use call_3:bash{"command":"ls"},call_4:list_files{}`,
		"two end_turn ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestChunkDelayHonoursCancel: a slow scripted stream stops at once when
// the turn is cancelled, with the cancel cause.
func TestChunkDelayHonoursCancel(t *testing.T) {
	turns, err := Parse([]byte(`[{"text":"a b c d e f","chunkDelayMs":60000}]`))
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("stopped by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	var chunks []string
	go func() { time.Sleep(50 * time.Millisecond); cancel(cause) }()
	start := time.Now()
	_, err = (&Provider{turns: turns}).Complete(ctx, userReq("x", false), func(s string) { chunks = append(chunks, s) })
	if !errors.Is(err, cause) || len(chunks) != 1 || time.Since(start) > 30*time.Second {
		t.Fatalf("err %v, chunks %q", err, chunks)
	}
}

// TestParseErrorsNameTheProblem: a bad script is refused with the turn and
// field that are wrong.
func TestParseErrorsNameTheProblem(t *testing.T) {
	for script, want := range map[string]string{
		``:                                 "not a JSON array of turns",
		`{"text":"x"}`:                     "not a JSON array of turns",
		`[]`:                               "the script has no turns",
		`[{"text":"x"},{}]`:                "turn 1: needs text or toolCalls",
		`[{"txt":"x"}]`:                    `unknown field "txt"`,
		`[{"text":"x","chunkDelayMs":-1}]`: "turn 0: chunkDelayMs -1 is outside 0-60000",
		`[{"toolCalls":[{"input":{}}]}]`:   "turn 0: toolCalls[0]: name is required",
		`[{"toolCalls":[{"name":"bash","input":[1]}]}]`: "turn 0: toolCalls[0]: input must be a JSON object",
	} {
		_, err := Parse([]byte(script))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", script, err, want)
		}
	}
}

// FuzzParse: any bytes are refused with an error or give turns the
// provider can play: each with text or tool calls, each call named, with
// an object as input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"text":"hi","toolCalls":[{"name":"bash","input":{"command":"ls"}}],"chunkDelayMs":5}]`))
	f.Add([]byte(`[{"toolCalls":[{"name":"x","input":null}]}]`))
	f.Add([]byte(`[{"text":""}]`))
	f.Add([]byte(`[{"text":"a"}] trailing`))
	f.Fuzz(func(t *testing.T, b []byte) {
		turns, err := Parse(b)
		if err != nil {
			return
		}
		for i, tn := range turns {
			if tn.Text == "" && len(tn.ToolCalls) == 0 {
				t.Fatalf("turn %d is empty", i)
			}
			for _, c := range tn.ToolCalls {
				var obj map[string]any
				if c.Name == "" || json.Unmarshal(c.Input, &obj) != nil || obj == nil {
					t.Fatalf("turn %d: call %+v (input %s) is not playable", i, c, c.Input)
				}
			}
		}
	})
}

// A long reply costs in proportion to its length: the reply text is not
// rebuilt on each chunk.
func TestLongReplyIsLinear(t *testing.T) {
	pt.WantLinear(t, completeLong)
}

// completeLong plays a scripted reply of n one-word chunks and checks it.
func completeLong(t testing.TB, n int) {
	pt.CompleteLong(t, &Provider{turns: []Turn{{Text: strings.Repeat("x ", n)}}}, userReq("go", false), n)
}

func BenchmarkLongReply(b *testing.B) {
	pt.BenchLongReply(b, completeLong)
}
