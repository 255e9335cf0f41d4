package anthropic

import (
	"os"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

// TestMain keeps the SDK's environment defaults (credentials, base URL,
// custom headers, profiles) from leaking into the tests: every test passes
// what it needs through Options.
func TestMain(m *testing.M) {
	for _, k := range []string{
		"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
		"ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_PROFILE",
	} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// requestID is the header the Messages API sends with every stream.
var requestID = []string{"request-id", "req_011CSHoEeqs5C35K2UUqR7Ft"}

// sse streams a testdata fixture as the Messages API does.
func sse(t testing.TB, name string) pt.Reply { return pt.SSE(t, name, requestID...) }

// newProvider is a Provider that talks to the fake API.
func newProvider(api *pt.FakeAPI, maxRetries int) *Provider {
	return New(Options{APIKey: "test-key", BaseURL: api.URL(), MaxRetries: maxRetries})
}

func simpleRequest() core.Request { return pt.SimpleRequest("claude-sonnet-4-20250514") }
