package provider

import (
	"net/http"
	"strings"
)

// maxIdlePerHost is how many idle connections to one model API are kept
// for reuse. Go's default is 2, so a gateway running many sessions at once
// opened a new connection (and, on the real APIs, a TLS handshake) for
// most model calls: in bench/'s agent run at 100 sessions, 6,186 TCP
// connections for 10,040 requests.
const maxIdlePerHost = 64

// HTTPClient is the client the providers use by default: the standard
// transport (proxy from the environment, HTTP/2, timeouts) with a pool
// sized for many concurrent sessions. Streams have no overall timeout: a
// long reply may stream for minutes; cancellation comes from the turn.
func HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxIdlePerHost
	t.MaxIdleConns = 4 * maxIdlePerHost
	return &http.Client{Transport: t}
}

// Redact replaces key wherever it appears in an API's message (some quote
// the key they refused), so that no log or status page shows it.
func Redact(msg, key string) string {
	if key == "" {
		return msg
	}
	return strings.ReplaceAll(msg, key, "[redacted]")
}
