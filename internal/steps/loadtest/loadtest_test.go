package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/load"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

type inputs struct {
	node     *yaml.Node
	resolved bool
}

func with(t *testing.T, src string) inputs {
	t.Helper()
	n, err := yamlx.Parse("pipeline.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return inputs{node: n, resolved: true}
}

func (i inputs) Decode(v any) error { return (&yamlx.Decoder{File: "pipeline.yaml"}).Decode(i.node, v) }
func (i inputs) Errorf(path, format string, args ...any) error {
	return fmt.Errorf("pipeline.yaml: with.%s: %s", path, fmt.Sprintf(format, args...))
}
func (i inputs) Resolved() bool { return i.resolved }

type sink struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (s *sink) Put(_ context.Context, name, path, _ string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return s.PutBytes(context.Background(), name, data, "")
}

func (s *sink) PutBytes(_ context.Context, name string, data []byte, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string][]byte{}
	}
	s.files[name] = data
	return nil
}

func env(t *testing.T) (*step.Env, *sink, *bytes.Buffer) {
	var log bytes.Buffer
	art := &sink{}
	return &step.Env{Dir: t.TempDir(), Stdout: &log, Log: slog.New(slog.DiscardHandler), Artifacts: art}, art, &log
}

func server(t *testing.T, delay time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadTestStep(t *testing.T) {
	srv := server(t, 5*time.Millisecond)
	tests := []struct {
		name       string
		thresholds string
		wantErr    string
	}{
		{"passes", `{http_req_duration: ["p(99)<500"], http_req_failed: ["rate<0.001"]}`, ""},
		{"fails", `{http_req_duration: ["p(99)<1"]}`, `http_req_duration "p(99)<1" failed (observed `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := New(with(t, fmt.Sprintf("{url: %q, rate: 50, duration: 1s, thresholds: %s}", srv.URL, tt.thresholds)))
			if err != nil {
				t.Fatal(err)
			}
			e, art, log := env(t)
			res, err := st.Run(context.Background(), e)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if got := res.Outputs["thresholds_passed"]; got != (tt.wantErr == "") {
				t.Errorf("thresholds_passed = %v", got)
			}
			if got := res.Outputs["http_reqs"].(float64); got < 45 || got > 51 {
				t.Errorf("http_reqs = %v, want 50", got)
			}
			if got := res.Outputs["p99_ms"].(float64); got < 5 {
				t.Errorf("p99_ms = %v, want >= 5 (server delay)", got)
			}
			sum, err := load.ParseSummary(art.files["summary.json"])
			if err != nil {
				t.Fatal(err)
			}
			if sum.Stat("http_reqs", "rate") <= 0 || sum.Stat("http_req_duration", "p(99)") <= 0 {
				t.Errorf("summary.json lacks k6 fields: %s", art.files["summary.json"])
			}
			for _, name := range []string{"results.json", "report.html"} {
				if len(art.files[name]) == 0 {
					t.Errorf("artifact %s missing", name)
				}
			}
			if !strings.Contains(log.String(), "http_req_duration") {
				t.Errorf("log lacks the summary:\n%s", log.String())
			}
		})
	}
}

func TestLoadTestSpecFile(t *testing.T) {
	srv := server(t, 0)
	e, _, _ := env(t)
	spec := fmt.Sprintf("rate: 20\nduration: 1s\nthresholds:\n  checks: ['rate==1']\nrequests:\n  - {method: POST, url: '%s/pay/{{uuid}}', body: '{\"id\": {{seq}}}', checks: [{status: 200}, {json: '{.status}', equals: ok}]}\n", srv.URL)
	if err := os.WriteFile(filepath.Join(e.Dir, "smoke.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := New(with(t, "{spec: smoke.yaml}"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Run(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["checks_rate"] != 1.0 {
		t.Errorf("checks_rate = %v, want 1", res.Outputs["checks_rate"])
	}
}

func TestLoadTestInputErrors(t *testing.T) {
	tests := map[string]string{
		"{rate: 5, duration: 1s}":                               "exactly one of url and spec",
		"{url: http://x, duration: 1s}":                         "give rate",
		"{url: http://x, rate: 5}":                              "give a duration",
		"{url: http://x, rate: 5, duration: 1s, watch: [disk]}": `unknown watch "disk"`,
		"{url: http://x, rate: 5, duration: 1s, thresholds: {http_req_duration: ['p99<5']}}": "http_req_duration",
		"{url: http://x, rate: 5, duration: 1s, alerts: [a.yaml]}":                           "pipeline.yaml:1:48",
		"{url: http://x, rate: 5, duration: 1s, alerts: {poll: 1s}}":                         "with.alerts.url: alerts needs exactly one of url",
		"{url: http://x, rate: 5, duration: 1s, alerts: {url: 'http://p', rules: [a.yaml]}}": "with.alerts.url: alerts needs exactly one of url",
		"{url: http://x, rate: 5, duration: 1s, alerts: {url: 'http://p', job: svc}}":        "with.alerts.job: alerts.job and alerts.interval go with alerts.rules",
		"{url: http://x, rate: 5, duration: 1s, alerts: {url: 'localhost:9090'}}":            "with.alerts.url: alerts.url must be an absolute http(s) URL",
		"{url: http://x, rate: 5, duration: 1s, alerts: {url: 'http://p:9090', wait: 1s}}":   "unknown field \"wait\"",
		"{url: /rel, rate: 5, duration: 1s}":                                                 "absolute http(s) URL",
	}
	for src, want := range tests {
		t.Run(src, func(t *testing.T) {
			_, err := New(with(t, src))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("New error = %v, want %q", err, want)
			}
		})
	}
}

// TestNewDurationExpression: a duration given as an expression
// (${vars.soak_duration}) is unknown when the file is validated and
// checked once it is resolved.
func TestNewDurationExpression(t *testing.T) {
	src := `{url: "${steps.deploy.outputs.url}/healthz", rate: 50, duration: "${vars.smoke_duration}"}`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	if _, err := New(spec.Inputs("pipeline.yaml", n.Content[0], false)); err != nil {
		t.Errorf("validating: got %v, want no error", err)
	}
	tests := []struct {
		name, with, want string
	}{
		{"resolved", `{url: http://x, rate: 50, duration: 10s}`, ""},
		{"resolved empty", `{url: http://x, rate: 50, duration: ""}`, "invalid duration"},
		{"absent", `{url: http://x, rate: 50}`, "give a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tt.with), &n); err != nil {
				t.Fatal(err)
			}
			_, err := New(spec.Inputs("pipeline.yaml", n.Content[0], true))
			if got := fmt.Sprint(err); (tt.want == "") != (err == nil) || !strings.Contains(got, tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
