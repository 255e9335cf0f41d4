package gateway

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/mcp"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/safeopen"
	"github.com/miniclaw/miniclaw/internal/session"
)

const (
	maxAPIBody  = 64 << 10
	defaultPage = 100
	maxPage     = 1000
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /ws", s.auth(http.HandlerFunc(s.serveWS)))
	// OpenClaw's clients send the token in their connect request, not on
	// the upgrade: serveOpenClaw checks it there.
	mux.HandleFunc("GET /openclaw", s.serveOpenClaw)
	mux.HandleFunc("GET /{$}", s.root)
	mux.HandleFunc("GET /static/", s.page) // the WebChat's scripts and styles
	mux.Handle("GET /api/sessions", s.auth(http.HandlerFunc(s.listSessions)))
	mux.Handle("POST /api/sessions", s.auth(s.sameSite(http.HandlerFunc(s.createSession))))
	mux.Handle("GET /api/sessions/{id}", s.auth(http.HandlerFunc(s.getSession)))
	mux.Handle("POST /api/sessions/{id}/fork", s.auth(s.sameSite(http.HandlerFunc(s.forkSession))))
	mux.Handle("POST /api/sessions/{id}/archive", s.auth(s.sameSite(http.HandlerFunc(s.archiveSession))))
	mux.Handle("POST /api/sessions/{id}/rename", s.auth(s.sameSite(http.HandlerFunc(s.renameSession))))
	mux.Handle("POST /api/sessions/{id}/compact", s.auth(s.sameSite(http.HandlerFunc(s.compactSession))))
	s.openAIRoutes(mux)
	return s.checkHost(mux)
}

// root serves the WebChat, or upgrades to WebSocket: the seed's clients do
// new WebSocket("ws://localhost:3210") without a path.
func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.auth(http.HandlerFunc(s.serveWS)).ServeHTTP(w, r)
		return
	}
	s.page(w, r)
}

// page serves the WebChat: the page at / and its files under /static/.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if s.opt.Page == nil {
		http.NotFound(w, r)
		return
	}
	s.opt.Page.ServeHTTP(w, r)
}

// auth requires the gateway token, when one is set, as a Bearer header or a
// ?token= query parameter (browsers cannot set headers on a WebSocket).
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opt.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if cred, ok := bearer(r); ok {
			got = cred
		}
		if !s.tokenIs(got) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="miniclaw"`)
			writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "a valid token is required: send Authorization: Bearer <token> or ?token=<token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer is the credential of r's Authorization header when the header is
// there: only the Bearer scheme (case-insensitive, RFC 7235) carries one,
// any other scheme gives "".
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, cred, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return cred, true
}

// tokenIs reports whether got is the gateway token. The comparison takes
// the same time whatever the guess.
func (s *Server) tokenIs(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.opt.Token)) == 1
}

type health struct {
	Status          string  `json:"status"`
	Reason          string  `json:"reason,omitempty"`
	Connections     int64   `json:"connections"`
	Sessions        int     `json:"sessions"`
	QueuedBytes     int     `json:"queuedBytes"` // user messages waiting in lanes, against Options.MaxQueuedBytes
	Uptime          float64 `json:"uptime"`      // seconds
	Provider        string  `json:"provider,omitempty"`
	ProviderWarning string  `json:"providerWarning,omitempty"`
	ProviderCheck   string  `json:"providerCheck,omitempty"` // the startup check of the provider's key
	Sandbox         string  `json:"sandbox,omitempty"`
	SandboxWarning  string  `json:"sandboxWarning,omitempty"`
	// MCP is each configured MCP server's state; one that is starting,
	// failed or untrusted does not make the gateway not ready (the agent
	// works without its tools).
	MCP []mcp.Status `json:"mcp,omitempty"`
	// Store is where sessions are: "files" or "postgres"; Database, on
	// postgres, is "ok" or why the database does not answer (never its
	// password: the store's errors name it without).
	Store    string `json:"store,omitempty"`
	Database string `json:"database,omitempty"`
}

func (s *Server) health(status string) health {
	return health{
		Status:      status,
		Connections: s.Connections(),
		Sessions:    s.store.Len(),
		QueuedBytes: s.hub.queuedBytes(),
		Uptime:      time.Since(s.start).Seconds(),
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.health("ok"))
}

// readyz answers 200 when the store takes writes and a provider is set up
// whose key was not refused.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	h := s.health("ready")
	h.Sandbox, h.SandboxWarning = s.opt.Sandbox, s.opt.SandboxWarning
	if s.opt.MCP != nil {
		h.MCP = s.opt.MCP()
	}
	code := http.StatusOK
	if s.opt.Runtime == nil || s.opt.Runtime.Provider == nil {
		h.Status, h.Reason, code = "not_ready", "no model provider is configured", http.StatusServiceUnavailable
	} else {
		h.Provider = s.opt.Runtime.Provider.Name()
		h.ProviderWarning = s.opt.ProviderWarning
	}
	if kc := s.keyCheck.Load(); kc != nil {
		h.ProviderCheck = kc.state
		if kc.rejected {
			h.Status, h.Reason, code = "not_ready", "the model provider refused the API key", http.StatusServiceUnavailable
		}
	}
	writable := s.store.CheckWritable()
	h.Store = "files"
	if _, files := s.store.(filesStore); !files {
		h.Store, h.Database = "postgres", "ok"
		if writable != nil {
			h.Database = writable.Error()
		}
	}
	if err := writable; err != nil {
		h.Status, h.Reason, code = "not_ready", "session store is not writable: "+err.Error(), http.StatusServiceUnavailable
	} else if err := s.checkDiskFree(); err != nil {
		h.Status, h.Reason, code = "not_ready", err.Error(), http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// checkDiskFree reports an error when the session store's disk has less
// free space (for this user) than the floor: a full disk fails every
// append, so the gateway is not ready although a tiny probe file fits. A
// store in a database has no directory here: the database checks its own.
func (s *Server) checkDiskFree() error {
	files, ok := s.store.(filesStore)
	if !ok {
		return nil
	}
	var st unix.Statfs_t
	dir := files.Dir()
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("cannot read the free space of %s: %w", dir, err)
	}
	bsize := uint64(st.Bsize)
	free, size := uint64(st.Bavail)*bsize, uint64(st.Blocks)*bsize
	floor := s.opt.MinFreeDisk
	if floor == 0 {
		floor = min(defaultMinFreeDisk, size/100)
	}
	if free < floor {
		return fmt.Errorf("the disk of %s is full: %d MiB free, below the floor of %d MiB", dir, free>>20, floor>>20)
	}
	return nil
}

// filesStore is the files store (session.Store) as /readyz tells it from
// a store in a database: it has a sessions directory.
type filesStore interface{ Dir() string }

// defaultMinFreeDisk is the free-space floor of /readyz on disks over 6.4 GB
// (on smaller ones, 1% of the disk).
const defaultMinFreeDisk = 64 << 20

// sessionInfo is a session in API answers: its meta and whether a turn runs.
type sessionInfo struct {
	session.Meta
	Busy bool `json:"busy"`
}

func (s *Server) info(m session.Meta) sessionInfo {
	return s.infoOf(m, s.running())
}

// infoOf is info with the sessions whose turns run on other gateways.
func (s *Server) infoOf(m session.Meta, elsewhere map[string]bool) sessionInfo {
	return sessionInfo{Meta: m, Busy: s.hub.busy(m.SessionID) || elsewhere[m.SessionID]}
}

// running is the set of sessions with a turn running on any gateway, when
// the store can tell (PostgreSQL's turns table; nil otherwise, the hub
// knowing this gateway's own). It is a hint for lists: an error is logged
// and reads as none.
func (s *Server) running() map[string]bool {
	st, ok := s.store.(interface {
		Running() (map[string]bool, error)
	})
	if !ok {
		return nil
	}
	ids, err := st.Running()
	if err != nil {
		s.log.Warn("the sessions whose turns run on other gateways could not be read", "err", err)
	}
	return ids
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	metas, err := s.store.List()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := make([]sessionInfo, len(metas))
	elsewhere := s.running()
	for i, m := range metas {
		out[i] = s.infoOf(m, elsewhere)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// createSession makes a new session: {"sessionId"?, "channel"?} → 201.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SessionID string `json:"sessionId"`
		Channel   string `json:"channel"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.SessionID == "" {
		body.SessionID = uuid.NewString()
	} else if err := protocol.ValidateSessionID(body.SessionID); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "sessionId: "+err.Error())
		return
	}
	if body.Channel == "" {
		body.Channel = session.DefaultChannel
	} else if err := protocol.ValidateChannel(body.Channel); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "channel: "+err.Error())
		return
	}
	m, created, err := s.store.Create(body.SessionID, body.Channel)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if !created {
		writeError(w, http.StatusConflict, protocol.CodeConflict, "session "+body.SessionID+" already exists")
		return
	}
	writeJSON(w, http.StatusCreated, s.info(m))
}

// getSession returns a session's meta and a page of its messages:
// ?offset=N&limit=M (lines from N), or without offset the last M lines.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	limit, ok := intParam(w, q.Get("limit"), "limit", defaultPage, 1, maxPage)
	if !ok {
		return
	}
	offset, ok := intParam(w, q.Get("offset"), "offset", -1, 0, 1<<31-1)
	if !ok {
		return
	}
	m, err := s.store.Get(id)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	page, err := s.store.Page(id, offset, limit)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Session sessionInfo `json:"session"`
		session.Page
	}{s.info(m), page})
}

// forkSession copies the first N messages into a new session:
// {"messages"?: N (default all), "sessionId"?} → 201.
func (s *Server) forkSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Messages  int    `json:"messages"`
		SessionID string `json:"sessionId"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Messages < 0 {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "messages: must be 0 (all) or more")
		return
	}
	if body.SessionID != "" {
		if err := protocol.ValidateSessionID(body.SessionID); err != nil {
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "sessionId: "+err.Error())
			return
		}
		if _, err := s.store.Get(body.SessionID); err == nil {
			writeError(w, http.StatusConflict, protocol.CodeConflict, "session "+body.SessionID+" already exists")
			return
		}
	}
	m, corrupt, err := s.store.Fork(r.PathValue("id"), body.Messages, body.SessionID)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		sessionInfo
		Skipped []session.LineError `json:"skipped,omitempty"`
	}{s.info(m), corrupt})
}

// archiveSession moves a session out of the index; refused while it runs.
func (s *Server) archiveSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.hub.busy(id) {
		writeError(w, http.StatusConflict, protocol.CodeConflict, "session "+id+" has a turn running; abort it or wait")
		return
	}
	path, err := s.store.Archive(id)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sessionId": id, "archivedTo": path})
}

// renameSession sets a session's title: {"title": "..."} → 200. The title
// is trimmed; empty, over the store's limit or with a control character it
// is a 400 that says which.
func (s *Server) renameSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Title string `json:"title"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	title := strings.TrimSpace(body.Title)
	if err := session.ValidateTitle(title); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	m, err := s.store.Rename(r.PathValue("id"), title)
	if err != nil {
		writeError(w, statusOf(err), codeOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.info(m))
}

// decodeBody reads an optional JSON object body into the struct v points
// to, strictly: members by their exact json tag names (encoding/json alone
// would fold case and take "SESSIONID" for "sessionId"), each at most once,
// nothing unknown. It writes the error and returns false when the body is bad.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "request body is over "+strconv.Itoa(maxAPIBody)+" bytes")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "request body: "+err.Error())
		return false
	case len(bytes.TrimSpace(data)) == 0:
		return true
	}
	fields, derr := protocol.DecodeObject(data, "request body")
	if derr != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, derr.Message)
		return false
	}
	names := jsonNames(v)
	for name := range fields {
		if !slices.Contains(names, name) {
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest,
				fmt.Sprintf("request body: unknown field %q (fields, case-sensitive: %s)", name, strings.Join(names, ", ")))
			return false
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

// jsonNames are the json tag names of the fields of the struct v points to.
func jsonNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return names
}

func intParam(w http.ResponseWriter, v, name string, def, lo, hi int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, name+": must be a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
		return 0, false
	}
	return n, true
}

// storeError answers a session store error: not found (a session archived
// by another process included) and a bad ID with their message, which names
// the session and no file; anything else is a 500 whose detail, which names
// files of the data dir, goes to the log only.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err), err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("session store error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "the session store failed; the gateway's log says why"
		// A special file in place of a session's file is the operator's
		// to fix: say what it is, by its base name only.
		if te := (*safeopen.TypeError)(nil); errors.As(err, &te) {
			msg = fmt.Sprintf("the session store failed: %s", &safeopen.TypeError{Path: filepath.Base(te.Path), Mode: te.Mode, Want: te.Want})
		}
	}
	writeError(w, status, codeOf(err), msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	core.NewJSONEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code protocol.Code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}
