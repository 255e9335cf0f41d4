// Package openclaw is the pure part of OpenClaw's gateway WebSocket protocol
// (version 4) as miniclaw speaks it at /openclaw: the frame shapes, the
// connect handshake's checks (protocol range, shared token, Ed25519 device
// signature) and the mapping between OpenClaw session keys and miniclaw
// session IDs. It does no I/O; internal/gateway runs the connections.
//
// Learned from OpenClaw's published protocol docs (docs/gateway/protocol/ in
// the openclaw npm package) and JSON schema (@openclaw/gateway-protocol).
package openclaw

import (
	"encoding/json"
	"fmt"
)

// Protocol is the only protocol version served.
const Protocol = 4

// Frame types.
const (
	TypeReq   = "req"
	TypeRes   = "res"
	TypeEvent = "event"
)

// Top-level error codes (ErrorShape.code).
const (
	CodeInvalidRequest = "INVALID_REQUEST"
	CodeUnavailable    = "UNAVAILABLE"
	CodeForbidden      = "FORBIDDEN"
	CodeNotPaired      = "NOT_PAIRED"
)

// Request is a client frame {type:"req", id, method, params}.
type Request struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// ErrorShape is the error of a failed response.
type ErrorShape struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details,omitempty"`
	Retryable bool           `json:"retryable,omitempty"`
}

func (e *ErrorShape) Error() string { return e.Code + ": " + e.Message }

// Errorf is an ErrorShape with a formatted message.
func Errorf(code, format string, args ...any) *ErrorShape {
	return &ErrorShape{Code: code, Message: fmt.Sprintf(format, args...)}
}

// detailed is an ErrorShape whose details carry a connect detail code (the
// ConnectErrorDetailCodes clients branch on) and, for device failures, the
// stable reason.
func detailed(code, detail, reason, msg string) *ErrorShape {
	d := map[string]any{"code": detail}
	if reason != "" {
		d["reason"] = reason
	}
	return &ErrorShape{Code: code, Message: msg, Details: d}
}

type response struct {
	Type    string      `json:"type"`
	ID      string      `json:"id"`
	OK      bool        `json:"ok"`
	Payload any         `json:"payload,omitempty"`
	Error   *ErrorShape `json:"error,omitempty"`
}

type event struct {
	Type    string `json:"type"`
	Event   string `json:"event"`
	Payload any    `json:"payload,omitempty"`
}

// OK encodes a successful response to request id.
func OK(id string, payload any) []byte {
	return encode(response{Type: TypeRes, ID: id, OK: true, Payload: payload})
}

// Fail encodes a failed response to request id.
func Fail(id string, err *ErrorShape) []byte {
	return encode(response{Type: TypeRes, ID: id, OK: false, Error: err})
}

// Event encodes an event frame.
func Event(name string, payload any) []byte {
	return encode(event{Type: TypeEvent, Event: name, Payload: payload})
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only plain data is encoded here
		panic(fmt.Sprintf("openclaw: encode %T: %v", v, err))
	}
	return b
}

// DecodeRequest parses a client frame, which must be a request with an id
// and a method.
func DecodeRequest(data []byte) (Request, *ErrorShape) {
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return Request{}, Errorf(CodeInvalidRequest, "frame is not a JSON object: %v", err)
	}
	switch {
	case r.Type != TypeReq:
		return r, Errorf(CodeInvalidRequest, "frame type %q: clients send only {\"type\":\"req\"} frames", r.Type)
	case r.ID == "":
		return r, Errorf(CodeInvalidRequest, "request has no id")
	case r.Method == "":
		return r, Errorf(CodeInvalidRequest, "request %s has no method", r.ID)
	}
	return r, nil
}

// Decode reads a request's params into v; missing params decode as {}.
func (r Request) Decode(v any) *ErrorShape {
	if len(r.Params) == 0 || string(r.Params) == "null" {
		return nil
	}
	if err := json.Unmarshal(r.Params, v); err != nil {
		return Errorf(CodeInvalidRequest, "%s: bad params: %v", r.Method, err)
	}
	return nil
}
