package chatclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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
		return statusError{resp.StatusCode, fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, apiErrorBody(resp))}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// statusError is an API answer of another status than the one expected.
type statusError struct {
	status int
	msg    string
}

func (e statusError) Error() string { return e.msg }

// cliChannel is the channel of the sessions the terminal client starts, so
// that lists tell them from the WebChat's.
const cliChannel = "cli"

// createSession makes session id ("": a new ID) a cli session unless it
// exists already, and returns its ID and whether it was created. The
// gateway would make a session a WebSocket names of channel webchat, so
// the client makes it first.
func (g endpoint) createSession(ctx context.Context, id string) (string, bool, error) {
	body := struct {
		SessionID string `json:"sessionId,omitempty"`
		Channel   string `json:"channel"`
	}{id, cliChannel}
	var m apiSession
	err := g.call(ctx, http.MethodPost, "/api/sessions", body, http.StatusCreated, &m)
	var se statusError
	if errors.As(err, &se) && se.status == http.StatusConflict {
		return id, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return m.SessionID, true, nil
}

// startSession picks the session to attach to at start: the one id names
// exactly or as the unique prefix of its ID, else a new one with ID id;
// with no id, the most recently active session of any channel (the
// conversation the user left last, in the WebChat or here), else a new
// one. New ones are cli sessions. An ambiguous prefix is an error naming
// its matches.
func (g endpoint) startSession(ctx context.Context, id string) (string, bool, error) {
	list, err := g.listSessions(ctx)
	if err != nil {
		return "", false, err
	}
	switch matches := matchIDs(list, id); {
	case id == "" && len(list) > 0:
		return list[0].SessionID, false, nil
	case id != "" && len(matches) == 1:
		return matches[0], false, nil
	case len(matches) > 1:
		return "", false, fmt.Errorf("session ID %s %w: %s; give more of it", id, errAmbiguous, strings.Join(matches, ", "))
	}
	return g.createSession(ctx, id)
}

// errAmbiguous is a session ID prefix that starts several IDs.
var errAmbiguous = errors.New("starts several sessions")

// matchSessions returns the ID of the session named id exactly, else the
// IDs that start with id.
func (g endpoint) matchSessions(ctx context.Context, id string) ([]string, error) {
	list, err := g.listSessions(ctx)
	if err != nil {
		return nil, err
	}
	return matchIDs(list, id), nil
}

func matchIDs(list []apiSession, id string) []string {
	var matches []string
	for _, s := range list {
		if s.SessionID == id {
			return []string{id}
		}
		if id != "" && strings.HasPrefix(s.SessionID, id) {
			matches = append(matches, s.SessionID)
		}
	}
	return matches
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
	s, page, err := g.page(ctx, id, -1, n)
	return s.Busy, page, err
}

// page returns a session and up to limit of its transcript lines from line
// offset on; a negative offset means the last limit lines.
func (g endpoint) page(ctx context.Context, id string, offset, limit int) (apiSession, session.Page, error) {
	var body struct {
		Session apiSession `json:"session"`
		session.Page
	}
	path := fmt.Sprintf("/api/sessions/%s?limit=%d", url.PathEscape(id), limit)
	if offset >= 0 {
		path += fmt.Sprintf("&offset=%d", offset)
	}
	err := g.call(ctx, http.MethodGet, path, nil, http.StatusOK, &body)
	return body.Session, body.Page, err
}

// historyPage is how many transcript lines recentTurns reads at a time.
const historyPage = 200

// recentTurns returns a session's last n turns (its messages from the n-th
// last user message on, or all when it has fewer) and how many transcript
// lines come before them. It reads pages backwards from the end until it
// has seen n user messages.
func (g endpoint) recentTurns(ctx context.Context, id string, n int) ([]core.Message, int, error) {
	var msgs []core.Message
	offset, limit := -1, historyPage
	for {
		_, page, err := g.page(ctx, id, offset, limit)
		if err != nil {
			return nil, 0, err
		}
		msgs = append(page.Messages, msgs...)
		users := 0
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Role == core.RoleUser {
				if users++; users == n {
					return msgs[i:], page.Offset + i, nil
				}
			}
		}
		if page.Offset == 0 || len(page.Messages) == 0 {
			return msgs, 0, nil
		}
		offset = max(0, page.Offset-historyPage)
		limit = page.Offset - offset
	}
}

// providerNotice is what the client says at connect about the gateway's
// model provider: the gateway's own warning (/readyz providerWarning) when
// it has one, else a note when it runs on the offline scripted provider,
// else "". A failed /readyz says nothing: the chat does not depend on it,
// and its own errors speak for themselves.
func (g endpoint) providerNotice(ctx context.Context) string {
	var h struct {
		Provider        string `json:"provider"`
		ProviderWarning string `json:"providerWarning"`
	}
	if g.call(ctx, http.MethodGet, "/readyz", nil, http.StatusOK, &h) != nil {
		return ""
	}
	if h.ProviderWarning == "" && h.Provider == "scripted" {
		return "The gateway runs on the offline scripted provider: no model is called."
	}
	return h.ProviderWarning
}
