package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestOpenAPIQueueBodies: the run queue's routes, as the API mounts them,
// answer what docs/openapi.yaml says, for successes and refusals alike.
func TestOpenAPIQueueBodies(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	const repo = "https://git.example/acme/app.git"
	q, err := queue.New(queue.Config{Store: e.st, StateDir: e.dir, Gantry: "/nonexistent/gantry", Workers: 1,
		Fetcher: &queue.Fetcher{CacheDir: filepath.Join(e.dir, "repos")}})
	if err != nil {
		t.Fatal(err)
	}
	e.api.SetRunQueue(q.HTTP([]string{repo}, nil))
	dev := as("dev", auth.RoleDeveloper)
	sha := strings.Repeat("ab", 20)

	// An interrupted item, for the retry.
	broken := &store.QueueItem{Repo: repo, Event: "push", Branch: "old", SHA: sha, Trigger: "api"}
	if _, err := e.st.Enqueue(ctx, broken); err != nil {
		t.Fatal(err)
	}
	claimed, err := e.st.ClaimQueued(ctx, "replica-1", time.Now().Add(time.Minute))
	if err != nil || claimed.ID != broken.ID {
		t.Fatalf("claim: %v %v", claimed.ID, err)
	}
	must(t, e.st.FinishQueued(ctx, broken.ID, "replica-1", store.QueueInterrupted, 0, "replica killed"))

	var item queue.Item
	tests := []struct {
		name                 string
		c                    caller
		method, target, body string
		want                 int
	}{
		{"submit", dev, "POST", "/api/v1/runs", `{"repo": "` + repo + `", "ref": "refs/heads/main", "sha": "` + sha + `", "vars": {"fail": "0"}}`, 202},
		{"submit, unknown field", dev, "POST", "/api/v1/runs", `{"repo": "` + repo + `", "ref": "main", "sha": "` + sha + `", "force": true}`, 400},
		{"submit, bad sha", dev, "POST", "/api/v1/runs", `{"repo": "` + repo + `", "ref": "main", "sha": "HEAD"}`, 400},
		{"submit, other repository", dev, "POST", "/api/v1/runs", `{"repo": "https://evil.example/x.git", "ref": "main", "sha": "` + sha + `"}`, 403},
		{"submit as viewer", viewer, "POST", "/api/v1/runs", `{"repo": "` + repo + `", "ref": "main", "sha": "` + sha + `"}`, 403},
		{"item", viewer, "GET", "/api/v1/queue/{item}", "", 200},
		{"no such item", viewer, "GET", "/api/v1/queue/nope", "", 404},
		{"retry the interrupted", dev, "POST", "/api/v1/queue/" + broken.ID + "/retry", "", 202},
		{"retry a queued item", dev, "POST", "/api/v1/queue/{item}/retry", "", 409},
		{"cancel", dev, "POST", "/api/v1/runs/{item}/cancel", "", 202},
		{"cancel what is not queued", dev, "POST", "/api/v1/runs/nope/cancel", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := strings.ReplaceAll(tt.target, "{item}", item.ID)
			resp, body := e.call(t, tt.c, tt.method, target, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: got %s, want %d\n%s", tt.method, target, resp.Status, tt.want, body)
			}
			if tt.name == "submit" {
				must(t, json.Unmarshal(body, &item))
				if item.State != "queued" || item.Trigger != "api" || item.Actor != "dev" {
					t.Errorf("submitted item: got %+v, want queued by dev through the API", item)
				}
			}
		})
	}
}

// TestOpenAPIAuthBodies: the login endpoints answer what
// docs/openapi.yaml says.
func TestOpenAPIAuthBodies(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	svc, err := auth.New(ctx, auth.Config{Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	admin := &auth.Admin{Store: e.st, Actor: "test", Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	const password = "vellum-oxbow-Trident-48-quasar"
	must(t, admin.AddUser(ctx, "lee", auth.RoleOncallLead, []byte(password)))
	h := svc.Handler()
	var cookies []*http.Cookie
	var session auth.SessionInfo
	call := func(t *testing.T, pattern, target, body, ctype string, withSession bool) *http.Response {
		t.Helper()
		method, _, _ := strings.Cut(pattern, " ")
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, target, rd)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if withSession {
			for _, c := range cookies {
				req.AddCookie(c)
			}
			req.Header.Set(auth.CSRFHeader, session.CSRFToken)
			req.Header.Set("Origin", "http://"+req.Host)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		resp := w.Result()
		resp.Request = req
		b, _ := io.ReadAll(resp.Body)
		e.doc.check(t, pattern, resp, b)
		if pattern == "POST /login" && resp.StatusCode == 200 {
			cookies = resp.Cookies()
			must(t, json.Unmarshal(b, &session))
		}
		return resp
	}
	tests := []struct {
		name, pattern, target, body, ctype string
		session                            bool
		want                               int
	}{
		{"methods", "GET /auth/methods", "/auth/methods", "", "", false, 200},
		{"session before login", "GET /auth/session", "/auth/session", "", "", false, 401},
		{"wrong password", "POST /login", "/login", `{"user": "lee", "password": "nope"}`, "application/json", false, 401},
		{"malformed login", "POST /login", "/login", `{"user": `, "application/json", false, 400},
		{"login as a form", "POST /login", "/login", "user=lee&password=" + password, "application/x-www-form-urlencoded", false, 200},
		{"login", "POST /login", "/login", `{"user": "lee", "password": "` + password + `"}`, "application/json", false, 200},
		{"session", "GET /auth/session", "/auth/session", "", "", true, 200},
		{"single sign-on not configured", "GET /auth/oidc/login", "/auth/oidc/login", "", "", false, 404},
		{"callback not configured", "GET /auth/oidc/callback", "/auth/oidc/callback?state=x&code=y", "", "", false, 404},
		{"logout", "POST /logout", "/logout", "", "", true, 204},
		{"session after logout", "GET /auth/session", "/auth/session", "", "", true, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, tt.pattern, tt.target, tt.body, tt.ctype, tt.session)
			if resp.StatusCode != tt.want {
				t.Errorf("%s: got %s, want %d", tt.pattern, resp.Status, tt.want)
			}
		})
	}
	if session.User != "lee" || session.Role != auth.RoleOncallLead || session.Method != auth.MethodPassword {
		t.Errorf("session: got %+v, want lee, oncall-lead, password", session)
	}
}
