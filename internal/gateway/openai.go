package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// The OpenAI-compatible endpoint (docs/openai-endpoint.md): miniclaw's agent
// served as a model under /v1, in the shapes the official openai clients
// parse, so that Open WebUI, LibreChat, Continue, the SDKs and curl scripts
// can talk to it. A request runs one turn on a session's lane like a
// WebSocket message; its events also reach the session's WebSocket clients.

const (
	// openAIModel is the model ID the agent is listed under.
	openAIModel = "miniclaw"
	// openAIChannel is the channel of the sessions the endpoint creates.
	openAIChannel = "openai"
	// sessionHeader names the session of a request, and of its answer.
	sessionHeader = "X-Miniclaw-Session"
	// progressHeader, set to 1, streams tool starts as text.
	progressHeader = "X-Miniclaw-Tool-Progress"
)

// openAIRoutes registers the /v1 routes on mux. Every answer under /v1/,
// errors included, is in OpenAI's shape.
func (s *Server) openAIRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/models", s.openAIAuth(http.HandlerFunc(s.listModels)))
	mux.Handle("GET /v1/models/{model}", s.openAIAuth(http.HandlerFunc(s.getModel)))
	mux.Handle("POST /v1/chat/completions", s.openAIAuth(http.HandlerFunc(s.chatCompletions)))
	mux.Handle("/v1/", s.openAIAuth(http.HandlerFunc(openAINotFound)))
}

// isOpenAIPath reports whether path is under the OpenAI-compatible endpoint.
func isOpenAIPath(path string) bool { return strings.HasPrefix(path, "/v1/") }

// openAIAuth requires the gateway token, when one is set, as a Bearer
// header: what every OpenAI client sends as its API key.
func (s *Server) openAIAuth(next http.Handler) http.Handler {
	if s.opt.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, sent := bearer(r)
		if !s.tokenIs(got) {
			msg := "Incorrect API key provided: use the miniclaw gateway's token (MINI_OPENCLAW_TOKEN) as the API key."
			if !sent {
				msg = "You didn't provide an API key: send the miniclaw gateway's token (MINI_OPENCLAW_TOKEN) as Authorization: Bearer <token>."
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="miniclaw"`)
			writeOpenAIError(w, http.StatusUnauthorized, "invalid_api_key", "", msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// openAINotFound answers a /v1 path no route serves: 405 with Allow when
// the path exists for another method, else 404.
func openAINotFound(w http.ResponseWriter, r *http.Request) {
	allow := ""
	switch p := r.URL.Path; {
	case p == "/v1/models", strings.HasPrefix(p, "/v1/models/") && !strings.Contains(p[len("/v1/models/"):], "/"):
		allow = "GET, HEAD"
	case p == "/v1/chat/completions":
		allow = "POST"
	}
	if allow != "" {
		w.Header().Set("Allow", allow)
		writeOpenAIError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", fmt.Sprintf("%s %s is not supported: use %s", r.Method, r.URL.Path, allow))
		return
	}
	writeOpenAIError(w, http.StatusNotFound, "unknown_url", "", fmt.Sprintf("Unknown request URL: %s %s. miniclaw serves GET /v1/models and POST /v1/chat/completions.", r.Method, r.URL.Path))
}

// openAIError is an error in OpenAI's shape. Param names the request field
// at fault, when one is; Code is OpenAI's code where it has one
// (invalid_api_key, model_not_found), else miniclaw's.
type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// newOpenAIError builds the error of an answer with HTTP status.
func newOpenAIError(status int, code, param, msg string) openAIError {
	e := openAIError{Message: msg, Type: errorType(status), Code: code}
	if param != "" {
		e.Param = &param
	}
	return e
}

func writeOpenAIError(w http.ResponseWriter, status int, code, param, msg string) {
	writeJSON(w, status, map[string]openAIError{"error": newOpenAIError(status, code, param, msg)})
}

// errorType is OpenAI's error type for an HTTP status.
func errorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// model is an entry of GET /v1/models. Provider and ProviderModel say
// what runs behind the agent.
type model struct {
	ID            string `json:"id"`
	Object        string `json:"object"`
	Created       int64  `json:"created"`
	OwnedBy       string `json:"owned_by"`
	Provider      string `json:"provider,omitempty"`
	ProviderModel string `json:"provider_model,omitempty"`
}

// modelNamed is the model entry of id when requests may name it: the
// agent's own name or the provider's model name it runs.
func (s *Server) modelNamed(id string) (model, bool) {
	m := model{ID: id, Object: "model", Created: s.start.Unix(), OwnedBy: openAIModel}
	if rt := s.opt.Runtime; rt != nil {
		m.ProviderModel = rt.Model
		if rt.Provider != nil {
			m.Provider = rt.Provider.Name()
		}
	}
	return m, id == openAIModel || id != "" && id == m.ProviderModel
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	m, _ := s.modelNamed(openAIModel)
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", []model{m}})
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	m, ok := s.modelNamed(r.PathValue("model"))
	if !ok {
		modelNotFound(m.ID, "").write(w)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func modelNotFound(id, param string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "model_not_found", param: param,
		msg: fmt.Sprintf("The model %q does not exist: miniclaw serves the model %q.", id, openAIModel)}
}

// chatSession picks the session of a chat completion and makes sure it
// exists: the one the X-Miniclaw-Session header names, else the one of the
// Open WebUI chat (its X-OpenWebUI-Chat-Id header), else the one of the
// request's user, else a new one. A failure is the error to answer.
func (s *Server) chatSession(r *http.Request, user string) (string, *apiError) {
	id := r.Header.Get(sessionHeader)
	chat := r.Header.Get(openWebUIChatHeader)
	switch {
	case id != "":
		if err := protocol.ValidateSessionID(id); err != nil {
			return "", &apiError{status: http.StatusBadRequest, code: string(protocol.CodeBadRequest), msg: sessionHeader + ": " + err.Error()}
		}
	case chat != "":
		id = derivedSession("openwebui", chat)
	case user != "":
		id = derivedSession(openAIChannel, user)
	default:
		id = openAIChannel + "-" + uuid.NewString()
	}
	if _, _, err := s.store.Create(id, openAIChannel); err != nil {
		return "", &apiError{status: statusOf(err), code: string(codeOf(err)), msg: "cannot open session " + id + ": " + err.Error()}
	}
	return id, nil
}

// openWebUIChatHeader is how Open WebUI names its chat, when it forwards
// user info (ENABLE_FORWARD_USER_INFO_HEADERS=true): one chat, one session.
const openWebUIChatHeader = "X-OpenWebUI-Chat-Id"

// derivedSession is the session of a key (an OpenAI user, an Open WebUI
// chat): prefix, '-', the key's first 48 characters with each one a
// session ID cannot hold replaced by '_', '-' and 12 hex digits of the
// key's SHA-256, so that keys which differ only in those characters get
// sessions of their own.
func derivedSession(prefix, key string) string {
	readable := make([]byte, 0, 48)
	for _, c := range key {
		if len(readable) == cap(readable) {
			break
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			c = '_'
		}
		readable = append(readable, byte(c))
	}
	sum := sha256.Sum256([]byte(key))
	return prefix + "-" + string(readable) + "-" + hex.EncodeToString(sum[:6])
}
