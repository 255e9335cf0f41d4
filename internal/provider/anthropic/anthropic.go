// Package anthropic is the Claude provider: the Messages API through the
// official Go SDK, streamed, with tool use. Text deltas are relayed the
// moment they arrive; tool calls are returned whole when the stream ends.
package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider"
)

// Options configure the provider.
type Options struct {
	APIKey  string
	BaseURL string // "" for the SDK's default (api.anthropic.com)
	// MaxTokens caps one model response; 0 means DefaultMaxTokens.
	MaxTokens int64
	// MaxRetries bounds retries of 429/5xx/overloaded answers; the SDK waits
	// as retry-after says, else backs off exponentially with jitter. A
	// negative value disables retries.
	MaxRetries int
	// HTTPClient is used for requests when set (tests); else
	// provider.HTTPClient.
	HTTPClient *http.Client
}

// DefaultMaxTokens is the max_tokens of a request when Options.MaxTokens
// is 0: the room the agent keeps in the context window for the reply.
const DefaultMaxTokens = 8192

// Provider talks to the Anthropic Messages API. It is safe for concurrent use.
type Provider struct {
	client     sdk.Client
	key        string // only to keep it out of error messages
	maxTokens  int64
	maxRetries int
}

// New builds a provider.
func New(opt Options) *Provider {
	if opt.MaxTokens == 0 {
		opt.MaxTokens = DefaultMaxTokens
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 3
	}
	opt.MaxRetries = max(opt.MaxRetries, 0)
	opts := []option.RequestOption{option.WithAPIKey(opt.APIKey), option.WithMaxRetries(opt.MaxRetries)}
	if opt.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(opt.BaseURL))
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = provider.HTTPClient()
	}
	opts = append(opts, option.WithHTTPClient(opt.HTTPClient))
	return &Provider{client: sdk.NewClient(opts...), key: opt.APIKey, maxTokens: opt.MaxTokens, maxRetries: opt.MaxRetries}
}

// Name implements core.Provider.
func (p *Provider) Name() string { return "anthropic" }

// CheckKey implements core.KeyChecker: one GET /v1/models asking for one
// model, not retried.
func (p *Provider) CheckKey(ctx context.Context) error {
	_, err := p.client.Models.List(ctx, sdk.ModelListParams{Limit: sdk.Int(1)}, option.WithMaxRetries(0))
	var apiErr *sdk.Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &apiErr):
		return fmt.Errorf("anthropic: list models: %w", err)
	case apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden:
		return fmt.Errorf("anthropic: %w (%d %s): check ANTHROPIC_API_KEY", core.ErrKeyRejected, apiErr.StatusCode, provider.Redact(apiMessage(apiErr), p.key))
	}
	return fmt.Errorf("anthropic: list models: HTTP %d: %s", apiErr.StatusCode, provider.Redact(apiMessage(apiErr), p.key))
}

// Complete implements core.Provider. The SDK retries HTTP-level 429/5xx
// answers itself; an overloaded or rate-limit error that arrives inside the
// stream is retried here, but only while no text has reached the user (a
// retry after that would repeat what they already saw).
func (p *Provider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	params, err := p.params(req)
	if err != nil {
		return core.Response{}, err
	}
	for attempt := 0; ; attempt++ {
		resp, emitted, err := p.stream(ctx, params, onText)
		if err == nil || emitted || attempt >= p.maxRetries || !retryableInStream(err) || ctx.Err() != nil {
			return resp, describe(err, req.Model)
		}
		if err := provider.Sleep(ctx, provider.Backoff(attempt)); err != nil {
			return resp, err
		}
	}
}

// stream runs one streamed request. emitted reports whether any text was
// passed to onText.
func (p *Provider) stream(ctx context.Context, params sdk.MessageNewParams, onText func(string)) (resp core.Response, emitted bool, err error) {
	s := p.client.Messages.NewStreaming(ctx, params)
	defer s.Close()
	// The reply's text is built here and text deltas bypass msg.Accumulate:
	// both a += here and the SDK's (it appends each delta to the block's
	// text with +=) copy all the text so far on every delta, quadratic on a
	// long reply. msg accumulates the rest: tool inputs, usage, stop reason.
	var text strings.Builder
	defer func() { resp.Text = text.String() }()
	var msg sdk.Message
	stopped, started := false, false
	for s.Next() {
		ev := s.Current()
		started = true
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			if ev.Delta.Text != "" {
				emitted = true
				text.WriteString(ev.Delta.Text)
				onText(ev.Delta.Text)
			}
			continue
		}
		if err := msg.Accumulate(ev); err != nil {
			return resp, emitted, fmt.Errorf("anthropic: malformed stream: %w", err)
		}
		stopped = stopped || ev.Type == "message_stop"
	}
	resp.Usage = core.Usage{
		InputTokens: msg.Usage.InputTokens, OutputTokens: msg.Usage.OutputTokens,
		CacheReadTokens: msg.Usage.CacheReadInputTokens, CacheWriteTokens: msg.Usage.CacheCreationInputTokens,
	}
	resp.StopReason = string(msg.StopReason)
	if err := s.Err(); err != nil {
		if ctx.Err() != nil {
			return resp, emitted, context.Cause(ctx)
		}
		var apiErr *sdk.Error
		if started && !errors.As(err, &apiErr) {
			return resp, emitted, fmt.Errorf("anthropic: the stream broke off mid-reply (connection cut): %w", err)
		}
		return resp, emitted, err
	}
	if !stopped {
		return resp, emitted, errors.New("anthropic: the stream ended before message_stop (connection cut mid-reply)")
	}
	for _, block := range msg.Content {
		if block.Type != "tool_use" {
			continue
		}
		input := json.RawMessage(block.Input)
		if len(input) == 0 || !json.Valid(input) {
			input = json.RawMessage("{}")
		}
		resp.ToolCalls = append(resp.ToolCalls, core.ToolCall{ID: block.ID, Name: block.Name, Input: input})
	}
	return resp, emitted, nil
}

// retryableInStream reports whether err is an overloaded, rate-limit or
// server error event that arrived inside a 200 stream. Error statuses of the
// HTTP answer itself have already been retried by the SDK.
func retryableInStream(err error) bool {
	var apiErr *sdk.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode >= 400 {
		return false
	}
	switch apiErr.Type() {
	case "overloaded_error", "rate_limit_error", "api_error":
		return true
	}
	return false
}

// describe turns SDK errors into messages that tell the user what to do.
func describe(err error, model string) error {
	if err == nil {
		return nil
	}
	var apiErr *sdk.Error
	if !errors.As(err, &apiErr) {
		return err
	}
	detail := apiMessage(apiErr)
	switch {
	case apiErr.StatusCode == http.StatusUnauthorized || apiErr.Type() == "authentication_error":
		return fmt.Errorf("anthropic: the API key was refused (401 %s): check ANTHROPIC_API_KEY", detail)
	case apiErr.StatusCode == http.StatusNotFound || apiErr.Type() == "not_found_error":
		return fmt.Errorf("anthropic: model %q was not found (%s): check MINI_OPENCLAW_MODEL", model, detail)
	case apiErr.StatusCode == http.StatusBadRequest && apiErr.Type() == "invalid_request_error":
		if oe := overflow(detail); oe != nil {
			return oe
		}
	case apiErr.Type() == "overloaded_error" || apiErr.StatusCode == 529:
		return fmt.Errorf("anthropic: the API is overloaded, retries exhausted (%s): try again shortly", detail)
	case apiErr.StatusCode == http.StatusTooManyRequests || apiErr.Type() == "rate_limit_error":
		return fmt.Errorf("anthropic: rate limited, retries exhausted (%s)", detail)
	}
	if apiErr.StatusCode != 0 {
		return fmt.Errorf("anthropic: HTTP %d %s: %s", apiErr.StatusCode, apiErr.Type(), detail)
	}
	return fmt.Errorf("anthropic: %s: %s", apiErr.Type(), detail)
}

// apiMessage extracts error.message from the API's error body.
func apiMessage(e *sdk.Error) string {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(e.RawJSON()), &body) == nil && body.Error.Message != "" {
		return body.Error.Message
	}
	return string(e.Type())
}

// The API's two 400s for a prompt over the window: the prompt alone is
// too long, or it is with max_tokens added.
var (
	promptTooLong  = regexp.MustCompile(`prompt is too long: (\d+) tokens > (\d+) maximum`)
	exceedsWithMax = regexp.MustCompile(`input length and .max_tokens. exceed context limit: (\d+) \+ \d+ > (\d+)`)
)

// overflow recognises an invalid_request_error's message as the prompt
// being over the model's window, with the sizes it names.
func overflow(detail string) *core.OverflowError {
	for _, re := range []*regexp.Regexp{promptTooLong, exceedsWithMax} {
		if m := re.FindStringSubmatch(detail); m != nil {
			tokens, _ := strconv.ParseInt(m[1], 10, 64)
			limit, _ := strconv.ParseInt(m[2], 10, 64)
			return &core.OverflowError{Provider: "anthropic", Tokens: tokens, Limit: limit, Detail: detail}
		}
	}
	if strings.Contains(strings.ToLower(detail), "prompt is too long") {
		return &core.OverflowError{Provider: "anthropic", Detail: detail}
	}
	return nil
}
