package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
)

func TestDecodeClientEventValid(t *testing.T) {
	id128 := strings.Repeat("a", MaxSessionIDLen)
	tests := []struct {
		name  string
		frame string
		want  ClientEvent
	}{
		{"message", `{"type":"message","content":"hi"}`, ClientEvent{Type: TypeMessage, Content: "hi"}},
		{"message with sessionId", `{"type":"message","sessionId":"s-1","content":"hi"}`, ClientEvent{Type: TypeMessage, SessionID: "s-1", Content: "hi"}},
		{"message with null sessionId", `{"type":"message","sessionId":null,"content":"hi"}`, ClientEvent{Type: TypeMessage, Content: "hi"}},
		{"message with 128-char sessionId", `{"type":"message","sessionId":"` + id128 + `","content":"x"}`, ClientEvent{Type: TypeMessage, SessionID: id128, Content: "x"}},
		{"message field order and whitespace", "\n { \"content\" : \"a\\nb \\u00e9\" ,\t\"type\" : \"message\" } \r\n", ClientEvent{Type: TypeMessage, Content: "a\nb é"}},
		{"message whitespace-only content", `{"type":"message","content":" "}`, ClientEvent{Type: TypeMessage, Content: " "}},
		{"ping", `{"type":"ping"}`, ClientEvent{Type: TypePing}},
		{"abort", `{"type":"abort"}`, ClientEvent{Type: TypeAbort}},
		{"abort with sessionId", `{"type":"abort","sessionId":"a.b_c-D9"}`, ClientEvent{Type: TypeAbort, SessionID: "a.b_c-D9"}},
		{"abort with null sessionId", `{"type":"abort","sessionId":null}`, ClientEvent{Type: TypeAbort}},
		{"compact", `{"type":"compact"}`, ClientEvent{Type: TypeCompact}},
		{"compact with sessionId", `{"type":"compact","sessionId":"s-1"}`, ClientEvent{Type: TypeCompact, SessionID: "s-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, derr := DecodeClientEvent([]byte(tt.frame))
			if derr != nil {
				t.Fatalf("DecodeClientEvent(%q) error: %v", tt.frame, derr)
			}
			if got != tt.want {
				t.Fatalf("DecodeClientEvent(%q) = %+v, want %+v", tt.frame, got, tt.want)
			}
		})
	}
}

func TestDecodeClientEventErrors(t *testing.T) {
	const notObject = "frame is not a JSON object"
	tests := []struct {
		name  string
		frame string
		code  Code
		msg   string
	}{
		// bad_json: the frame is not exactly one JSON object.
		{"empty frame", ``, CodeBadJSON, notObject},
		{"whitespace only", " \n\t", CodeBadJSON, notObject},
		{"invalid JSON", `{"type":"ping"`, CodeBadJSON, notObject},
		{"garbage", `hello`, CodeBadJSON, notObject},
		{"single quotes", `{'type':'ping'}`, CodeBadJSON, notObject},
		{"JSON array", `[{"type":"ping"}]`, CodeBadJSON, notObject},
		{"JSON string", `"ping"`, CodeBadJSON, notObject},
		{"JSON number", `42`, CodeBadJSON, notObject},
		{"JSON null", `null`, CodeBadJSON, notObject},
		{"two objects", `{"type":"ping"}{"type":"ping"}`, CodeBadJSON, "frame holds more than one JSON value"},
		{"two objects with newline", "{\"type\":\"ping\"}\n{\"type\":\"ping\"}", CodeBadJSON, "frame holds more than one JSON value"},
		{"object then number", `{"type":"ping"} 1`, CodeBadJSON, "frame holds more than one JSON value"},
		{"trailing garbage", `{"type":"ping"}x`, CodeBadJSON, "frame holds more than one JSON value"},
		{"trailing bracket", `{"type":"ping"}]`, CodeBadJSON, "frame holds more than one JSON value"},
		{"invalid UTF-8 in a string", "{\"type\":\"message\",\"content\":\"a\xffb\"}", CodeBadJSON, "frame is not valid UTF-8"},
		{"invalid UTF-8 in a name", "{\"type\":\"ping\",\"\xc3\":1}", CodeBadJSON, "frame is not valid UTF-8"},
		{"truncated with a duplicate", `{"type":"ping","type":"ping"`, CodeBadJSON, notObject},

		// duplicate names: encoding/json would silently keep the last one.
		{"duplicate type", `{"type":"ping","type":"message","content":"x"}`, CodeBadRequest, `field "type" appears more than once`},
		{"duplicate content", `{"type":"message","content":"a","content":"b"}`, CodeBadRequest, `field "content" appears more than once`},
		{"duplicate sessionId", `{"type":"abort","sessionId":"a","sessionId":"b"}`, CodeBadRequest, `field "sessionId" appears more than once`},
		{"duplicate null", `{"type":"abort","sessionId":null,"sessionId":"b"}`, CodeBadRequest, `field "sessionId" appears more than once`},

		// type problems.
		{"empty object", `{}`, CodeBadRequest, `field "type" is required`},
		{"missing type", `{"content":"hi"}`, CodeBadRequest, `field "type" is required`},
		{"type number", `{"type":1,"content":"hi"}`, CodeBadRequest, `field "type" must be a string`},
		{"type null", `{"type":null}`, CodeBadRequest, `field "type" must be a string`},
		{"type object", `{"type":{"name":"ping"}}`, CodeBadRequest, `field "type" must be a string`},
		{"unknown type", `{"type":"hello"}`, CodeUnknownType, `unknown event type "hello" (want message, ping, abort or compact)`},
		{"empty type", `{"type":""}`, CodeUnknownType, `unknown event type "" (want message, ping, abort or compact)`},
		{"type is case-sensitive", `{"type":"Message","content":"hi"}`, CodeUnknownType, `unknown event type "Message" (want message, ping, abort or compact)`},
		{"server event type", `{"type":"pong"}`, CodeUnknownType, `unknown event type "pong" (want message, ping, abort or compact)`},

		// content problems.
		{"message without content", `{"type":"message"}`, CodeBadRequest, `field "content" is required on a message event`},
		{"content number", `{"type":"message","content":5}`, CodeBadRequest, `field "content" must be a string`},
		{"content array", `{"type":"message","content":["hi"]}`, CodeBadRequest, `field "content" must be a string`},
		{"content null", `{"type":"message","content":null}`, CodeBadRequest, `field "content" must be a string`},
		{"content empty", `{"type":"message","content":""}`, CodeBadRequest, `field "content" must not be empty`},

		// unknown fields.
		{"sessionID typo", `{"type":"message","sessionID":"s","content":"hi"}`, CodeBadRequest, `field "sessionID" is not allowed on a message event`},
		{"content on ping", `{"type":"ping","content":"hi"}`, CodeBadRequest, `field "content" is not allowed on a ping event`},
		{"sessionId on ping", `{"type":"ping","sessionId":"s"}`, CodeBadRequest, `field "sessionId" is not allowed on a ping event`},
		{"content on compact", `{"type":"compact","content":"now"}`, CodeBadRequest, `field "content" is not allowed on a compact event`},
		{"content on abort", `{"type":"abort","content":"stop"}`, CodeBadRequest, `field "content" is not allowed on an abort event`},

		// sessionId problems.
		{"sessionId number", `{"type":"message","sessionId":7,"content":"hi"}`, CodeBadRequest, `field "sessionId" must be a string`},
		{"sessionId bool on abort", `{"type":"abort","sessionId":true}`, CodeBadRequest, `field "sessionId" must be a string`},
		{"sessionId empty", `{"type":"message","sessionId":"","content":"hi"}`, CodeBadRequest, `field "sessionId": session ID is empty`},
		{"sessionId slash", `{"type":"message","sessionId":"a/b","content":"hi"}`, CodeBadRequest, `field "sessionId": session ID has '/' at byte 1; only A-Za-z0-9._- are allowed`},
		{"sessionId backslash", `{"type":"abort","sessionId":"a\\b"}`, CodeBadRequest, `field "sessionId": session ID has '\\' at byte 1; only A-Za-z0-9._- are allowed`},
		{"sessionId dotdot", `{"type":"message","sessionId":"..","content":"hi"}`, CodeBadRequest, `field "sessionId": session ID must not start with '.'`},
		{"sessionId dotdot slash", `{"type":"abort","sessionId":"../etc"}`, CodeBadRequest, `field "sessionId": session ID must not start with '.'`},
		{"sessionId leading dot", `{"type":"message","sessionId":".hidden","content":"hi"}`, CodeBadRequest, `field "sessionId": session ID must not start with '.'`},
		{"sessionId 129 chars", `{"type":"message","sessionId":"` + strings.Repeat("x", 129) + `","content":"hi"}`, CodeBadRequest, `field "sessionId": session ID is 129 characters, the limit is 128`},
		{"sessionId NUL", `{"type":"message","sessionId":"a\u0000","content":"hi"}`, CodeBadRequest, `field "sessionId": session ID has '\x00' at byte 1; only A-Za-z0-9._- are allowed`},
		// A bad sessionId on a valid message is reported even when content is also bad:
		// sessionId is checked first.
		{"sessionId checked before content", `{"type":"message","sessionId":"a b"}`, CodeBadRequest, `field "sessionId": session ID has ' ' at byte 1; only A-Za-z0-9._- are allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, derr := DecodeClientEvent([]byte(tt.frame))
			if derr == nil {
				t.Fatalf("DecodeClientEvent(%q) = %+v, want error %s", tt.frame, got, tt.code)
			}
			if got != (ClientEvent{}) {
				t.Errorf("DecodeClientEvent(%q) returned event %+v alongside an error; want zero value", tt.frame, got)
			}
			if derr.Code != tt.code || derr.Message != tt.msg {
				t.Fatalf("DecodeClientEvent(%q) error = {%s %q}, want {%s %q}", tt.frame, derr.Code, derr.Message, tt.code, tt.msg)
			}
			if want := string(tt.code) + ": " + tt.msg; derr.Error() != want {
				t.Fatalf("Error() = %q, want %q", derr.Error(), want)
			}
		})
	}
}

func TestValidateSessionID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string // "" = valid
	}{
		{"a", ""},
		{"Z", ""},
		{"9", ""},
		{"a.b_c-D9", ""},
		{"a..b", ""}, // only a leading '.' is refused; ".." inside a name is harmless
		{"0123456789abcdef0123456789abcdef", ""},
		{"550e8400-e29b-41d4-a716-446655440000", ""},
		{strings.Repeat("a", 128), ""},
		{"", "session ID is empty"},
		{strings.Repeat("a", 129), "session ID is 129 characters, the limit is 128"},
		{".", "session ID must not start with '.'"},
		{".a", "session ID must not start with '.'"},
		{"a/b", "session ID has '/' at byte 1; only A-Za-z0-9._- are allowed"},
		{"café", "session ID has 'é' at byte 3; only A-Za-z0-9._- are allowed"},
		{"日本", "session ID has '日' at byte 0; only A-Za-z0-9._- are allowed"},
		{"a\xffb", "session ID has '\uFFFD' at byte 1; only A-Za-z0-9._- are allowed"},
		{"a b", "session ID has ' ' at byte 1; only A-Za-z0-9._- are allowed"},
		{"a:b", "session ID has ':' at byte 1; only A-Za-z0-9._- are allowed"},
		{"a\nb", `session ID has '\n' at byte 1; only A-Za-z0-9._- are allowed`},
		{"a+b", "session ID has '+' at byte 1; only A-Za-z0-9._- are allowed"},
	}
	for _, tt := range tests {
		err := ValidateSessionID(tt.id)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateSessionID(%q) = %v, want nil", tt.id, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("ValidateSessionID(%q) = nil, want %q", tt.id, tt.wantErr)
		case tt.wantErr != "" && err.Error() != tt.wantErr:
			t.Errorf("ValidateSessionID(%q) = %q, want %q", tt.id, err.Error(), tt.wantErr)
		}
	}
}

func TestValidateChannel(t *testing.T) {
	for ch, want := range map[string]string{
		"webchat":                "",
		"cli":                    "",
		"a.b_c-D9":               "",
		strings.Repeat("c", 128): "",
		"":                       "channel is empty",
		strings.Repeat("c", 129): "channel is 129 characters, the limit is 128",
		"\x1b]52;c;aGk=\a":       `channel has '\x1b' at byte 0; only A-Za-z0-9._- are allowed`,
		".hidden":                "channel must not start with '.'",
	} {
		err := ValidateChannel(ch)
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("ValidateChannel(%q) = %v, want %q", ch, err, want)
		}
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		ev   any
		want string
	}{
		{"connected", Connected{Type: TypeConnected, SessionID: "s"},
			`{"type":"connected","sessionId":"s","resumed":false}`},
		{"connected resumed", Connected{Type: TypeConnected, SessionID: "s", Resumed: true},
			`{"type":"connected","sessionId":"s","resumed":true}`},
		{"chunk", Chunk{Type: TypeChunk, SessionID: "s", Content: "hel"},
			`{"type":"chunk","sessionId":"s","content":"hel"}`},
		{"chunk empty", Chunk{Type: TypeChunk, SessionID: "s"},
			`{"type":"chunk","sessionId":"s","content":""}`},
		{"message_done empty", MessageDone{Type: TypeMessageDone, SessionID: "s"},
			`{"type":"message_done","sessionId":"s","content":""}`},
		{"message_done full", MessageDone{Type: TypeMessageDone, SessionID: "s", Content: "hi\n\"there\"", Usage: &core.Usage{InputTokens: 12, OutputTokens: 3}, StopReason: "end_turn"},
			`{"type":"message_done","sessionId":"s","content":"hi\n\"there\"","usage":{"inputTokens":12,"outputTokens":3},"stopReason":"end_turn"}`},
		{"message_done zero usage", MessageDone{Type: TypeMessageDone, SessionID: "s", Content: "x", Usage: &core.Usage{}},
			`{"type":"message_done","sessionId":"s","content":"x","usage":{"inputTokens":0,"outputTokens":0}}`},
		{"tool_start minimal", ToolStart{Type: TypeToolStart, SessionID: "s", ToolName: "bash"},
			`{"type":"tool_start","sessionId":"s","toolName":"bash"}`},
		{"tool_start full", ToolStart{Type: TypeToolStart, SessionID: "s", ToolName: "bash", ToolCallID: "toolu_1", Input: json.RawMessage(`{ "command" : "ls -la" }`)},
			`{"type":"tool_start","sessionId":"s","toolName":"bash","toolCallId":"toolu_1","input":{"command":"ls -la"}}`},
		{"tool_done minimal", ToolDone{Type: TypeToolDone, SessionID: "s", ToolName: "bash"},
			`{"type":"tool_done","sessionId":"s","toolName":"bash","output":""}`},
		{"tool_done full", ToolDone{Type: TypeToolDone, SessionID: "s", ToolName: "bash", Output: "exit 1", ToolCallID: "toolu_1", IsError: true},
			`{"type":"tool_done","sessionId":"s","toolName":"bash","output":"exit 1","toolCallId":"toolu_1","isError":true}`},
		{"error minimal", Error{Type: TypeError, Message: "boom"},
			`{"type":"error","message":"boom"}`},
		{"error full", Error{Type: TypeError, Message: "bad", Code: CodeBadRequest, SessionID: "s"},
			`{"type":"error","message":"bad","code":"bad_request","sessionId":"s"}`},
		{"error empty message", Error{Type: TypeError},
			`{"type":"error","message":""}`},
		{"pong", Pong{Type: TypePong}, `{"type":"pong"}`},
		{"status", Status{Type: TypeStatus, SessionID: "s", State: StatusWaiting, Message: "waiting"},
			`{"type":"status","sessionId":"s","state":"waiting","message":"waiting"}`},
		{"pointer", &Pong{Type: TypePong}, `{"type":"pong"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Encode(tt.ev)); got != tt.want {
				t.Fatalf("Encode(%#v)\n got %s\nwant %s", tt.ev, got, tt.want)
			}
		})
	}
}

func TestEncodePanicsOnInvalidRawInput(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Encode with invalid raw JSON input did not panic")
		}
		msg, ok := r.(string)
		if !ok || !strings.HasPrefix(msg, "protocol: encode protocol.ToolStart: ") {
			t.Fatalf("panic value = %#v, want a string starting with %q", r, "protocol: encode protocol.ToolStart: ")
		}
	}()
	Encode(ToolStart{Type: TypeToolStart, SessionID: "s", ToolName: "bash", Input: json.RawMessage(`{"a":`)})
}

// The error codes are part of the wire contract; renaming one breaks clients.
func TestCodesAreStable(t *testing.T) {
	codes := map[Code]string{
		CodeBadJSON:      "bad_json",
		CodeUnknownType:  "unknown_type",
		CodeBadRequest:   "bad_request",
		CodeQueueFull:    "queue_full",
		CodeNotRunning:   "not_running",
		CodeProvider:     "provider_error",
		CodeAborted:      "aborted",
		CodeShuttingDown: "shutting_down",
		CodeInternal:     "internal",
		CodeForbidden:    "forbidden",
	}
	if len(codes) != 10 {
		t.Fatalf("codes collide: %v", codes)
	}
	for c, want := range codes {
		if string(c) != want {
			t.Errorf("code %q, want %q", c, want)
		}
	}
}
