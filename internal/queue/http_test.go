package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/store"
)

// as injects an identity, as the auth middleware (TCP) or the socket's
// peer check does.
func as(id *auth.Identity, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id != nil {
			r = r.WithContext(auth.WithIdentity(r.Context(), *id))
		}
		h.ServeHTTP(w, r)
	})
}

func TestHTTPSubmitAndCancel(t *testing.T) {
	h := stoppedHarness(t, 1)
	configured := "https://git.example.com/acme/app.git"
	api := h.q.HTTP([]string{configured}, nil)
	dev := &auth.Identity{Name: "dev", Role: auth.RoleDeveloper, Method: auth.MethodToken}
	viewer := &auth.Identity{Name: "v", Role: auth.RoleViewer, Method: auth.MethodToken}
	owner := &auth.Identity{Name: "me", Role: auth.RoleAdmin, Method: auth.MethodSocket}
	body := func(repo, ref string) string {
		b, _ := json.Marshal(SubmitRequest{Repo: repo, Ref: ref, SHA: h.sha, Vars: map[string]string{"V": "1"}})
		return string(b)
	}
	tests := []struct {
		name   string
		id     *auth.Identity
		body   string
		status int
		want   string
	}{
		{"no identity", nil, body(configured, "main"), 401, "log in"},
		{"viewer", viewer, body(configured, "main"), 403, "forbidden"},
		{"developer, configured repository", dev, body(configured, "refs/heads/main"), 202, `"state":"queued"`},
		{"developer, local path", dev, body(h.repo, "main"), 403, "not one this server builds"},
		{"socket owner, local path", owner, body(h.repo, "main"), 202, `"actor":"me"`},
		{"hostile branch", dev, body(configured, "--upload-pack=touch x"), 400, "invalid value"},
		{"malformed JSON", dev, `{"repo": `, 400, "decode the run request"},
		{"unknown field", dev, `{"repo": "x", "shell": "rm"}`, 400, "unknown field"},
		{"empty body", dev, ``, 400, "empty body"},
		{"too large", dev, `{"repo": "` + strings.Repeat("a", maxSubmitBody) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			as(tt.id, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/runs", strings.NewReader(tt.body)))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("got %d %s, want %d with %q", rec.Code, rec.Body, tt.status, tt.want)
			}
		})
	}
	items, err := h.st.QueueItems(context.Background(), store.QueueQueued)
	if err != nil || len(items) != 2 {
		t.Fatalf("queued %d items (%v), want 2", len(items), err)
	}
	// Cancel one by item id, read it back.
	rec := httptest.NewRecorder()
	as(viewer, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/runs/"+items[0].ID+"/cancel", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("viewer cancel: %d, want 403", rec.Code)
	}
	rec = httptest.NewRecorder()
	as(dev, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/runs/"+items[0].ID+"/cancel", nil))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	as(viewer, api).ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/queue/"+items[0].ID, nil))
	var got Item
	if err := json.NewDecoder(bytes.NewReader(rec.Body.Bytes())).Decode(&got); err != nil || got.State != "cancelled" {
		t.Errorf("item after cancel: %d %s (%v)", rec.Code, rec.Body, err)
	}
	rec = httptest.NewRecorder()
	as(dev, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/runs/"+items[0].ID+"/cancel", nil))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "already ended") {
		t.Errorf("cancel of a cancelled item: %d %s, want 409", rec.Code, rec.Body)
	}
	// Only an interrupted item is retried.
	rec = httptest.NewRecorder()
	as(dev, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/queue/"+items[0].ID+"/retry", nil))
	if rec.Code != http.StatusConflict {
		t.Errorf("retry of a cancelled item: %d %s, want 409", rec.Code, rec.Body)
	}
	if _, err := h.st.ClaimQueued(context.Background(), "dead", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.ExpireLeases(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	as(viewer, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/queue/"+items[1].ID+"/retry", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("viewer retry: %d, want 403", rec.Code)
	}
	rec = httptest.NewRecorder()
	as(dev, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/queue/"+items[1].ID+"/retry", nil))
	if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"state":"queued"`) {
		t.Errorf("retry of an interrupted item: %d %s, want 202 queued", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	as(dev, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/runs/424242/cancel", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("cancel of an unknown run: %d %s, want 404", rec.Code, rec.Body)
	}
}

// TestHTTPSubmitReadsConcurrency: a run submitted through the API for a
// configured repository carries on.concurrency of its default branch's
// pipeline file; a local path from the socket carries no limit.
func TestHTTPSubmitReadsConcurrency(t *testing.T) {
	h := stoppedHarness(t, 1)
	limited := t.TempDir()
	gitIn(t, limited, "init", "-q", "-b", "trunk", ".")
	if err := os.MkdirAll(filepath.Join(limited, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(limited, ".gantry", "pipeline.yaml"), []byte("name: t\non:\n  concurrency: 2\nstages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, limited, "add", ".")
	gitIn(t, limited, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
	sha := strings.TrimSpace(gitIn(t, limited, "rev-parse", "HEAD"))
	h.q.cfg.Fetcher.CacheDir = t.TempDir()
	h.q.cfg.DefaultBranches = map[string]string{limited: "trunk"}
	api := h.q.HTTP([]string{limited}, nil)
	owner := &auth.Identity{Name: "me", Role: auth.RoleAdmin, Method: auth.MethodSocket}
	tests := []struct {
		name, repo, sha string
		want            int
	}{
		{"configured repository", limited, sha, 2},
		{"local path", h.repo, h.sha, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(SubmitRequest{Repo: tt.repo, Ref: "feature", SHA: tt.sha})
			rec := httptest.NewRecorder()
			as(owner, api).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/runs", bytes.NewReader(b)))
			var got Item
			if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != http.StatusAccepted || err != nil {
				t.Fatalf("submit: %d %s", rec.Code, rec.Body)
			}
			it, err := h.st.QueueItem(context.Background(), got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if it.Concurrency != tt.want {
				t.Errorf("concurrency of the queued item: got %d, want %d", it.Concurrency, tt.want)
			}
		})
	}
}
