package gateway

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// The gateway drives a shell, so a web page the user merely visits must not
// reach it. Two browser attacks are closed here, before any route runs:
//
//   - DNS rebinding: a page on evil.example whose name is re-pointed at
//     127.0.0.1 is same-origin with the gateway as far as the browser knows,
//     and sends Host: evil.example. Without a token, only loopback names and
//     the operator's AllowedHosts are served (checkHost); with a token the
//     page cannot authenticate, but its Origin, equal to its Host, no longer
//     counts as the gateway's own (checkOrigin).
//   - CSRF: a form or a no-cors fetch can POST text/plain to any site
//     without a preflight. Writes require Content-Type: application/json
//     (which a cross-site page cannot send without a CORS preflight the
//     gateway never grants) and refuse a foreign Origin (sameSite).

// listedHost reports whether host (a Host header, port optional) is a
// loopback name or address, or one of the operator's AllowedHosts.
func (s *Server) listedHost(hostport string) bool {
	host := hostName(hostport)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, h := range s.opt.AllowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// hostName is the host of a Host header without its port and brackets.
func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// checkHost answers 421 to a request whose Host is not listed, when no token
// guards the gateway.
func (s *Server) checkHost(next http.Handler) http.Handler {
	if s.opt.Token != "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.listedHost(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		s.log.Warn("request refused: Host not allowed (DNS rebinding?)", "host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
		msg := fmt.Sprintf("miniclaw: Host %q is not allowed. Without a token the gateway answers only to localhost, 127.0.0.1 and [::1]; "+
			"to reach it under another name, list the name in MINI_OPENCLAW_ALLOWED_HOSTS (--allowed-hosts) or set MINI_OPENCLAW_TOKEN.", r.Host)
		if isOpenAIPath(r.URL.Path) {
			writeOpenAIError(w, http.StatusMisdirectedRequest, "misdirected_request", "", msg)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintln(w, msg)
	})
}

// checkOrigin accepts a request without an Origin header (not a browser),
// from the gateway's own page, or from an origin matching OriginPatterns
// (host[:port] or scheme://host[:port] patterns, as path.Match, as the
// WebSocket library matches them). The gateway's own page is an Origin equal
// to Host, but only when Host is a name no DNS answer can re-point here
// behind the user's back: a listed host or an IP address.
func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		if strings.EqualFold(u.Host, r.Host) && (s.listedHost(r.Host) || net.ParseIP(hostName(r.Host)) != nil) {
			return nil
		}
		for _, p := range s.opt.OriginPatterns {
			target := u.Host
			if strings.Contains(p, "://") {
				target = u.Scheme + "://" + u.Host
			}
			if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("Origin %q is not this gateway's page (Host %q) nor in MINI_OPENCLAW_ALLOWED_ORIGINS", origin, r.Host)
}

// sameSite guards a route that changes state: the body must be declared
// JSON, even when empty, and a browser's Origin must be allowed.
func (s *Server) sameSite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.crossSite(r); e != nil {
			writeError(w, e.status, protocol.Code(e.code), e.msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossSite is why a write which a cross-site page could have sent is
// refused (see sameSite), or nil when r may go on.
func (s *Server) crossSite(r *http.Request) *apiError {
	if err := s.checkOrigin(r); err != nil {
		s.log.Warn("write refused: foreign Origin (cross-site request?)", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr, "path", r.URL.Path)
		return &apiError{status: http.StatusForbidden, code: string(protocol.CodeForbidden), msg: err.Error()}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: string(protocol.CodeBadRequest),
			msg: fmt.Sprintf("Content-Type must be application/json on %s %s, even without a body (got %q)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))}
	}
	return nil
}
