package agent

import (
	"fmt"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Notes history adds as user messages (not persisted): where the
// transcript lacks a reply, so that the model knows a message went
// unanswered instead of reading two requests as one, and for a blank
// message, whose text no API accepts.
const (
	noteNoReply    = "[miniclaw] The previous message got no reply: %s."
	noteBlankInput = "[miniclaw] The user sent a blank message."
)

// noReplyReason says why a reply is missing, from the reply left out (nil
// for none at all: the gateway stopped during the turn).
func noReplyReason(left *core.Message) string {
	if left == nil {
		return "the gateway stopped before answering it"
	}
	switch left.Status {
	case "":
		return "the reply was empty"
	case core.StatusAborted:
		return "the user aborted it"
	case core.StatusInterrupted:
		return "the gateway stopped before answering it"
	case core.StatusError:
		return "the model call failed"
	}
	return "the turn ended as " + left.Status
}

// modelHistory turns a transcript tail into what the model may see: system
// lines are dropped, and the history starts at a user message, as model
// APIs require. A reply without text or tool calls (core.Blank: a reply of
// "\n\n", or a failure before any text) is left out, as APIs refuse blank
// text, and so is a blank user message's text (a note stands for it).
//
// A user message that got no reply (its reply was left out, its turn failed
// after tool calls, or the gateway stopped before writing one) is followed
// by a note, in a user message of its own, saying so and why: the model
// then knows that the next message is a new one and not a continuation.
// The note is the user's side, so no words are put in the assistant's
// mouth and the roles still alternate once a provider joins consecutive
// user messages (Anthropic's does); each user message keeps its own text,
// so the last one is still exactly what started the turn. Tool records
// stay inside their assistant message, so no cut separates a tool_use from
// its result.
func modelHistory(history []core.Message) []core.Message {
	out := make([]core.Message, 0, len(history))
	var left *core.Message // the last reply left out since the last user message
	for _, m := range history {
		switch {
		case m.Role == core.RoleUser:
			if core.Blank(m.Content) {
				m.Content = noteBlankInput
			}
			if n := len(out); n > 0 && !answered(out[n-1]) {
				note := fmt.Sprintf(noteNoReply, noReplyReason(left))
				out = append(out, core.Message{Role: core.RoleUser, Content: note, Timestamp: m.Timestamp})
			}
			out = append(out, m)
			left = nil
		case m.Role == core.RoleAssistant && len(out) > 0:
			if core.Blank(m.Content) && len(m.ToolCalls) == 0 {
				left = &m
				continue
			}
			out = append(out, m)
		}
	}
	return out
}

// answered reports whether a user message that follows last follows a
// reply: an assistant message that did not end in tool calls. One that did
// was the last round of a turn that stopped before its reply.
func answered(last core.Message) bool {
	return last.Role == core.RoleAssistant && len(last.ToolCalls) == 0
}
