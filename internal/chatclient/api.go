package chatclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// apiTimeout bounds one call to the gateway's HTTP API.
const apiTimeout = 10 * time.Second

// apiSession is a session as GET /api/sessions lists it.
type apiSession struct {
	session.Meta
	Busy bool `json:"busy"`
}

// call does one API request with a JSON body (nil for none) and decodes a
// JSON answer of status want into out.
func (g endpoint) call(ctx context.Context, method, path string, body any, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := core.MarshalJSON(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.http+path, rd)
	if err != nil {
		return err
	}
	req.Header = g.header()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s %s: the gateway needs a token: pass --token or set MINI_OPENCLAW_TOKEN", method, path)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, apiErrorBody(resp))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// createSession asks the gateway for a new session and returns its ID.
func (g endpoint) createSession(ctx context.Context) (string, error) {
	var m apiSession
	if err := g.call(ctx, http.MethodPost, "/api/sessions", struct{}{}, http.StatusCreated, &m); err != nil {
		return "", err
	}
	return m.SessionID, nil
}

// listSessions returns all sessions, most recently updated first.
func (g endpoint) listSessions(ctx context.Context) ([]apiSession, error) {
	var body struct {
		Sessions []apiSession `json:"sessions"`
	}
	if err := g.call(ctx, http.MethodGet, "/api/sessions", nil, http.StatusOK, &body); err != nil {
		return nil, err
	}
	return body.Sessions, nil
}

// lastMessages returns a session's busy flag and its last n messages.
func (g endpoint) lastMessages(ctx context.Context, id string, n int) (bool, session.Page, error) {
	var body struct {
		Session apiSession `json:"session"`
		session.Page
	}
	err := g.call(ctx, http.MethodGet, fmt.Sprintf("/api/sessions/%s?limit=%d", id, n), nil, http.StatusOK, &body)
	return body.Session.Busy, body.Page, err
}
