package protocol_test

import (
	"fmt"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

func ExampleDecodeClientEvent() {
	ev, derr := protocol.DecodeClientEvent([]byte(`{"type":"message","sessionId":"work","content":"hello"}`))
	fmt.Println(ev.Type, ev.SessionID, ev.Content, derr == nil)

	// A typo in a field name is refused with a stable code, not ignored.
	_, derr = protocol.DecodeClientEvent([]byte(`{"type":"message","sessionID":"work","content":"hello"}`))
	fmt.Println(derr.Code)
	fmt.Println(derr.Message)

	// The error event the gateway sends back.
	fmt.Println(string(protocol.Encode(protocol.Error{Type: protocol.TypeError, Message: derr.Message, Code: derr.Code})))
	// Output:
	// message work hello true
	// bad_request
	// field "sessionID" is not allowed on a message event
	// {"type":"error","message":"field \"sessionID\" is not allowed on a message event","code":"bad_request"}
}
