package serve

import (
	"slices"
	"strings"
	"testing"
)

// servedElsewhere are the routes openapi.yaml documents that other
// handlers serve: auth and webhooks on the TCP listener, and the run
// queue's handler that API.Handler mounts only when the server runs a
// queue (SetRunQueue).
var servedElsewhere = []string{
	"POST /login",
	"POST /logout",
	"POST /api/v1/runs",
	"POST /api/v1/runs/{id}/cancel",
	"GET /api/v1/queue/{id}",
	"POST /api/v1/queue/{id}/retry",
	"GET /auth/session",
	"GET /auth/methods",
	"GET /auth/oidc/login",
	"GET /auth/oidc/callback",
	"POST /webhooks/{provider}",
}

// TestOpenAPICoversTheRoutes: every route of the API is in openapi.yaml,
// and every operation there is a route of the API or served elsewhere.
func TestOpenAPICoversTheRoutes(t *testing.T) {
	d := loadOpenAPI(t)
	var documented []string
	paths, _ := d.doc["paths"].(map[string]any)
	for p, item := range paths {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	e := newAPIEnv(t)
	routes := e.api.mux().patterns
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, op := range documented {
		if !slices.Contains(routes, op) && !slices.Contains(servedElsewhere, op) {
			t.Errorf("docs/openapi.yaml documents %s, which no handler serves", op)
		}
	}
}
