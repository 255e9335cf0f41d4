package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesThePageAndItsFiles(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{
		"/":                   "text/html; charset=utf-8",
		"/static/app.js":      "text/javascript; charset=utf-8",
		"/static/markdown.js": "text/javascript; charset=utf-8",
		"/static/app.css":     "text/css; charset=utf-8",
	} {
		w := get(t, h, path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len(), ctype)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "ws:") {
			t.Errorf("GET %s: CSP %q is not strict", path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
	for _, path := range []string{"/index.html", "/static/", "/static/nope.js", "/app.js", "/static/../web.go"} {
		if w := get(t, h, path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
}

// A browser revalidates (no-cache) and gets 304 while the file is the same.
func TestRevalidatesWithETag(t *testing.T) {
	h := Handler()
	w := get(t, h, "/static/app.js")
	etag := w.Header().Get("ETag")
	if etag == "" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, w.Header().Get("Cache-Control"))
	}
	if w := get(t, h, "/static/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
}

// Every file the page and its modules load is served: a renamed file
// would otherwise show up only as a blank page.
func TestReferencedFilesExist(t *testing.T) {
	h := Handler()
	refs := map[string]*regexp.Regexp{
		"/":              regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`),
		"/static/app.js": regexp.MustCompile(`import .* from "\./([^"]+)"`),
	}
	for page, re := range refs {
		body := get(t, h, page).Body.String()
		found := re.FindAllStringSubmatch(body, -1)
		if len(found) == 0 {
			t.Errorf("%s references no files; the test's pattern is stale", page)
		}
		for _, m := range found {
			path := m[1]
			if !strings.HasPrefix(path, "/") {
				path = "/static/" + path
			}
			if w := get(t, h, path); w.Code != http.StatusOK {
				t.Errorf("%s loads %s: %d", page, path, w.Code)
			}
		}
	}
	if body := get(t, h, "/").Body.String(); strings.Contains(body, "<script>") || strings.Contains(body, "<style") || strings.Contains(body, " style=") {
		t.Error("index.html has inline script or style, which the CSP blocks")
	}
}
