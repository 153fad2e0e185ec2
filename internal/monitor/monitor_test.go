package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// service is a small HTTP service with the answers the tests check.
func service(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status": "ok", "checks": {"db": "ok"}, "items": [{"status": "ok"}, {"status": "down"}], "count": 1.0}`)
	})
	mux.HandleFunc("GET /down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status": "down"}`, http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /text", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok\n")
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"pad": %q}`, strings.Repeat("x", MaxBody))
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/healthz", http.StatusFound)
	})
	mux.HandleFunc("/v1/intents", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("X-Check") != "synthetic" || r.Host != "pay.example" || string(b) != `{"amount":100}` {
			http.Error(w, fmt.Sprintf("got %s host %s body %s", r.Method, r.Host, b), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"amount": 100, "status": "requires_confirmation"}`)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"auth": r.Header.Get("Authorization")})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func assertion(path, equals string) runtime.JSONAssertion {
	return runtime.JSONAssertion{Path: path, Equals: json.RawMessage(equals)}
}

func TestCheck(t *testing.T) {
	srv := service(t)
	tests := []struct {
		name   string
		m      runtime.Monitor
		ok     bool
		status int
		msg    string // in the message of a failed check
	}{
		{"pass", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{
			assertion("status", `"ok"`), assertion("checks.db", `"ok"`), assertion("items.0", `{"status":"ok"}`), assertion("count", `1`),
		}}, true, 200, ""},
		{"wrong status", runtime.Monitor{Path: "/down"}, false, 503, "GET /down: status 503, want 200"},
		{"expected failure status", runtime.Monitor{Path: "/down", Status: 503}, true, 503, ""},
		{"json value differs", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{assertion("items.1.status", `"ok"`)}},
			false, 200, `GET /healthz: json items.1.status: want "ok", got "down"`},
		{"json type differs", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{assertion("count", `"1"`)}},
			false, 200, `json count: want "1", got 1.0`},
		{"json path missing", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{assertion("checks.redis", `"ok"`)}},
			false, 200, `json checks.redis: want "ok", got nothing: checks has no key "redis"`},
		{"json index out of range", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{assertion("items.5.status", `"ok"`)}},
			false, 200, `json items.5.status: want "ok", got nothing: items has 2 items, no index 5`},
		{"json through a scalar", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{assertion("status.code", `1`)}},
			false, 200, `json status.code: want 1, got nothing: status is a string, not an object or array`},
		{"every failing assertion named", runtime.Monitor{Path: "/healthz", JSON: []runtime.JSONAssertion{assertion("status", `"down"`), assertion("checks.db", `"down"`)}},
			false, 200, `json status: want "down", got "ok"; json checks.db: want "down", got "ok"`},
		{"non-JSON body", runtime.Monitor{Path: "/text", JSON: []runtime.JSONAssertion{assertion("status", `"ok"`)}},
			false, 200, "GET /text: the body is not JSON: invalid character 'o'"},
		{"non-JSON body without assertions", runtime.Monitor{Path: "/text"}, true, 200, ""},
		{"body over 1 MiB with assertions", runtime.Monitor{Path: "/big", JSON: []runtime.JSONAssertion{assertion("pad", `""`)}},
			false, 200, "the body is larger than 1048576 bytes"},
		{"body over 1 MiB without assertions", runtime.Monitor{Path: "/big"}, true, 200, ""},
		{"redirect not followed", runtime.Monitor{Path: "/moved", Status: 302}, true, 302, ""},
		{"method header host body", runtime.Monitor{
			Method: "POST", Path: "/v1/intents", Body: `{"amount":100}`, Status: 201,
			Header: map[string]string{"X-Check": "synthetic", "host": "pay.example"},
			JSON:   []runtime.JSONAssertion{assertion("amount", `100`), assertion("status", `"requires_confirmation"`)},
		}, true, 201, ""},
		{"not found", runtime.Monitor{Path: "/nowhere"}, false, 404, "GET /nowhere: status 404, want 200"},
		{"path not on the base URL", runtime.Monitor{Path: "@other.example/healthz"}, false, 0, `path "@other.example/healthz" does not start with a single /`},
		{"scheme-relative path", runtime.Monitor{Path: "//other.example/healthz"}, false, 0, `path "//other.example/healthz" does not start with a single /`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.Name = "m"
			got := Check(t.Context(), nil, srv.URL+"/", tt.m, "local")
			if got.OK != tt.ok || got.Status != tt.status {
				t.Fatalf("got ok=%v status=%d (%s), want ok=%v status=%d", got.OK, got.Status, got.Message, tt.ok, tt.status)
			}
			if got.Monitor != "m" || got.Location != "local" || got.At.IsZero() || (got.Status != 0 && got.Latency <= 0) {
				t.Errorf("result %+v: want monitor m, location local, a time and a measured latency", got)
			}
			if tt.ok && got.Message != "" {
				t.Errorf("passing check has message %q", got.Message)
			}
			if !strings.Contains(got.Message, tt.msg) {
				t.Errorf("message %q lacks %q", got.Message, tt.msg)
			}
		})
	}
}

// blocking answers nothing (or, with headers, only the headers) until
// the client gives up; it tells arrived about each request.
func blocking(t *testing.T, headers bool, arrived chan<- struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headers {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `{"status": `)
			w.(http.Flusher).Flush()
		}
		if arrived != nil {
			arrived <- struct{}{}
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCheckSlow(t *testing.T) {
	tests := []struct {
		name    string
		headers bool
		m       runtime.Monitor
		msg     string
	}{
		{"no answer within the budget", false, runtime.Monitor{Path: "/healthz", Latency: 50 * time.Millisecond, Interval: time.Hour},
			"GET /healthz: no complete answer within the latency budget of 50ms"},
		{"body unfinished within the budget", true, runtime.Monitor{Path: "/healthz", Latency: 50 * time.Millisecond, Interval: time.Hour},
			"GET /healthz: no complete answer within the latency budget of 50ms"},
		{"no budget: the interval bounds it", false, runtime.Monitor{Path: "/healthz", Interval: 50 * time.Millisecond},
			"GET /healthz: no complete answer within 50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := blocking(t, tt.headers, nil)
			got := Check(t.Context(), nil, srv.URL, tt.m, "local")
			if got.OK {
				t.Fatalf("slow answer passed: %+v", got)
			}
			if !strings.Contains(got.Message, tt.msg) {
				t.Errorf("message %q lacks %q", got.Message, tt.msg)
			}
			// Headers that arrived before the budget ran out make it a
			// body that did not finish (on a loaded machine the budget
			// may run out before the headers arrive).
			if got.Status != 0 && !strings.HasPrefix(got.Message, "reading the body: ") {
				t.Errorf("headers arrived (status %d) but the message %q does not say the body was unfinished", got.Status, got.Message)
			}
		})
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := Check(t.Context(), nil, "http://"+addr, runtime.Monitor{Name: "m", Path: "/healthz"}, "local")
	if got.OK || got.Status != 0 {
		t.Fatalf("got %+v, want a failure without status", got)
	}
	if want := "GET /healthz: dial tcp " + addr + ": connect: connection refused"; got.Message != want {
		t.Errorf("message %q, want %q", got.Message, want)
	}
}

func TestCheckCancelled(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := blocking(t, false, arrived)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	got := Check(ctx, nil, srv.URL, runtime.Monitor{Name: "m", Path: "/", Interval: time.Hour}, "local")
	if got.OK || got.Message != "check cancelled" {
		t.Errorf("got %+v, want a failure saying the check was cancelled", got)
	}
}

// TestCheckHidesHeaderValues: a header value (a token) that comes back in
// the body, in any encoding the masker knows, never reaches the message.
func TestCheckHidesHeaderValues(t *testing.T) {
	srv := service(t)
	const token = "Bearer tok-9f8e7d6c5b4a"
	m := runtime.Monitor{
		Name: "m", Path: "/whoami",
		Header: map[string]string{"Authorization": token},
		JSON:   []runtime.JSONAssertion{assertion("auth", `"someone else"`)},
	}
	got := Check(t.Context(), nil, srv.URL, m, "local")
	if got.OK {
		t.Fatal("assertion passed")
	}
	if strings.Contains(got.Message, "tok-9f8e7d6c5b4a") {
		t.Errorf("message shows the header value: %q", got.Message)
	}
	if !strings.Contains(got.Message, `json auth: want "someone else", got "***"`) {
		t.Errorf("message %q does not name the path with the value hidden", got.Message)
	}
}

// recorder collects reported results and checks report is never called
// twice at once nor after Run returned.
type recorder struct {
	mu       sync.Mutex
	byName   map[string][]runtime.MonitorResult
	inside   atomic.Int32
	overlaps atomic.Int32
	late     atomic.Bool
	returned atomic.Bool
	enough   func(map[string][]runtime.MonitorResult) bool
	done     chan struct{}
	once     sync.Once
}

func (r *recorder) report(res runtime.MonitorResult) {
	if r.inside.Add(1) > 1 {
		r.overlaps.Add(1)
	}
	defer r.inside.Add(-1)
	if r.returned.Load() {
		r.late.Store(true)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byName[res.Monitor] = append(r.byName[res.Monitor], res)
	if r.enough(r.byName) {
		r.once.Do(func() { close(r.done) })
	}
}

func TestRun(t *testing.T) {
	srv := service(t)
	ms := []runtime.Monitor{
		// A short interval repeats the checks quickly; the budget (the
		// check's timeout) is long so that a loaded machine cannot fail
		// them.
		{Name: "health", Path: "/healthz", Interval: 5 * time.Millisecond, Latency: time.Minute, Locations: []string{"local"}, JSON: []runtime.JSONAssertion{assertion("status", `"ok"`)}},
		{Name: "down", Path: "/down", Interval: 5 * time.Millisecond, Latency: time.Minute},
		{Name: "elsewhere", Path: "/healthz", Interval: 5 * time.Millisecond, Locations: []string{"eu-west-1"}},
	}
	rec := &recorder{byName: map[string][]runtime.MonitorResult{}, done: make(chan struct{})}
	rec.enough = func(got map[string][]runtime.MonitorResult) bool {
		return len(got["health"]) >= 3 && len(got["down"]) >= 3
	}
	ctx, cancel := context.WithCancel(t.Context())
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		Run(ctx, srv.URL, ms, rec.report)
		rec.returned.Store(true)
	}()
	<-rec.done
	cancel()
	<-ended
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.byName["health"] {
		if !r.OK || r.Location != "local" {
			t.Errorf("health: %+v, want ok from local", r)
		}
	}
	for _, r := range rec.byName["down"] {
		if r.OK || r.Message != "GET /down: status 503, want 200" {
			t.Errorf("down: %+v, want a failure with status 503", r)
		}
	}
	if n := len(rec.byName["elsewhere"]); n > 0 {
		t.Errorf("a monitor of another location ran %d times from local", n)
	}
	if rec.overlaps.Load() > 0 {
		t.Error("report was called concurrently")
	}
	if rec.late.Load() {
		t.Error("report was called after Run returned")
	}
}

// TestRunCancelledMidCheck: Run returns when its context ends, even with a
// check in flight, and a check cut short is not reported.
func TestRunCancelledMidCheck(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := blocking(t, false, arrived)
	ctx, cancel := context.WithCancel(t.Context())
	var reported atomic.Int32
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		Run(ctx, srv.URL, []runtime.Monitor{{Name: "m", Path: "/", Interval: time.Hour}}, func(runtime.MonitorResult) { reported.Add(1) })
	}()
	<-arrived
	cancel()
	<-ended
	if n := reported.Load(); n != 0 {
		t.Errorf("%d results reported for a check cut short by cancellation", n)
	}
}

func TestRunNothing(t *testing.T) {
	// No monitor runs from this location: Run returns once its context
	// has ended, without a check.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	Run(ctx, "http://127.0.0.1:1", []runtime.Monitor{{Name: "m", Path: "/", Locations: []string{"eu-west-1"}}}, func(runtime.MonitorResult) {
		t.Error("reported a monitor of another location")
	})
}
