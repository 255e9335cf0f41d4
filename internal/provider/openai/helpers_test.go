package openai

import (
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

// requestID is the header the Chat Completions API sends with every stream.
var requestID = []string{"x-request-id", "req_3f1c2b6a9d8e4f7a"}

// sse streams a testdata fixture as the Chat Completions API does.
func sse(t testing.TB, name string) pt.Reply { return pt.SSE(t, name, requestID...) }

// newProvider is a Provider that talks to the fake API, as to a server
// whose API lives under /v1.
func newProvider(api *pt.FakeAPI, maxRetries int) *Provider {
	return New(Options{APIKey: "k", BaseURL: api.URL() + "/v1", MaxRetries: maxRetries})
}

func simpleRequest() core.Request { return pt.SimpleRequest("gpt-4o") }
