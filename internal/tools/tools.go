// Package tools holds the tools the model may call: bash and the
// file tools. File tools are confined to the workspace by an os.Root, which
// the kernel enforces on every path step (.. and symlinks that lead out are
// refused even if they change between a check and the open). bash is a
// shell run through internal/sandbox: Landlock confines it to the workspace
// and a temp dir (unless the sandbox is off or the kernel lacks Landlock),
// its environment holds none of the gateway's secrets, and nothing it
// starts outlives it.
//
// A tool's error is not a crash: Run returns it and the loop hands it to the
// model as an isError result.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Tool is one callable tool. Run must honour ctx (abort) and be safe for
// concurrent use.
type Tool interface {
	Spec() core.ToolSpec
	// ReadOnly tools change nothing, so several may run in parallel.
	ReadOnly() bool
	Run(ctx context.Context, input json.RawMessage) (string, error)
}

// Source is a list of tools that may change while the gateway runs (the
// tools of MCP servers, which come and go with their servers). Tools must
// be safe for concurrent use; each call returns the current list.
type Source interface {
	Tools() []Tool
}

// Set is the tools of a runtime, by name: fixed tools, and the current
// tools of its sources, read again on every Specs and Get so a turn sees
// the list as it is when the turn starts.
type Set struct {
	byName  map[string]Tool
	sources []Source
}

// NewSet builds a set; a duplicate name is a programming error.
func NewSet(tools ...Tool) *Set {
	s := &Set{byName: map[string]Tool{}}
	for _, t := range tools {
		name := t.Spec().Name
		if _, dup := s.byName[name]; dup {
			panic("tools: duplicate tool " + name)
		}
		s.byName[name] = t
	}
	return s
}

// Add registers more tools (the memory tools of a later layer).
func (s *Set) Add(tools ...Tool) {
	for _, t := range tools {
		s.byName[t.Spec().Name] = t
	}
}

// AddSource adds tools that may change later. A source's tool named like a
// fixed tool is shadowed by it. Call it before the set is used.
func (s *Set) AddSource(src Source) {
	s.sources = append(s.sources, src)
}

// Specs lists the tools for the model, sorted by name so the prompt is
// stable from turn to turn (which keeps provider prompt caches warm).
func (s *Set) Specs() []core.ToolSpec {
	out := make([]core.ToolSpec, 0, len(s.byName))
	for _, t := range s.byName {
		out = append(out, t.Spec())
	}
	for _, src := range s.sources {
		for _, t := range src.Tools() {
			if _, fixed := s.byName[t.Spec().Name]; !fixed {
				out = append(out, t.Spec())
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the named tool.
func (s *Set) Get(name string) (Tool, bool) {
	if t, ok := s.byName[name]; ok {
		return t, true
	}
	for _, src := range s.sources {
		for _, t := range src.Tools() {
			if t.Spec().Name == name {
				return t, true
			}
		}
	}
	return nil, false
}

// DecodeInput parses a tool's arguments strictly into v: unknown fields and
// wrong types are errors that name the field, so the model can correct
// itself. The memory tools (internal/memory) use it too.
func DecodeInput(tool string, input json.RawMessage, v any) error {
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: field %q must be %s", tool, te.Field, jsonKind(te.Type))
		}
		return fmt.Errorf("%s: invalid arguments: %v", tool, err)
	}
	return nil
}

// jsonKind names, for the model, the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// schema builds a JSON Schema object for a tool's input.
func schema(required []string, props map[string]map[string]string) json.RawMessage {
	b, err := json.Marshal(map[string]any{"type": "object", "properties": props, "required": required})
	if err != nil {
		panic(err)
	}
	return b
}

func spec(name, desc string, s json.RawMessage) core.ToolSpec {
	return core.ToolSpec{Name: name, Description: desc, InputSchema: s}
}
