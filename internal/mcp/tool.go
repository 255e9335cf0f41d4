package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/miniclaw/miniclaw/internal/core"
)

// MaxOutput is how many characters of a result the model sees.
const MaxOutput = 100_000

// Tool is one tool of an MCP server as the agent sees it. It implements
// tools.Tool.
type Tool struct {
	srv      *server
	name     string // the server's name for it
	spec     core.ToolSpec
	readOnly bool
}

// Spec is the tool for the model: mcp__<server>__<tool>, with the server's
// description and input schema.
func (t Tool) Spec() core.ToolSpec { return t.spec }

// ReadOnly is the server's readOnlyHint annotation: only such tools run in
// parallel with others.
func (t Tool) ReadOnly() bool { return t.readOnly }

// Name is the server's own name of the tool.
func (t Tool) Name() string { return t.name }

// Run calls the tool; ctx (the turn) cancels the call, which tells the
// server with notifications/cancelled. A result the server marks isError
// is returned as the error, so the model sees an error result.
func (t Tool) Run(ctx context.Context, input json.RawMessage) (string, error) {
	res, err := t.srv.call(ctx, t.name, input)
	if err != nil {
		return "", err
	}
	text := capText(resultText(res))
	if res.IsError {
		if text == "" {
			text = fmt.Sprintf("MCP server %q: %s failed without a message", t.srv.cfg.Name, t.name)
		}
		return "", errors.New(text)
	}
	return text, nil
}

// resultText is a result as text: its text content joined by newlines,
// structured content as JSON when there is no text, and a line for each
// image, audio clip and resource saying what it is (the agent's results
// are text).
func resultText(res *sdk.CallToolResult) string {
	var parts []string
	hasText := false
	for _, c := range res.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			parts, hasText = append(parts, c.Text), true
		case *sdk.ImageContent:
			parts = append(parts, fmt.Sprintf("[image %s, %d bytes]", c.MIMEType, len(c.Data)))
		case *sdk.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio %s, %d bytes]", c.MIMEType, len(c.Data)))
		case *sdk.ResourceLink:
			parts = append(parts, fmt.Sprintf("[resource %s%s]", c.URI, describe(c.Name, c.MIMEType)))
		case *sdk.EmbeddedResource:
			parts = append(parts, embedded(c.Resource))
		default:
			parts = append(parts, fmt.Sprintf("[%T content]", c))
		}
	}
	if !hasText && res.StructuredContent != nil {
		if b, err := core.MarshalJSON(res.StructuredContent); err == nil {
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, "\n")
}

// embedded is a resource in a result: a text resource's text under its
// URI, a blob's size.
func embedded(r *sdk.ResourceContents) string {
	switch {
	case r == nil:
		return "[resource]"
	case r.Blob != nil:
		return fmt.Sprintf("[resource %s%s, %d bytes]", r.URI, describe("", r.MIMEType), len(r.Blob))
	default:
		return fmt.Sprintf("[resource %s%s]\n%s", r.URI, describe("", r.MIMEType), r.Text)
	}
}

func describe(name, mime string) string {
	var d []string
	for _, s := range []string{name, mime} {
		if s != "" {
			d = append(d, s)
		}
	}
	if len(d) == 0 {
		return ""
	}
	return " (" + strings.Join(d, ", ") + ")"
}

// capText cuts text to MaxOutput characters, saying so.
func capText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= MaxOutput {
		return s
	}
	return string([]rune(s)[:MaxOutput]) + fmt.Sprintf("\n[output truncated: showing the first %d characters]", MaxOutput)
}
