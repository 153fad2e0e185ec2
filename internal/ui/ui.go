// Package ui is gantry serve's web UI: static files embedded in the
// binary (plain ES modules, no build step), served at / on the server's
// TCP listener. The pages read and act through /api/v1 and the login
// endpoints with the browser's session cookie and its CSRF token; the
// package holds no state and checks nothing itself: every action is
// authorized by the API.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// asset is one embedded file with what its answer needs.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the UI: the files under static/ by name, and index.html
// for / and every other path without an extension (the pages' own
// routes, such as /runs/12), so that a reload or a shared link opens the
// right page.
func Handler() http.Handler {
	assets := map[string]*asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets["/"+strings.TrimPrefix(p, "static/")] = &asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: a failure here is a build defect.
		panic("ui: read the embedded files: " + err.Error())
	}
	index := assets["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			if path.Ext(r.URL.Path) != "" {
				http.NotFound(w, r)
				return
			}
			a = index
		}
		h := w.Header()
		setSecurityHeaders(h)
		h.Set("Content-Type", a.ctype)
		// Revalidated on every load: the files change with the binary.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

// setSecurityHeaders keeps the pages to their own origin's files: no
// inline script or style, no framing, no MIME sniffing, no referrer to
// other sites.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}
