// Package budget sizes model requests in tokens before they are sent: a
// cheap estimate from the request's bytes, calibrated per session by what
// the provider reported for the previous request, and the head-and-tail
// elision of long tool outputs that is the first thing tried when a request
// would not fit the model's context window. It knows nothing of providers
// or transcripts on disk; the agent loop decides what to do with a size.
package budget

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
)

// BytesPerToken is the estimate's rate: about four bytes of English text
// or code per token for the tokenizers of Claude and the common open
// models. It is only the starting point: Calibration corrects it from
// what the provider counted.
const BytesPerToken = 4

// overheadPerMessage stands for the few tokens each message, tool call and
// tool result costs beyond its text (role markers, block framing).
const overheadPerMessage = 8

// Estimate is the request's size in tokens before calibration: its system
// prompt and volatile context, tool specs (names, descriptions, JSON schemas) and every
// message's text, tool inputs and tool outputs, at BytesPerToken, plus a
// little framing per message and block.
func Estimate(req core.Request) int64 {
	n := int64(len(req.System) + len(req.Volatile))
	for _, s := range req.Tools {
		n += int64(len(s.Name)+len(s.Description)+len(s.InputSchema)) + overheadPerMessage*BytesPerToken
	}
	for _, m := range req.Messages {
		n += MessageBytes(m)
	}
	return (n + BytesPerToken - 1) / BytesPerToken
}

// MessageBytes is one message's share of Estimate, in bytes.
func MessageBytes(m core.Message) int64 {
	n := int64(len(m.Content)) + overheadPerMessage*BytesPerToken
	for _, tc := range m.ToolCalls {
		n += int64(len(tc.Name)+len(tc.ID)+len(tc.Input)+len(tc.Output)) + 2*overheadPerMessage*BytesPerToken
	}
	return n
}

// Ratios bound a calibration: a provider's count more than four times off
// the estimate (either way) is a misreport or a request unlike the one
// estimated, not a tokenizer, and is not trusted further than that.
const (
	minRatio = 0.25
	maxRatio = 4.0
	// uncalibrated is the ratio before any measure: the estimate is
	// trusted less (20% more tokens assumed) until the provider has
	// counted one request of the session.
	uncalibrated = 1.2
	// margin is kept over a calibrated estimate: the next request is not
	// the one measured (a file of another kind was read since).
	margin = 1.05
)

// Calibration holds, per session, the ratio of the tokens the provider
// counted to the estimate of the same request. It lives in memory only (a
// restart seeds it again from the transcript, see Seed), one float per
// session that ran a turn; and, per session whose requests were trimmed,
// how many turns they elide (Elided), which a restart forgets: the first
// request trimmed after it elides afresh. It is safe for concurrent use.
type Calibration struct {
	mu     sync.Mutex
	ratios map[string]float64
	window int64          // the smallest window a provider named in a refusal; 0 for none
	elided map[string]int // per session, the turns whose tool outputs its requests elide
}

// NewCalibration returns an empty calibration.
func NewCalibration() *Calibration {
	return &Calibration{ratios: map[string]float64{}, elided: map[string]int{}}
}

// Elided is how many turns, from the start of the session's conversation
// as the model sees it, have their tool outputs elided in the session's
// requests: 0 until SetElided. A nil Calibration keeps none.
func (c *Calibration) Elided(session string) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elided[session]
}

// SetElided records how many turns the session's requests elide, so the
// next request elides the same ones and its prefix stays byte-identical
// (see Elided). 0 forgets it, as after a compaction.
func (c *Calibration) SetElided(session string, turns int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if turns <= 0 {
		delete(c.elided, session)
		return
	}
	c.elided[session] = turns
}

// Tokens converts a raw Estimate into the tokens the session's provider is
// expected to count. A nil Calibration uses the uncalibrated ratio.
func (c *Calibration) Tokens(session string, estimate int64) int64 {
	r := uncalibrated
	if c != nil {
		c.mu.Lock()
		if v, ok := c.ratios[session]; ok {
			r = v * margin
		}
		c.mu.Unlock()
	}
	return int64(float64(estimate)*r + 0.5)
}

// LearnWindow records the window a provider named when it refused a
// prompt as too long (the configured one was larger than the model's), so
// later turns fit their requests to it instead of being refused again.
func (c *Calibration) LearnWindow(limit int64) {
	if c == nil || limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.window == 0 || limit < c.window {
		c.window = limit
	}
}

// Window is the window to fit requests to: the configured one, or the
// smaller one a provider named.
func (c *Calibration) Window(configured int64) int64 {
	if c == nil {
		return configured
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.window > 0 && (configured <= 0 || c.window < configured) {
		return c.window
	}
	return configured
}

// Observe records that a request estimated at estimate tokens was counted
// as actual by the provider. Zero counts (a provider that reports no usage)
// change nothing.
func (c *Calibration) Observe(session string, estimate, actual int64) {
	if c == nil || estimate <= 0 || actual <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ratios[session] = min(max(float64(actual)/float64(estimate), minRatio), maxRatio)
}

// Calibrated reports whether the session has a ratio (Observe or Seed ran
// for it), so a caller can skip the work of seeding it. A nil Calibration
// has none.
func (c *Calibration) Calibrated(session string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ratios[session]
	return ok
}

// Seed records a ratio as Observe does, but only when the session has none
// yet: after a restart, from the usage the transcript kept.
func (c *Calibration) Seed(session string, estimate, actual int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	_, ok := c.ratios[session]
	c.mu.Unlock()
	if !ok {
		c.Observe(session, estimate, actual)
	}
}

// ElideKeep is how much of a long tool output stays in the model's view
// when it is elided: its first and last ElideKeep/2 bytes.
const ElideKeep = 2000

// Elide returns msgs with every tool output longer than keep bytes cut to
// its head and tail around a note that says what was left out. msgs itself
// is not changed (the transcript keeps the outputs whole); only messages
// that change are copied.
func Elide(msgs []core.Message, keep int) []core.Message {
	var out []core.Message
	for i, m := range msgs {
		var recs []core.ToolCallRecord
		for j, tc := range m.ToolCalls {
			if len(tc.Output) <= keep || len(tc.Output) <= keep+len(note(tc.Name, tc.Output)) {
				continue
			}
			if recs == nil {
				recs = append([]core.ToolCallRecord(nil), m.ToolCalls...)
			}
			recs[j].Output = elideOutput(tc.Name, tc.Output, keep)
		}
		if recs == nil {
			continue
		}
		if out == nil {
			out = append([]core.Message(nil), msgs...)
		}
		out[i].ToolCalls = recs
	}
	if out == nil {
		return msgs
	}
	return out
}

// note is what stands for the elided middle of a tool's output.
func note(tool, output string) string {
	return fmt.Sprintf("\n[%s output: %s characters, elided from the model's view; the transcript keeps it whole]\n", tool, thousands(utf8.RuneCountInString(output)))
}

func elideOutput(tool, output string, keep int) string {
	head, tail := keep/2, keep-keep/2
	// Cut on rune boundaries so the view stays valid UTF-8.
	for head > 0 && !utf8.RuneStart(output[head]) {
		head--
	}
	start := len(output) - tail
	for start < len(output) && !utf8.RuneStart(output[start]) {
		start++
	}
	return output[:head] + note(tool, output) + output[start:]
}

// thousands formats n with commas: 100830 → "100,830".
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
