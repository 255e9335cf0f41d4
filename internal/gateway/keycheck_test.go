package gateway_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/provider/anthropic"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

// anthropicModels and anthropic401 are the Models API's answers to GET
// /v1/models, as the real API sends them.
const (
	anthropicModels = `{"data":[{"created_at":"2025-05-22T00:00:00Z","display_name":"Claude Sonnet 4","id":"claude-sonnet-4-20250514","type":"model"}],"first_id":"claude-sonnet-4-20250514","has_more":true,"last_id":"claude-sonnet-4-20250514"}`
	anthropic401    = `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`
)

func jsonReply(status int, body string) pt.Reply {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// readyzWhenChecked waits for the startup key check to finish and returns
// /readyz's status code and body.
func readyzWhenChecked(t *testing.T, ts *testServer) (int, map[string]any) {
	t.Helper()
	var code int
	var h map[string]any
	eventually(t, "the provider key's check", func() bool {
		var b []byte
		code, b = ts.do(t, "GET", "/readyz", nil, nil)
		h = nil
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("readyz body %s: %v", b, err)
		}
		return h["providerCheck"] != "checking"
	})
	return code, h
}

// A key the provider refuses is found at startup with one request listing
// the models: the log says so as an error naming ANTHROPIC_API_KEY (never
// the key), and /readyz is not ready and says why. An accepted key, and a
// check that could not reach the API (a warning), leave it ready.
func TestProviderKeyCheckedAtStartup(t *testing.T) {
	const key = "sk-ant-startup-check-key"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() // a port nothing answers
	ln.Close()
	cases := []struct {
		name   string
		api    *pt.FakeAPI
		code   int
		check  string // providerCheck's start
		status string
		log    string // in the log
	}{
		{"refused", pt.NewFakeAPI(t, jsonReply(http.StatusUnauthorized, anthropic401)), http.StatusServiceUnavailable,
			"rejected: anthropic: the API key was refused (401 invalid x-api-key): check ANTHROPIC_API_KEY", "not_ready",
			`level=ERROR msg="the model provider refused the API key: every message will fail until it is fixed" provider=anthropic err="anthropic: the API key was refused (401 invalid x-api-key): check ANTHROPIC_API_KEY"`},
		{"accepted", pt.NewFakeAPI(t, jsonReply(http.StatusOK, anthropicModels)), http.StatusOK, "ok", "ready",
			`level=INFO msg="the model provider accepted the API key" provider=anthropic`},
		{"unreachable", nil, http.StatusOK, "unchecked: could not check the key: anthropic: list models: ", "ready",
			`level=WARN msg="could not check the API key at startup" provider=anthropic`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := closed
			if tc.api != nil {
				url = tc.api.URL()
			}
			ts := startServer(t, anthropic.New(anthropic.Options{APIKey: key, BaseURL: url}), func(o *gateway.Options) { o.CheckProviderKey = true })
			code, h := readyzWhenChecked(t, ts)
			check, _ := h["providerCheck"].(string)
			if code != tc.code || h["status"] != tc.status || !strings.HasPrefix(check, tc.check) {
				t.Errorf("readyz = %d %v, want %d, status %s, providerCheck %q…", code, h, tc.code, tc.status, tc.check)
			}
			if tc.api != nil {
				if req := tc.api.Only(t); req.Method != http.MethodGet || req.Path != "/v1/models" {
					t.Errorf("the check sent %s %s, want GET /v1/models", req.Method, req.Path)
				}
			}
			logs := ts.logs.String()
			if !strings.Contains(logs, tc.log) || strings.Contains(logs, key) || strings.Contains(check, key) {
				t.Errorf("log:\n%s\nwant the line %s, and never the key", logs, tc.log)
			}
		})
	}
}
