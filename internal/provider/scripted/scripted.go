// Package scripted is the offline provider: without a script it
// echoes the user ("echo: X", word by word); with a script it plays a JSON
// array of model turns in order, one per model call, cycling at the end. It
// lets anyone try the whole gateway, and tests run it, without an API key.
package scripted

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Turn is one scripted model response.
type Turn struct {
	Text         string     `json:"text"`
	ToolCalls    []ToolCall `json:"toolCalls"`
	ChunkDelayMs int        `json:"chunkDelayMs"`
}

// ToolCall is a scripted tool call; the provider gives it an ID.
type ToolCall struct {
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// Provider is safe for concurrent use; script turns are handed out in order
// across all sessions.
type Provider struct {
	turns []Turn

	mu   sync.Mutex
	next int
	call int
}

// Echo returns a provider that echoes.
func Echo() *Provider { return &Provider{} }

// Load reads a script file. Errors name the file and the turn.
func Load(path string) (*Provider, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("MINI_OPENCLAW_SCRIPT: %w", err)
	}
	turns, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("MINI_OPENCLAW_SCRIPT %s: %w", path, err)
	}
	return &Provider{turns: turns}, nil
}

// Parse decodes and validates a script: a non-empty JSON array of turns,
// each with text or tool calls, no unknown fields.
func Parse(b []byte) ([]Turn, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var turns []Turn
	if err := dec.Decode(&turns); err != nil {
		return nil, fmt.Errorf("not a JSON array of turns: %w", err)
	}
	if len(turns) == 0 {
		return nil, fmt.Errorf("the script has no turns")
	}
	for i, t := range turns {
		if t.Text == "" && len(t.ToolCalls) == 0 {
			return nil, fmt.Errorf("turn %d: needs text or toolCalls", i)
		}
		if t.ChunkDelayMs < 0 || t.ChunkDelayMs > 60000 {
			return nil, fmt.Errorf("turn %d: chunkDelayMs %d is outside 0-60000", i, t.ChunkDelayMs)
		}
		for j, c := range t.ToolCalls {
			if c.Name == "" {
				return nil, fmt.Errorf("turn %d: toolCalls[%d]: name is required", i, j)
			}
			if len(c.Input) == 0 {
				turns[i].ToolCalls[j].Input = json.RawMessage("{}")
			} else if c.Input[0] != '{' {
				return nil, fmt.Errorf("turn %d: toolCalls[%d]: input must be a JSON object", i, j)
			}
		}
	}
	return turns, nil
}

// Name implements core.Provider.
func (p *Provider) Name() string { return "scripted" }

// Turns is the number of model turns the script holds, 0 for the echo.
func (p *Provider) Turns() int { return len(p.turns) }

// Complete implements core.Provider.
func (p *Provider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	turn := p.nextTurn(req)
	var resp core.Response
	// The text relayed so far is a prefix of the turn's: a slice of it, not
	// a copy grown chunk by chunk.
	sent := 0
	cancelled := func() (core.Response, error) {
		resp.Text = turn.Text[:sent]
		return resp, context.Cause(ctx)
	}
	for i, piece := range words(turn.Text) {
		if i > 0 && turn.ChunkDelayMs > 0 {
			t := time.NewTimer(time.Duration(turn.ChunkDelayMs) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return cancelled()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return cancelled()
		}
		onText(piece)
		sent += len(piece)
	}
	resp.Text = turn.Text
	resp.StopReason = "end_turn"
	if len(req.Tools) > 0 {
		p.mu.Lock()
		for _, c := range turn.ToolCalls {
			p.call++
			resp.ToolCalls = append(resp.ToolCalls, core.ToolCall{ID: fmt.Sprintf("call_%d", p.call), Name: c.Name, Input: c.Input})
		}
		p.mu.Unlock()
		if len(resp.ToolCalls) > 0 {
			resp.StopReason = "tool_use"
		}
	}
	return resp, nil
}

func (p *Provider) nextTurn(req core.Request) Turn {
	if len(p.turns) == 0 {
		return Turn{Text: "echo: " + lastUserText(req.Messages)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.turns[p.next]
	p.next = (p.next + 1) % len(p.turns)
	return t
}

func lastUserText(msgs []core.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == core.RoleUser {
			return msgs[i].Content
		}
	}
	return ""
}

// words splits s into chunks of one word and the space after it, so that the
// chunks concatenate back to s exactly.
func words(s string) []string {
	var out []string
	start := 0
	inSpace := false
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if !sp && inSpace && i > start {
			out = append(out, s[start:i])
			start = i
		}
		inSpace = sp
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
