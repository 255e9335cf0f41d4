// Package core holds the few types every other part of miniclaw shares: the
// transcript Message, the tool call record, and the Provider interface a
// model backend implements. It depends on nothing else in the module, so the
// session store, the agent loop and the providers can all import it without
// knowing about each other.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Roles of a transcript message.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
	// RoleSummary marks a compaction record: the model's summary of the
	// transcript's first Covers lines, which later requests send instead of
	// them. It is additive: no line is removed, and readers that know only
	// user and assistant lines skip it.
	RoleSummary = "summary"
)

// Status values of an assistant message that did not complete normally. An
// empty Status means the turn finished.
const (
	StatusError       = "error"       // the provider or the runtime failed
	StatusAborted     = "aborted"     // the user aborted the turn
	StatusInterrupted = "interrupted" // the gateway shut down before the turn could finish
)

// Causes a turn's context is cancelled with, so the runtime can tell the
// user's abort from the gateway's shutdown.
var (
	ErrAborted     = errors.New("turn aborted by the user")
	ErrInterrupted = errors.New("turn interrupted: the gateway is shutting down")
	// ErrLeaseLost: the store can no longer vouch for the session's turn
	// (session.Lease.Lost), so another gateway may run one: the turn stops
	// and writes nothing more.
	ErrLeaseLost = errors.New("the database connection holding this session's turn was lost")
)

// ErrContextOverflow is what a provider's error matches (errors.Is) when
// the model refused the request for being longer than its context window.
// The agent loop compacts the conversation and retries once on it.
var ErrContextOverflow = errors.New("the prompt is over the model's context window")

// OverflowError is a provider's refusal of a prompt that is too long, with
// the sizes the provider reported (0 when it named none).
type OverflowError struct {
	Provider string // "anthropic", "openai"
	Tokens   int64  // the prompt's size as the provider counted it
	Limit    int64  // the model's window (or what the provider said was left of it)
	Detail   string // the provider's own message
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("%s: the conversation is too long for the model (%s)", e.Provider, e.Detail)
}

// Unwrap makes an OverflowError match ErrContextOverflow.
func (e *OverflowError) Unwrap() error { return ErrContextOverflow }

// Message is one line of a session transcript (<id>.jsonl). The first four
// fields are the seed's; Status and Error are additive and mark turns that did
// not finish, so a reader can tell a partial reply from a complete one.
type Message struct {
	Role      string           `json:"role"`
	Content   string           `json:"content"`
	Timestamp int64            `json:"timestamp"` // Unix milliseconds
	ToolCalls []ToolCallRecord `json:"toolCalls,omitempty"`
	Status    string           `json:"status,omitempty"`
	Error     string           `json:"error,omitempty"`
	// Usage is what the model call that produced an assistant message
	// consumed, as the provider reported it (additive; absent on older lines).
	Usage *Usage `json:"usage,omitempty"`
	// Covers, on a RoleSummary record, is how many transcript lines before
	// it (from the first) the summary stands for.
	Covers int `json:"covers,omitempty"`
}

// ToolCallRecord is a tool call the model made together with its result. It
// is kept whole in the transcript so history can be replayed to the model as
// real tool_use / tool_result pairs.
type ToolCallRecord struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Input   json.RawMessage `json:"input"`
	Output  string          `json:"output"`
	IsError bool            `json:"isError,omitempty"`
}

// Blank reports whether text shows nothing: it is empty or holds only
// whitespace and control characters. Model APIs refuse such text as a
// content block (Anthropic: "text content blocks must contain non-whitespace
// text"), so history never sends it; control characters count as blank
// because APIs differ on which of them are whitespace.
func Blank(text string) bool {
	return strings.IndexFunc(text, func(r rune) bool { return !unicode.IsSpace(r) && !unicode.IsControl(r) }) < 0
}

// ToolCall is a request from the model to run a tool, before it has run.
type ToolCall struct {
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// ToolSpec describes a tool to the model.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// Usage counts the tokens a model call consumed.
// InputTokens counts only the input read at full price: a prompt cache's
// reads and writes are counted apart, as Anthropic reports them.
type Usage struct {
	InputTokens      int64 `json:"inputTokens"`
	OutputTokens     int64 `json:"outputTokens"`
	CacheReadTokens  int64 `json:"cacheReadTokens,omitempty"`
	CacheWriteTokens int64 `json:"cacheWriteTokens,omitempty"`
}

// Add accumulates u2 into u.
func (u *Usage) Add(u2 Usage) {
	u.InputTokens += u2.InputTokens
	u.OutputTokens += u2.OutputTokens
	u.CacheReadTokens += u2.CacheReadTokens
	u.CacheWriteTokens += u2.CacheWriteTokens
}

// Prompt is the size of the request's whole input: full-price, cached and
// cache-written tokens.
func (u Usage) Prompt() int64 { return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens }

// Request is one call to a model: the system prompt, the conversation so far,
// and the tools the model may call (none on a last round).
type Request struct {
	Model string
	// System is the stable part of the system prompt: byte-identical on
	// every request of a session, so a provider's prompt cache can serve it
	// and the conversation after it.
	System string
	// Volatile is what changes from turn to turn (the time, memory).
	// Providers send it after Messages, as the last text of the last user
	// message, so that it never changes the cached prefix; it is not part
	// of the transcript.
	Volatile string
	Messages []Message
	Tools    []ToolSpec
}

// Response is what one model call produced once its stream ended.
type Response struct {
	Text       string
	ToolCalls  []ToolCall
	Usage      Usage
	StopReason string // "end_turn", "tool_use", "max_tokens", ...
}

// Provider is a model backend. Complete streams one model call: it must call
// onText with each piece of text as the backend yields it (never buffering
// the whole reply), and return when the stream ends or ctx is cancelled.
// Implementations must be safe for concurrent use by many sessions.
type Provider interface {
	Name() string
	Complete(ctx context.Context, req Request, onText func(string)) (Response, error)
}

// KeyChecker is a Provider that can check its API key with one cheap
// request (listing the models), so that a key the provider refuses is found
// when the gateway starts rather than on the first message.
type KeyChecker interface {
	// CheckKey returns nil when the API accepted the key, an error
	// matching ErrKeyRejected (with the API's message and the setting to
	// fix) when it refused it with 401 or 403, and any other error when it
	// could not tell (network, timeout, another status). The error never
	// holds the key.
	CheckKey(ctx context.Context) error
}

// ErrKeyRejected is what a CheckKey error matches when the provider refused
// the key.
var ErrKeyRejected = errors.New("the API key was refused")
