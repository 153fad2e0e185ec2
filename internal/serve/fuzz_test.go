package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/auth"
)

// FuzzAPI sends arbitrary bodies and environment names to the API's
// handler (no transport: the handler does not need one): every answer is
// JSON, a success or an error with a code, never a panic.
func FuzzAPI(f *testing.F) {
	f.Add("staging", "deploy", `{"workloads":[{"name":"pay","image":"r/p@sha256:00","replicas":1}]}`)
	f.Add("staging", "rollback", `{"toRevision":2,"who":"ana"}`)
	f.Add("busy", "deploy", `{}`)
	f.Add("x", "rollback", `{"toRevision":-1}`)
	f.Add("%2e%2e", "deploy", `[`)
	f.Add("staging", "deploy", "{\"who\":\"\xff\"}")
	api := NewAPI(newRecorder(), func() Health { return Health{} }, func() {}, context.Background(), nil)
	h := asIdentity(auth.Identity{Name: "fuzz", Role: auth.RoleAdmin, Method: auth.MethodSocket, Remote: "unix"}, api.Handler())
	f.Fuzz(func(t *testing.T, env, action, body string) {
		if action != "deploy" && action != "rollback" {
			action = "deploy"
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/environments/x/"+action, strings.NewReader(body))
		req.URL.Path = "/api/v1/environments/" + strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23").Replace(env) + "/" + action
		req.URL.RawPath = ""
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%d answer with Content-Type %q: %q", w.Code, ct, w.Body.String())
		}
		if w.Code/100 == 2 {
			return
		}
		var e apiError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d answer is not a JSON error with a code: %q", w.Code, w.Body.String())
		}
	})
}
