// Package protocol defines the WebSocket wire format between clients and the
// gateway: the seed's events field for field, plus the additive extensions the
// README lists. Client events are decoded strictly; every rejection carries a
// stable Code so clients can react without parsing messages.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Code is a stable, machine-readable error code sent in error events.
type Code string

// Error codes. They are part of the wire contract: never rename one.
const (
	CodeBadJSON      Code = "bad_json"       // the frame is not a JSON object
	CodeUnknownType  Code = "unknown_type"   // "type" names no known event
	CodeBadRequest   Code = "bad_request"    // a field is missing, mistyped, unknown or out of range
	CodeQueueFull    Code = "queue_full"     // too many messages waiting on the session
	CodeNotRunning   Code = "not_running"    // abort with no turn running
	CodeProvider     Code = "provider_error" // the model backend failed
	CodeAborted      Code = "aborted"        // the turn was aborted by a client
	CodeShuttingDown Code = "shutting_down"  // the gateway is stopping
	CodeNotFound     Code = "not_found"      // no session has that ID
	CodeConflict     Code = "conflict"       // the session is busy (archive during a turn)
	CodeUnauthorized Code = "unauthorized"   // missing or wrong token
	CodeForbidden    Code = "forbidden"      // a browser request from a foreign Origin
	CodeTooLarge     Code = "too_large"      // a request body over its limit
	CodeInternal     Code = "internal"       // a bug or an I/O failure on the server
)

// Client event types.
const (
	TypeMessage = "message"
	TypePing    = "ping"
	TypeAbort   = "abort"
	TypeCompact = "compact" // summarise the session's older messages now
)

// Server event types.
const (
	TypeConnected   = "connected"
	TypeChunk       = "chunk"
	TypeMessageDone = "message_done"
	TypeToolStart   = "tool_start"
	TypeToolDone    = "tool_done"
	TypeError       = "error"
	TypePong        = "pong"
	TypeStatus      = "status"
	TypeCompaction  = "compaction"
	// TypeToolProgress: a running tool said how far it got (an MCP
	// server's progress notification), at most a few per second per call.
	TypeToolProgress = "tool_progress"
	// TypeUserMessage: a user message's turn starts; sent to the session's
	// other clients (not to the connection that sent it, which shows its
	// own copy already).
	TypeUserMessage = "user_message"
	// TypeResync: events of the session may have been lost on their way
	// from another gateway (the relay between gateways broke or fell
	// behind); clients reload the session's history.
	TypeResync = "resync"
)

// States of a status event.
const (
	// StatusWaiting: the session's next turn waits for a turn of the same
	// session that another process (another gateway on the data dir) runs.
	StatusWaiting = "waiting"
	// StatusRunning: that wait is over and the turn runs.
	StatusRunning = "running"
)

// MaxSessionIDLen is the longest session ID accepted.
const MaxSessionIDLen = 128

// ClientEvent is a decoded client frame. Type is one of TypeMessage,
// TypePing, TypeAbort, TypeCompact; SessionID is "" when the client gave none.
type ClientEvent struct {
	Type      string
	SessionID string
	Content   string
}

// DecodeError is why a client frame was refused.
type DecodeError struct {
	Code    Code
	Message string
}

func (e *DecodeError) Error() string { return string(e.Code) + ": " + e.Message }

func badRequest(format string, args ...any) *DecodeError {
	return &DecodeError{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// fields each client event type may carry; anything else is refused.
var allowedFields = map[string]map[string]bool{
	TypeMessage: {"type": true, "sessionId": true, "content": true},
	TypePing:    {"type": true},
	TypeAbort:   {"type": true, "sessionId": true},
	TypeCompact: {"type": true, "sessionId": true},
}

// DecodeClientEvent parses one text frame. It accepts exactly one JSON object
// (see DecodeObject) whose fields have the documented types; unknown fields
// are refused so a typo ("sessionID") is reported instead of silently ignored.
func DecodeClientEvent(frame []byte) (ClientEvent, *DecodeError) {
	fields, derr := DecodeObject(frame, "frame")
	if derr != nil {
		return ClientEvent{}, derr
	}
	rawType, ok := fields["type"]
	if !ok {
		return ClientEvent{}, badRequest(`field "type" is required`)
	}
	var ev ClientEvent
	if !decodeString(rawType, &ev.Type) {
		return ClientEvent{}, badRequest(`field "type" must be a string`)
	}
	allowed, known := allowedFields[ev.Type]
	if !known {
		return ClientEvent{}, &DecodeError{Code: CodeUnknownType, Message: fmt.Sprintf("unknown event type %q (want message, ping, abort or compact)", ev.Type)}
	}
	for name := range fields {
		if !allowed[name] {
			article := "a"
			if ev.Type == TypeAbort {
				article = "an"
			}
			return ClientEvent{}, badRequest("field %q is not allowed on %s %s event", name, article, ev.Type)
		}
	}
	if raw, ok := fields["sessionId"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &ev.SessionID); err != nil {
			return ClientEvent{}, badRequest(`field "sessionId" must be a string`)
		}
		if err := ValidateSessionID(ev.SessionID); err != nil {
			return ClientEvent{}, badRequest("field \"sessionId\": %v", err)
		}
	}
	if ev.Type == TypeMessage {
		raw, ok := fields["content"]
		if !ok {
			return ClientEvent{}, badRequest(`field "content" is required on a message event`)
		}
		if !decodeString(raw, &ev.Content) {
			return ClientEvent{}, badRequest(`field "content" must be a string`)
		}
		if ev.Content == "" {
			return ClientEvent{}, badRequest(`field "content" must not be empty`)
		}
	}
	return ev, nil
}

// DecodeObject parses data, named what in errors ("frame", "request
// body"), as exactly one JSON object in valid UTF-8, and returns its members
// by their exact names. Unlike encoding/json it refuses a name given twice
// (which would silently keep the last value) with CodeBadRequest; anything
// that is not one object is CodeBadJSON.
func DecodeObject(data []byte, what string) (map[string]json.RawMessage, *DecodeError) {
	if !utf8.Valid(data) {
		return nil, &DecodeError{Code: CodeBadJSON, Message: what + " is not valid UTF-8"}
	}
	notObject := &DecodeError{Code: CodeBadJSON, Message: what + " is not a JSON object"}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	fields := map[string]json.RawMessage{}
	dup := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		name, _ := tok.(string) // an object's member name is always a string
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		if _, seen := fields[name]; seen && dup == "" {
			dup = name
		}
		fields[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, notObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Code: CodeBadJSON, Message: what + " holds more than one JSON value"}
	}
	if dup != "" {
		return nil, badRequest("field %q appears more than once", dup)
	}
	return fields, nil
}

// decodeString decodes a JSON string into dst. Unlike json.Unmarshal it
// refuses null, which would otherwise leave dst unchanged and pass for "".
func decodeString(raw json.RawMessage, dst *string) bool {
	return string(raw) != "null" && json.Unmarshal(raw, dst) == nil
}

// ValidateSessionID reports whether id can name a session: 1–128 characters
// of A-Za-z0-9._- not starting with '.'. IDs become file names, so nothing
// else is allowed.
func ValidateSessionID(id string) error { return validateName("session ID", id) }

// ValidateChannel reports whether ch can name a channel: the same rule as a
// session ID, since channels are shown in listings and terminals.
func ValidateChannel(ch string) error { return validateName("channel", ch) }

// validateName checks s, called what in errors, against the ID rule.
func validateName(what, s string) error {
	if s == "" {
		return errors.New(what + " is empty")
	}
	if len(s) > MaxSessionIDLen {
		return fmt.Errorf("%s is %d characters, the limit is %d", what, len(s), MaxSessionIDLen)
	}
	if s[0] == '.' {
		return errors.New(what + " must not start with '.'")
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s has %q at byte %d; only A-Za-z0-9._- are allowed", what, c, i)
		}
	}
	return nil
}

// Server events. Each has its own struct so required fields are always
// present on the wire (an empty reply still carries "content":"").

type Connected struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Resumed   bool   `json:"resumed"`
}

type Chunk struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
}

type MessageDone struct {
	Type       string      `json:"type"`
	SessionID  string      `json:"sessionId"`
	Content    string      `json:"content"`
	Usage      *core.Usage `json:"usage,omitempty"`
	StopReason string      `json:"stopReason,omitempty"`
	Context    *Context    `json:"context,omitempty"`
}

// Context is how full the model's context window was on the turn's last
// model call: Tokens of Window (both in tokens).
type Context struct {
	Tokens int64 `json:"tokens"`
	Window int64 `json:"window"`
}

// Compaction says that the session's older messages were summarised:
// CoveredMessages transcript lines are now represented by a summary, and
// the request shrank from TokensBefore to TokensAfter (estimates).
type Compaction struct {
	Type            string `json:"type"`
	SessionID       string `json:"sessionId"`
	CoveredMessages int    `json:"coveredMessages"`
	TokensBefore    int64  `json:"tokensBefore"`
	TokensAfter     int64  `json:"tokensAfter"`
}

type ToolStart struct {
	Type       string          `json:"type"`
	SessionID  string          `json:"sessionId"`
	ToolName   string          `json:"toolName"`
	ToolCallID string          `json:"toolCallId,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"`
}

type ToolDone struct {
	Type       string `json:"type"`
	SessionID  string `json:"sessionId"`
	ToolName   string `json:"toolName"`
	Output     string `json:"output"`
	ToolCallID string `json:"toolCallId,omitempty"`
	IsError    bool   `json:"isError,omitempty"`
}

// ToolProgress is how far the running tool call ToolCallID got: Progress
// out of Total (0: unknown), with an optional Message. Not persisted.
type ToolProgress struct {
	Type       string  `json:"type"`
	SessionID  string  `json:"sessionId"`
	ToolName   string  `json:"toolName"`
	ToolCallID string  `json:"toolCallId,omitempty"`
	Progress   float64 `json:"progress"`
	Total      float64 `json:"total,omitempty"`
	Message    string  `json:"message,omitempty"`
}

// UserMessage is the user message whose turn starts now, as persisted
// (Timestamp in Unix milliseconds, like the transcript's), and the channel
// it came from: webchat, cli (miniclaw chat) or openai (/v1/chat/completions).
type UserMessage struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
	Timestamp int64  `json:"timestamp"`
	Channel   string `json:"channel,omitempty"`
}

type Error struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Code      Code   `json:"code,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
}

// Resync tells a session's clients to reload its history: events of it may
// have been lost. Message is a sentence for people.
type Resync struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Message   string `json:"message"`
}

type Pong struct {
	Type string `json:"type"`
}

// Status tells a session's clients what its turn is doing when that is not
// evident from the stream: State is StatusWaiting or StatusRunning, Message
// a sentence for people. Clients may ignore it.
type Status struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	State     string `json:"state"`
	Message   string `json:"message"`
}

// Encode marshals a server event. Server events hold only strings, numbers
// and raw JSON that was validated on the way in, so a failure is a bug.
func Encode(ev any) []byte {
	b, err := core.MarshalJSON(ev)
	if err != nil {
		panic(fmt.Sprintf("protocol: encode %T: %v", ev, err))
	}
	return b
}
