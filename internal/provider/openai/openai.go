// Package openai is the provider for OpenAI-compatible chat completions
// servers: OpenAI itself, and the local servers that speak its dialect
// (Ollama, vLLM, llama.cpp). It is a small hand-written client rather than
// the official SDK: miniclaw needs one endpoint, and the client must accept
// both OpenAI's tool calls split over many deltas and the whole tool call in
// one chunk that Ollama and llama.cpp send, which is easiest to get right
// where the parsing is in plain view.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider"
)

// DefaultBaseURL is used when OPENAI_BASE_URL is not set.
const DefaultBaseURL = "https://api.openai.com/v1"

// Options configure the provider.
type Options struct {
	APIKey     string // sent as a Bearer token when set (local servers need none)
	BaseURL    string // e.g. http://localhost:11434/v1 for Ollama
	MaxRetries int    // retries of 429/5xx; 0 means 3, negative disables
	HTTPClient *http.Client
}

// Provider is safe for concurrent use.
type Provider struct {
	key        string
	base       string // the API's root, without a trailing slash
	url        string // the chat completions endpoint
	maxRetries int
	http       *http.Client
}

// New builds a provider.
func New(opt Options) *Provider {
	if opt.BaseURL == "" {
		opt.BaseURL = DefaultBaseURL
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 3
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = provider.HTTPClient()
	}
	base := strings.TrimRight(opt.BaseURL, "/")
	return &Provider{
		key:        opt.APIKey,
		base:       base,
		url:        base + "/chat/completions",
		maxRetries: max(opt.MaxRetries, 0),
		http:       opt.HTTPClient,
	}
}

// Name implements core.Provider.
func (p *Provider) Name() string { return "openai" }

// Complete implements core.Provider. 429 and 5xx answers are retried with
// backoff, honouring Retry-After; a stream that fails after text reached the
// user is not retried.
func (p *Provider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	body, err := core.MarshalJSON(buildRequest(req))
	if err != nil {
		return core.Response{}, fmt.Errorf("openai: encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		res, err := p.post(ctx, body)
		if err != nil {
			if ctx.Err() != nil {
				return core.Response{}, context.Cause(ctx)
			}
			if attempt < p.maxRetries {
				if err := provider.Sleep(ctx, provider.Backoff(attempt)); err != nil {
					return core.Response{}, err
				}
				continue
			}
			return core.Response{}, fmt.Errorf("openai: %s: %w", p.url, err)
		}
		if res.StatusCode == http.StatusOK {
			defer res.Body.Close()
			resp, err := readStream(ctx, res.Body, onText)
			if err != nil && ctx.Err() != nil {
				return resp, context.Cause(ctx)
			}
			return resp, err
		}
		apiErr := readError(res, req.Model)
		if !retryable(res.StatusCode) || attempt >= p.maxRetries {
			return core.Response{}, apiErr
		}
		wait, ok := retryAfter(res.Header)
		if !ok {
			wait = provider.Backoff(attempt)
		}
		if err := provider.Sleep(ctx, wait); err != nil {
			return core.Response{}, err
		}
	}
}

func (p *Provider) post(ctx context.Context, body []byte) (*http.Response, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "text/event-stream")
	if p.key != "" {
		r.Header.Set("Authorization", "Bearer "+p.key)
	}
	return p.http.Do(r)
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// retryAfter reads Retry-After (seconds or an HTTP date), capped at a minute.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return min(time.Duration(s*float64(time.Second)), time.Minute), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), time.Minute), true
	}
	return 0, false
}

// readError turns a non-200 answer into an error that says what to do.
func readError(res *http.Response, model string) error {
	e, msg := errorBody(res)
	if res.StatusCode == http.StatusBadRequest {
		if oe := overflow(e, msg); oe != nil {
			return oe
		}
	}
	switch res.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("openai: the API key was refused (%d %s): check OPENAI_API_KEY", res.StatusCode, msg)
	case http.StatusNotFound:
		return fmt.Errorf("openai: not found (404 %s): check MINI_OPENCLAW_MODEL=%q and OPENAI_BASE_URL", msg, model)
	}
	return fmt.Errorf("openai: HTTP %d: %s", res.StatusCode, msg)
}

// errorBody reads an error answer's body (and closes it): the error object
// when there is one, and its message, else the body's text.
func errorBody(res *http.Response) (e apiError, msg string) {
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	msg = strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil && len(body.Error) > 0 {
		if json.Unmarshal(body.Error, &e) == nil && e.Message != "" {
			msg = e.Message
		} else if s, err := strconv.Unquote(string(body.Error)); err == nil {
			msg = s // Ollama: {"error":"model not found"}
		}
	} else if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg = e.Message // vLLM: {"object":"error","message":...}
	}
	return e, msg
}

// CheckKey implements core.KeyChecker: one GET {base}/models, not retried.
// A server that needs no key (Ollama) answers it too.
func (p *Provider) CheckKey(ctx context.Context) error {
	url := p.base + "/models"
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("openai: %w", err)
	}
	if p.key != "" {
		r.Header.Set("Authorization", "Bearer "+p.key)
	}
	res, err := p.http.Do(r)
	if err != nil {
		return fmt.Errorf("openai: list models: %w", err)
	}
	if res.StatusCode == http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // so the connection is reused
		res.Body.Close()
		return nil
	}
	_, msg := errorBody(res)
	msg = provider.Redact(msg, p.key)
	if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
		return fmt.Errorf("openai: %w (%d %s): check OPENAI_API_KEY", core.ErrKeyRejected, res.StatusCode, msg)
	}
	return fmt.Errorf("openai: GET %s: HTTP %d: %s", url, res.StatusCode, msg)
}

// apiError is an error object as OpenAI, vLLM and llama.cpp send it;
// llama.cpp adds the prompt's size and its window to a context overflow.
type apiError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"` // a string at OpenAI, a number at vLLM and llama.cpp
	NPrompt int64           `json:"n_prompt_tokens"`
	NCtx    int64           `json:"n_ctx"`
}

// How the servers word a prompt over the window, with the sizes they name:
// OpenAI and vLLM ("This model's maximum context length is 4096 tokens.
// However, you requested 5000 tokens …" or "… your messages resulted in
// 5000 tokens"), llama.cpp ("request (4476 tokens) exceeds the available
// context size (4096 tokens)", or without the sizes in older versions) and
// Ollama when it does not truncate ("the input length exceeds the context
// length").
var (
	maxContext   = regexp.MustCompile(`maximum context length is (\d+) tokens`)
	requested    = regexp.MustCompile(`(?:requested|resulted in) (\d+) tokens`)
	llamaRequest = regexp.MustCompile(`request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)`)
	overflowText = []string{"maximum context length", "exceeds the available context size", "input length exceeds the context length"}
)

// overflow recognises a 400's error as the prompt being over the model's
// window, with the sizes it names (0 when it names none).
func overflow(e apiError, msg string) *core.OverflowError {
	oe := &core.OverflowError{Provider: "openai", Tokens: e.NPrompt, Limit: e.NCtx, Detail: msg}
	if m := llamaRequest.FindStringSubmatch(msg); m != nil {
		oe.Tokens, _ = strconv.ParseInt(m[1], 10, 64)
		oe.Limit, _ = strconv.ParseInt(m[2], 10, 64)
	}
	if m := maxContext.FindStringSubmatch(msg); m != nil {
		oe.Limit, _ = strconv.ParseInt(m[1], 10, 64)
		if m := requested.FindStringSubmatch(msg); m != nil {
			oe.Tokens, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if string(e.Code) == `"context_length_exceeded"` || e.Type == "exceed_context_size_error" {
		return oe
	}
	lower := strings.ToLower(msg)
	for _, s := range overflowText {
		if strings.Contains(lower, s) {
			return oe
		}
	}
	return nil
}
