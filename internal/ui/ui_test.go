package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestHandlerServesFilesAndPages(t *testing.T) {
	h := Handler()
	tests := []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/", "text/html", `<script type="module" src="/app.js">`, 200},
		{"/runs/12", "text/html", `<main id="main"`, 200}, // a page's own route: index.html
		{"/environments/prod", "text/html", `<main id="main"`, 200},
		{"/app.js", "text/javascript", "function navigate", 200},
		{"/views/run.js", "text/javascript", "export async function runView", 200},
		{"/app.css", "text/css", ".graph", 200},
		{"/nope.js", "", "", 404}, // a file that does not exist is not the index
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := get(t, h, "GET", tt.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.code)
			}
			if tt.code != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.ctype)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body does not hold %q", tt.contains)
			}
			for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
				if resp.Header.Get(k) == "" {
					t.Errorf("no %s header", k)
				}
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h := Handler()
	resp := get(t, h, "GET", "/app.js", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q: want an ETag and no-cache", etag, resp.Header.Get("Cache-Control"))
	}
	if again := get(t, h, "GET", "/app.js", map[string]string{"If-None-Match": etag}); again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag = %d, want 304", again.StatusCode)
	}
	if post := get(t, h, "POST", "/", nil); post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", post.StatusCode)
	}
}

// TestNoInlineScriptOrHTMLFromData keeps the pages within the CSP (no
// inline scripts or styles) and keeps text from the server out of HTML
// parsing: the scripts never assign innerHTML or outerHTML, nor call
// insertAdjacentHTML or document.write.
func TestNoInlineScriptOrHTMLFromData(t *testing.T) {
	index, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).Match(index) || strings.Contains(string(index), "style=") || strings.Contains(string(index), "<style") {
		t.Error("index.html has an inline script or style, which the Content-Security-Policy refuses")
	}
	unsafe := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write`)
	for _, dir := range []string{"static", "static/views"} {
		entries, err := static.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".js") {
				continue
			}
			b, err := static.ReadFile(dir + "/" + e.Name())
			if err != nil {
				t.Fatal(err)
			}
			if loc := unsafe.FindIndex(b); loc != nil {
				t.Errorf("%s/%s: %q parses text as HTML", dir, e.Name(), b[loc[0]:loc[1]])
			}
		}
	}
}
