package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// TestTCPProbes: the probes answer over the TLS listener without a
// login; anything else under their names is not theirs.
func TestTCPProbes(t *testing.T) {
	ts := startTCPServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if got, body := ts.do(t, "GET", path, "", ""); got != http.StatusOK || body != "ok\n" {
			t.Errorf("GET %s without a token: %d %q, want 200 ok", path, got, body)
		}
	}
	if got, body := ts.do(t, "POST", "/healthz", "", "{}"); got == http.StatusOK && body == "ok\n" {
		t.Errorf("POST /healthz answered as the probe: %d %q", got, body)
	}
}

// TestReadyzFollowsStoreAndStop: readiness is lost when the run
// history's store stops answering and while the server stops; the answer
// never says where the store is (its error goes to the server's log).
func TestReadyzFollowsStoreAndStop(t *testing.T) {
	e := newAPIEnv(t)
	logs := &syncbuf.Buffer{}
	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	a := NewAPI(newRecorder(), func() Health { return Health{} }, func() {}, stopping, slog.New(slog.NewTextHandler(logs, nil)))
	a.SetRuns(Runs{Store: e.st, Artifacts: e.arts, StateDir: e.dir})
	srv := httptest.NewServer(a.Probes())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if got, body := get("/readyz"); got != http.StatusOK {
		t.Fatalf("readyz with a serving store: %d %q, want 200", got, body)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	got, body := get("/readyz")
	if got != http.StatusServiceUnavailable || body != "store unavailable\n" {
		t.Errorf("readyz with the store closed: %d %q, want 503 store unavailable", got, body)
	}
	if !strings.Contains(logs.String(), "the store does not answer") {
		t.Errorf("the server's log does not say why it is not ready:\n%s", logs.String())
	}
	if got, body := get("/healthz"); got != http.StatusOK {
		t.Errorf("healthz with the store closed: %d %q, want 200 (the process lives)", got, body)
	}
	stop()
	if got, body := get("/readyz"); got != http.StatusServiceUnavailable || body != "stopping\n" {
		t.Errorf("readyz while stopping: %d %q, want 503 stopping", got, body)
	}
}
