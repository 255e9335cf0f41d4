package core

import (
	"bytes"
	"encoding/json"
	"io"
)

// NewJSONEncoder is json.NewEncoder with HTML escaping off. Everything
// miniclaw writes as JSON (transcripts, metas, WebSocket events, API
// responses, CLI output) goes through it or through MarshalJSON, so a tool
// input such as `a && b > out` is stored and shown as typed, not as
// `a \u0026\u0026 b \u003e out`: nothing miniclaw writes is embedded in HTML.
func NewJSONEncoder(w io.Writer) *json.Encoder {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	return e
}

// MarshalJSON is json.Marshal with HTML escaping off (see NewJSONEncoder).
// json.RawMessage values pass through compacted, unescaped.
func MarshalJSON(v any) ([]byte, error) {
	return marshalJSON(v, "")
}

// MarshalJSONIndent is json.MarshalIndent (no prefix) with HTML escaping off.
func MarshalJSONIndent(v any, indent string) ([]byte, error) {
	return marshalJSON(v, indent)
}

func marshalJSON(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	e := NewJSONEncoder(&b)
	e.SetIndent("", indent)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	// Encode ends the value with a newline; Marshal does not.
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
