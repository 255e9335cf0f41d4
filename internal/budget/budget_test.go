package budget

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
)

func TestElideKeepsHeadAndTailAndLeavesTheInputAlone(t *testing.T) {
	big := strings.Repeat("a", 50_000) + strings.Repeat("é", 25_000) + "END" // 100,003 bytes, 75,003 characters
	small := "short"
	msgs := []core.Message{
		{Role: core.RoleUser, Content: "read it"},
		{Role: core.RoleAssistant, ToolCalls: []core.ToolCallRecord{
			{ID: "t1", Name: "read_file", Input: json.RawMessage(`{"path":"big.txt"}`), Output: big},
			{ID: "t2", Name: "list_files", Input: json.RawMessage(`{}`), Output: small},
		}},
	}
	out := Elide(msgs, 2000)
	if msgs[1].ToolCalls[0].Output != big {
		t.Fatal("Elide changed its input")
	}
	got := out[1].ToolCalls[0].Output
	want := "\n[read_file output: 75,003 characters, elided from the model's view; the transcript keeps it whole]\n"
	if !strings.Contains(got, want) {
		t.Errorf("elided output lacks the note %q:\n%.300s", want, got)
	}
	if !strings.HasPrefix(got, strings.Repeat("a", 1000)) || !strings.HasSuffix(got, "éEND") {
		t.Errorf("head or tail lost: %.80q … %q", got, got[len(got)-40:])
	}
	if len(got) > 2000+len(want) || !utf8.ValidString(got) {
		t.Errorf("elided output is %d bytes (valid UTF-8: %v)", len(got), utf8.ValidString(got))
	}
	if out[1].ToolCalls[1].Output != small || out[1].ToolCalls[0].ID != "t1" || string(out[1].ToolCalls[0].Input) != `{"path":"big.txt"}` {
		t.Errorf("elision changed more than the long output: %+v", out[1].ToolCalls)
	}
	if same := Elide(msgs[:1], 2000); &same[0] != &msgs[0] {
		t.Error("a history with nothing to elide was copied")
	}
}

func TestEstimateCountsEveryPart(t *testing.T) {
	base := core.Request{System: "sys", Messages: []core.Message{{Role: core.RoleUser, Content: "hi"}}}
	e0 := Estimate(base)
	grow := []func(*core.Request){
		func(r *core.Request) { r.System += strings.Repeat("s", 400) },
		func(r *core.Request) { r.Volatile += strings.Repeat("v", 400) },
		func(r *core.Request) {
			r.Tools = []core.ToolSpec{{Name: "x", Description: strings.Repeat("d", 400), InputSchema: json.RawMessage(`{}`)}}
		},
		func(r *core.Request) {
			r.Messages = append(r.Messages, core.Message{Role: core.RoleAssistant, ToolCalls: []core.ToolCallRecord{{Name: "x", Input: json.RawMessage(`{"q":"` + strings.Repeat("i", 400) + `"}`)}}})
		},
		func(r *core.Request) {
			r.Messages = append(r.Messages, core.Message{Role: core.RoleAssistant, ToolCalls: []core.ToolCallRecord{{Name: "x", Output: strings.Repeat("o", 400)}}})
		},
	}
	for i, g := range grow {
		r := base
		r.Messages = append([]core.Message(nil), base.Messages...)
		g(&r)
		if got := Estimate(r); got < e0+100 {
			t.Errorf("change %d: estimate %d, want at least %d", i, got, e0+100)
		}
	}
}

func TestCalibrationConvergesOnTheProvidersCount(t *testing.T) {
	c := NewCalibration()
	if got := c.Tokens("s", 1000); got != 1200 {
		t.Errorf("uncalibrated: %d tokens, want 1200 (20%% over the estimate)", got)
	}
	c.Observe("s", 1000, 1500)
	if got := c.Tokens("s", 2000); got != 3150 {
		t.Errorf("calibrated at 1.5: %d tokens, want 3150 (1.5 and 5%% margin)", got)
	}
	if got := c.Tokens("other", 1000); got != 1200 {
		t.Errorf("another session: %d, want the uncalibrated 1200", got)
	}
	if !c.Calibrated("s") || c.Calibrated("other") {
		t.Errorf("Calibrated: s %v (observed), other %v (not)", c.Calibrated("s"), c.Calibrated("other"))
	}
	c.Seed("s", 1000, 3000)
	if got := c.Tokens("s", 2000); got != 3150 {
		t.Errorf("Seed replaced a measured ratio: %d", got)
	}
	c.Observe("s", 1000, 1_000_000)
	if got := c.Tokens("s", 1000); got != 4200 {
		t.Errorf("a wild count: %d, want the ratio capped at 4 (4200)", got)
	}
	var none *Calibration
	if got := none.Tokens("s", 1000); got != 1200 || none.Calibrated("s") {
		t.Errorf("nil calibration: %d tokens, calibrated %v", got, none.Calibrated("s"))
	}
}

// TestElidedIsKeptPerSession: the elided turns a session's requests use are
// remembered for that session only, until set to 0; a nil Calibration keeps
// none.
func TestElidedIsKeptPerSession(t *testing.T) {
	c := NewCalibration()
	c.SetElided("s", 6)
	if got, other := c.Elided("s"), c.Elided("other"); got != 6 || other != 0 {
		t.Errorf("elided: session s %d, another %d; want 6 and 0", got, other)
	}
	c.SetElided("s", 0)
	if got := c.Elided("s"); got != 0 {
		t.Errorf("after SetElided 0: %d, want 0", got)
	}
	var none *Calibration
	none.SetElided("s", 3)
	if got := none.Elided("s"); got != 0 {
		t.Errorf("nil calibration: %d, want 0", got)
	}
}
