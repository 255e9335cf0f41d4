package gateway_test

import (
	"net/http"
	"testing"

	"github.com/miniclaw/miniclaw/internal/gateway"
)

// /readyz says how bash is confined, and warns loudly when it is not.
func TestReadyzSandbox(t *testing.T) {
	ts := echoServer(t, func(o *gateway.Options) {
		o.Sandbox, o.SandboxWarning = "none: the kernel has no Landlock", "bash runs UNCONFINED"
	})
	var h struct {
		Status, Sandbox, SandboxWarning string
	}
	ts.doJSON(t, "GET", "/readyz", nil, http.StatusOK, &h)
	if h.Status != "ready" || h.Sandbox != "none: the kernel has no Landlock" || h.SandboxWarning != "bash runs UNCONFINED" {
		t.Errorf("readyz = %+v", h)
	}
}
