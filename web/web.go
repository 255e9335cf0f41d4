// Package web embeds the WebChat so the binary serves it with no files and
// no network at run time: the page, its module scripts and its styles. There
// is no build step; what is in this directory is what the browser gets.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"time"
)

//go:embed index.html static
var files embed.FS

// csp allows only the gateway's own scripts, styles and connections. Model
// output is rendered as DOM text, so no inline script or style is needed;
// connect-src 'self' covers the same-origin WebSocket (CSP Level 3).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name string // for the Content-Type, from the extension
	data []byte
	etag string
}

// Handler serves the WebChat page at "/" and its files at "/static/<name>";
// anything else is 404.
func Handler() http.Handler {
	assets := map[string]asset{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		route := "/" + path
		if path == "index.html" {
			route = "/"
		}
		assets[route] = asset{name: path, data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: embedded files unreadable: " + err.Error()) // cannot happen with a built binary
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// Revalidate every time: an upgraded gateway must never run with a
		// stale script; the ETag makes the check a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
	})
}
