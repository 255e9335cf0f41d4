package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/core"
)

// keepTurns is how many of the latest turns keep their tool outputs whole
// when older ones are elided: the current turn and the one before it.
const keepTurns = 2

// summaryLead introduces the summary in the model's view. The model reads
// it as the first user message of the conversation.
const summaryLead = "[miniclaw] Summary of the earlier conversation (the transcript keeps it whole; this summary stands for it here):\n\n"

// newTurn prepares a turn of session from its history (see Run).
func (r *Runtime) newTurn(session string, history []core.Message, ev Events) *turn {
	t := &turn{r: r, ev: ev, id: session, hist: history, window: r.Sizes.Window(r.ContextWindow)}
	if len(history) > 0 && history[0].Role == core.RoleSummary {
		t.summary, t.from = history[0].Content, 1
	}
	return t
}

// convo is what the model sees of the conversation: the summary, the
// history after it, and this turn's rounds.
func (t *turn) convo() []core.Message {
	var out []core.Message
	if t.summary != "" {
		out = append(out, core.Message{Role: core.RoleUser, Content: summaryLead + t.summary})
	}
	out = append(out, modelHistory(t.hist[t.from:])...)
	return append(out, t.rounds...)
}

// limit is the largest prompt, in tokens, that leaves room for the reply.
func (t *turn) limit() int64 {
	return max(t.window-t.r.ReplyTokens, t.window/2)
}

// tokens is the calibrated size of req.
func (t *turn) tokens(req core.Request) int64 {
	return t.r.Sizes.Tokens(t.id, budget.Estimate(req))
}

// fits reports whether req fits the window (always, without one).
func (t *turn) fits(req core.Request) bool {
	return t.window <= 0 || t.tokens(req) <= t.limit()
}

// elided is convo with the tool outputs of all but its last keep turns (user
// messages, counted from the end) cut to a head and a tail; with keep 0,
// every output is.
func (t *turn) elided(keep int) []core.Message {
	msgs := t.convo()
	return elideTurns(msgs, userCount(msgs)-keep)
}

// elideTurns is msgs with the tool outputs of its first n turns (everything
// before its n+1st user message) cut to a head and a tail.
func elideTurns(msgs []core.Message, n int) []core.Message {
	if n <= 0 {
		return msgs
	}
	cut := 0
	for users := 0; cut < len(msgs); cut++ {
		if msgs[cut].Role == core.RoleUser {
			if users == n {
				break
			}
			users++
		}
	}
	return append(budget.Elide(msgs[:cut], budget.ElideKeep), msgs[cut:]...)
}

// userCount is how many user messages, turns, msgs holds.
func userCount(msgs []core.Message) int {
	n := 0
	for _, m := range msgs {
		if m.Role == core.RoleUser {
			n++
		}
	}
	return n
}

// fitElided sets req's messages to convo with old tool outputs elided and
// reports whether that fits. The turns elided stay those of the session's
// previous request as long as that fits, so each request's elided part is
// the previous request's, byte for byte, and a provider's prefix cache goes
// on hitting. Only when it does not fit does the boundary move, and then as
// far as it may, to all but the last keepTurns turns: what follows a moved
// boundary is written to the cache again, so a move that leaves one whole
// output after it costs the least, and the whole outputs of the turns to
// come have the room until the next move.
func (t *turn) fitElided(req *core.Request) bool {
	msgs := t.convo()
	most := userCount(msgs) - keepTurns
	if n := t.r.Sizes.Elided(t.id); n > 0 && n <= most {
		if req.Messages = elideTurns(msgs, n); t.fits(*req) {
			return true
		}
	}
	if req.Messages = elideTurns(msgs, most); !t.fits(*req) {
		return false
	}
	t.r.Sizes.SetElided(t.id, most)
	return true
}

// request builds the next model call with the given tools, fitted to the
// window: as it is if it fits; else with old tool outputs elided; else
// after a compaction of the older history; else with every tool output
// elided. What still does not fit is sent anyway, and the provider's
// refusal is handled by call.
func (t *turn) request(ctx context.Context, system string, tools []core.ToolSpec) core.Request {
	if t.r.MaxHistory > 0 && len(t.hist)-t.from >= t.r.MaxHistory {
		// A failure leaves the history as it is; the next turn tries again.
		t.compact(ctx, system, tools, true)
	}
	req := core.Request{Model: t.r.Model, System: system, Volatile: t.volatile, Messages: t.convo(), Tools: tools}
	if t.fits(req) || t.fitElided(&req) {
		return req
	}
	if _, err := t.compact(ctx, system, tools, false); err == nil && t.fitElided(&req) {
		return req
	}
	req.Messages = t.elided(0)
	return req
}

// call makes one model call fitted to the window, streaming its text to
// the turn's listener. When the provider refuses the prompt as too long,
// the turn recalibrates from what the provider said, compacts and retries
// once, unseen by the user; a second refusal ends the turn with an error
// that says what to do.
func (t *turn) call(ctx context.Context, system string, tools []core.ToolSpec) (core.Response, string, error) {
	for retried := false; ; retried = true {
		req := t.request(ctx, system, tools)
		var text strings.Builder
		resp, err := t.r.Provider.Complete(ctx, req, func(s string) {
			text.WriteString(s)
			if t.ev.OnText != nil {
				t.ev.OnText(s)
			}
		})
		t.usage.Add(resp.Usage)
		if err == nil {
			t.r.Sizes.Observe(t.id, budget.Estimate(req), resp.Usage.Prompt())
			return resp, text.String(), nil
		}
		if !errors.Is(err, core.ErrContextOverflow) || text.Len() > 0 || ctx.Err() != nil {
			return resp, text.String(), err
		}
		if retried {
			return resp, "", fmt.Errorf("%w, even after compacting it: send /compact, start a new session, or lower MINI_OPENCLAW_CONTEXT_WINDOW if it is larger than the model's window", err)
		}
		t.shrink(req, err)
	}
}

// shrink learns from a provider's refusal of req as too long: the prompt's
// real size recalibrates the estimate, and a window the provider named
// smaller than the configured one replaces it for this turn. When the
// budget would still let req through, it is set below req's estimate, so
// the retry sends less.
func (t *turn) shrink(req core.Request, err error) {
	var oe *core.OverflowError
	errors.As(err, &oe)
	if oe != nil && oe.Tokens > 0 {
		t.r.Sizes.Observe(t.id, budget.Estimate(req), oe.Tokens)
	}
	if oe != nil && oe.Limit > 0 && (t.window <= 0 || oe.Limit < t.window) {
		t.window = oe.Limit
		t.r.Sizes.LearnWindow(oe.Limit)
	}
	if t.window <= 0 || t.fits(req) {
		// What was refused would pass the budget as it stands: aim at
		// three quarters of it.
		t.window = t.tokens(req)*3/4 + t.r.ReplyTokens
	}
}

// seed calibrates a session the runtime has not seen since it started
// from the usage the transcript kept: the last assistant message's prompt
// size against the estimate of the conversation before it. A session
// already calibrated is left alone at once: the estimate of its whole
// history would be thrown away.
func (t *turn) seed(system string, tools []core.ToolSpec) {
	if t.window <= 0 || t.r.Sizes == nil || t.r.Sizes.Calibrated(t.id) {
		return
	}
	for k := len(t.hist) - 1; k >= t.from; k-- {
		u := t.hist[k].Usage
		if t.hist[k].Role != core.RoleAssistant || u == nil || u.Prompt() == 0 {
			continue
		}
		before := &turn{r: t.r, id: t.id, hist: t.hist[:k], from: t.from, summary: t.summary, window: t.window}
		req := core.Request{System: system, Volatile: t.volatile, Tools: tools, Messages: before.convo()}
		if !before.fits(req) {
			// That request was elided to fit; estimate what was sent.
			req.Messages = before.elided(keepTurns)
		}
		t.r.Sizes.Seed(t.id, budget.Estimate(req), u.Prompt())
		return
	}
}
