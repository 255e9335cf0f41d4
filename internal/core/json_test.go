package core

import (
	"encoding/json"
	"testing"
)

func TestMarshalJSONKeepsHTMLCharacters(t *testing.T) {
	v := map[string]any{
		"command": "echo a && echo b > out.txt 2>&1 <x>",
		"raw":     json.RawMessage(`{"command": "a && b > c"}`),
	}
	b, err := MarshalJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"command":"echo a && echo b > out.txt 2>&1 <x>","raw":{"command":"a && b > c"}}`
	if string(b) != want {
		t.Fatalf("MarshalJSON = %s, want %s", b, want)
	}
	b, err = MarshalJSONIndent(map[string]string{"a": "<&>"}, "  ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": \"<&>\"\n}"; string(b) != want {
		t.Fatalf("MarshalJSONIndent = %q, want %q", b, want)
	}
}
