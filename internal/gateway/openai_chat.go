package gateway

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

// apiError is a refused or failed chat completion: its HTTP status, its
// code (OpenAI's where it has one, else miniclaw's), the request field at
// fault (param, may be empty) and a sentence for people.
type apiError struct {
	status           int
	code, param, msg string
}

func badParam(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: string(protocol.CodeBadRequest), param: param, msg: fmt.Sprintf(format, args...)}
}

func (e *apiError) write(w http.ResponseWriter) {
	writeOpenAIError(w, e.status, e.code, e.param, e.msg)
}

// chatRequest is what miniclaw uses of a chat completion request; other
// members (sampling parameters, tools...) are accepted and ignored: the
// agent's own settings apply.
type chatRequest struct {
	model        string
	content      string // the text of the last message, a user message: the new turn
	stream       bool
	includeUsage bool
	user         string
}

// parseChat validates a chat completion request body. Only the last
// message is read: the session's transcript, not the client's copy, is the
// conversation's history.
func (s *Server) parseChat(data []byte) (chatRequest, *apiError) {
	var req chatRequest
	fields, derr := protocol.DecodeObject(data, "request body")
	if derr != nil {
		return req, &apiError{status: http.StatusBadRequest, code: string(derr.Code), msg: derr.Message}
	}
	var (
		messages []json.RawMessage
		options  struct {
			IncludeUsage bool `json:"include_usage"`
		}
		n *int
	)
	for _, f := range []struct {
		name, want string
		dst        any
	}{
		{"model", "a string", &req.model},
		{"messages", "an array of messages", &messages},
		{"stream", "a boolean", &req.stream},
		{"stream_options", `an object such as {"include_usage": true}`, &options},
		{"user", "a string", &req.user},
		{"n", "a whole number", &n},
	} {
		if raw, ok := fields[f.name]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return req, badParam(f.name, "%s: must be %s", f.name, f.want)
			}
		}
	}
	req.includeUsage = options.IncludeUsage
	if req.model == "" {
		return req, badParam("model", "model: is required (miniclaw serves %q)", openAIModel)
	}
	if _, ok := s.modelNamed(req.model); !ok {
		return req, modelNotFound(req.model, "model")
	}
	if n != nil && *n != 1 {
		return req, badParam("n", "n: must be 1, miniclaw gives one choice (got %d)", *n)
	}
	if len(messages) == 0 {
		return req, badParam("messages", "messages: must hold at least one message, the last a user message")
	}
	last := len(messages) - 1
	where := "messages[" + strconv.Itoa(last) + "]"
	msg, derr := protocol.DecodeObject(messages[last], where)
	if derr != nil {
		return req, badParam(where, "%s", derr.Message)
	}
	var role string
	if json.Unmarshal(msg["role"], &role) != nil || role != "user" {
		return req, badParam(where+".role", "%s.role: the last message must have role \"user\" (got %s): it is the new turn, and the session's transcript is the history", where, orMissing(msg["role"]))
	}
	text, aerr := messageText(msg["content"], where+".content")
	if aerr != nil {
		return req, aerr
	}
	req.content = text
	return req, nil
}

// messageText is the text of a user message's content: a string, or an
// array of text parts joined by newlines. Other parts (images, audio,
// files) are refused, naming the part.
func messageText(raw json.RawMessage, where string) (string, *apiError) {
	var text string
	if json.Unmarshal(raw, &text) == nil && string(raw) != "null" {
		if text == "" {
			return "", badParam(where, "%s: must not be empty", where)
		}
		return text, nil
	}
	var parts []json.RawMessage
	if string(raw) == "null" || json.Unmarshal(raw, &parts) != nil {
		return "", badParam(where, "%s: must be a string or an array of text parts (got %s)", where, orMissing(raw))
	}
	texts := make([]string, len(parts))
	for i, p := range parts {
		at := where + "[" + strconv.Itoa(i) + "]"
		var part struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if json.Unmarshal(p, &part) != nil {
			return "", badParam(at, "%s: must be an object such as {\"type\": \"text\", \"text\": \"...\"}", at)
		}
		if part.Type != "text" {
			return "", badParam(at+".type", "%s.type: only text parts are supported, got %q", at, part.Type)
		}
		if part.Text == nil {
			return "", badParam(at+".text", "%s.text: must be a string", at)
		}
		texts[i] = *part.Text
	}
	text = strings.Join(texts, "\n")
	if text == "" {
		return "", badParam(where, "%s: must not be empty", where)
	}
	return text, nil
}

// orMissing is raw JSON for an error message, or "nothing" when absent.
func orMissing(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	return string(raw[:min(len(raw), 40)])
}

// chatCompletions is POST /v1/chat/completions: the last user message runs
// as a turn on the request's session lane (see chatSession), answered as
// one chat.completion or, with stream, as chat.completion.chunk events.
// The turn's context derives from the server, not from the request: a
// client that goes away does not stop it, and the reply is stored.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	if e := s.crossSite(r); e != nil {
		e.write(w)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFrame))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeOpenAIError(w, http.StatusRequestEntityTooLarge, string(protocol.CodeTooLarge), "",
				"request body is over "+strconv.Itoa(maxFrame)+" bytes, the gateway's message limit")
			return
		}
		writeOpenAIError(w, http.StatusBadRequest, string(protocol.CodeBadRequest), "", "request body: "+err.Error())
		return
	}
	req, aerr := s.parseChat(data)
	if aerr != nil {
		aerr.write(w)
		return
	}
	if !s.enter() {
		writeOpenAIError(w, http.StatusServiceUnavailable, string(protocol.CodeShuttingDown), "", "the gateway is shutting down")
		return
	}
	defer s.handlers.Done()
	id, aerr := s.chatSession(r, req.user)
	if aerr != nil {
		aerr.write(w)
		return
	}
	w.Header().Set(sessionHeader, id)
	sink := newTurnSink(req.stream && r.Header.Get(progressHeader) == "1")
	defer sink.leave()
	if q := s.hub.enqueue(id, job{content: req.content, sink: sink, channel: openAIChannel}); q != enqueued {
		code, msg := refusal(q, s.hub.maxBytes)
		writeOpenAIError(w, httpStatus(code), string(code), "", msg)
		return
	}
	c := completion{ID: "chatcmpl-" + strings.ReplaceAll(uuid.NewString(), "-", ""), Created: time.Now().Unix(), Model: req.model}
	if req.stream {
		s.stream(w, r, sink, c, req.includeUsage)
		return
	}
	final, err := awaitEnd(r, sink)
	if err != nil {
		return // the client went away; the turn goes on
	}
	done, aerr := turnEnd(final)
	if aerr != nil {
		// The turn ran: its user message is stored, and miniclaw has
		// retried the provider already. An SDK's automatic retry (on 409
		// and 5xx) would run the message again.
		w.Header().Set("X-Should-Retry", "false")
		aerr.write(w)
		return
	}
	c.Object = "chat.completion"
	writeJSON(w, http.StatusOK, chatCompletion{
		completion: c,
		Choices: []completionChoice{{
			Message:      assistantMessage{Role: "assistant", Content: done.Content},
			FinishReason: finishReason(done.StopReason),
		}},
		Usage: usageOf(done.Usage),
	})
}

// awaitEnd waits for the end of the sink's turn, dropping its chunks.
func awaitEnd(r *http.Request, sink *turnSink) ([]byte, error) {
	for {
		_, final, err := sink.take(r.Context(), nil)
		if err != nil || final != nil {
			return final, err
		}
	}
}

// turnEnd decodes the event that ended a turn: message_done, or the error
// to answer.
func turnEnd(final []byte) (protocol.MessageDone, *apiError) {
	var done protocol.MessageDone
	if err := json.Unmarshal(final, &done); err != nil || done.Type != protocol.TypeMessageDone {
		var e protocol.Error
		if json.Unmarshal(final, &e) != nil || e.Type != protocol.TypeError {
			e = protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("the turn ended with an unexpected event %.80q", final)}
		}
		status := httpStatus(e.Code)
		if e.Code == protocol.CodeAborted { // by a client of the session, e.g. the WebChat's stop button
			status = http.StatusConflict
		}
		return done, &apiError{status: status, code: string(e.Code), msg: e.Message}
	}
	return done, nil
}

// stream answers with server-sent events: a first chunk with the
// assistant role, the reply's text as it comes (and, when asked for, a
// line per tool that starts), a last chunk with the finish reason, the
// usage chunk when asked for, and [DONE]. A turn that fails ends the
// stream with the error, in OpenAI's shape, as its last data line.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, sink *turnSink, c completion, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A write deadline outlives the request on a kept-alive connection.
	defer rc.SetWriteDeadline(time.Time{})
	send := func(v any) bool { return sendEvent(rc, w, protocol.Encode(v)) }
	c.Object = "chat.completion.chunk"
	chunk := func(d delta, finish *string) bool {
		return send(completionChunk{completion: c, Choices: []chunkChoice{{Delta: d, FinishReason: finish}}})
	}
	if !chunk(delta{Role: "assistant", Content: ptr("")}, nil) {
		return
	}
	// A stream silent for long (a turn queued, a tool running) gets SSE
	// comments, which clients skip, so that proxies do not cut it.
	idle := time.NewTicker(cmp.Or(s.opt.Keepalive, defaultKeepalive))
	defer idle.Stop()
	for {
		items, final, err := sink.take(r.Context(), idle.C)
		if err != nil {
			return
		}
		if len(items) == 0 && final == nil {
			if !sendLine(rc, w, ": keepalive\n\n") {
				return
			}
			continue
		}
		for _, it := range items {
			text := it.text
			if it.tool != "" {
				text = "\n\n> tool: " + it.tool + "\n\n"
			}
			if !chunk(delta{Content: &text}, nil) {
				return
			}
		}
		if final == nil {
			continue
		}
		done, aerr := turnEnd(final)
		if aerr != nil {
			send(map[string]openAIError{"error": newOpenAIError(aerr.status, aerr.code, "", aerr.msg)})
			return
		}
		if !chunk(delta{}, ptr(finishReason(done.StopReason))) {
			return
		}
		if includeUsage {
			u := usageOf(done.Usage)
			if !send(completionChunk{completion: c, Choices: []chunkChoice{}, Usage: &u}) {
				return
			}
		}
		sendLine(rc, w, "data: [DONE]\n\n")
		return
	}
}

// sendEvent writes one SSE data line; see sendLine.
func sendEvent(rc *http.ResponseController, w io.Writer, data []byte) bool {
	return sendLine(rc, w, "data: "+string(data)+"\n\n")
}

// sendLine writes SSE lines and flushes them; false when the client cannot
// be written to (gone, or not reading for writeTimeout).
func sendLine(rc *http.ResponseController, w io.Writer, lines string) bool {
	rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := io.WriteString(w, lines); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func ptr[T any](v T) *T { return &v }

// finishReason is OpenAI's finish_reason for a provider's stop reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "length", "model_context_window_exceeded":
		return "length"
	case "refusal", "content_filter":
		return "content_filter"
	}
	return "stop"
}

// The answer shapes, member for member as OpenAI sends them.

// completion is what every answer to one request shares.
type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
}

type chatCompletion struct {
	completion
	Choices []completionChoice `json:"choices"`
	Usage   openAIUsage        `json:"usage"`
}

type completionChoice struct {
	Index        int              `json:"index"`
	Message      assistantMessage `json:"message"`
	FinishReason string           `json:"finish_reason"`
}

type assistantMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type completionChunk struct {
	completion
	Choices []chunkChoice `json:"choices"`
	Usage   *openAIUsage  `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// openAIUsage counts a turn's tokens: every model call of the turn (tool
// rounds included), prompts with their cached parts.
type openAIUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

func usageOf(u *core.Usage) openAIUsage {
	if u == nil {
		return openAIUsage{}
	}
	p := u.Prompt()
	return openAIUsage{PromptTokens: p, CompletionTokens: u.OutputTokens, TotalTokens: p + u.OutputTokens}
}
