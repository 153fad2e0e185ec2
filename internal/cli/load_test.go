package cli

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
)

func execute(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := New()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"--state-dir", t.TempDir()}, args...))
	err := cmd.ExecuteContext(context.Background())
	msg := out.String() + errOut.String()
	if err != nil {
		msg += "error: " + err.Error()
	}
	return msg, Code(err)
}

func TestLoadCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	export := filepath.Join(dir, "summary.json")
	tests := []struct {
		name      string
		threshold string
		code      int
	}{
		{"thresholds pass", "http_req_duration:p(99)<500", 0},
		{"threshold fails, exit 99 as k6", "http_reqs:count>1000000", 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := execute(t, "load", "--url", srv.URL, "--rate", "20", "--duration", "1s",
				"--threshold", tt.threshold, "--summary-export", export, "--out", dir)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, out)
			}
			if !strings.Contains(out, "http_req_duration") {
				t.Errorf("no summary:\n%s", out)
			}
			var sum struct {
				Metrics map[string]map[string]any `json:"metrics"`
			}
			data, err := os.ReadFile(export)
			if err != nil || json.Unmarshal(data, &sum) != nil {
				t.Fatalf("summary export: %v", err)
			}
			for _, key := range []string{"http_reqs.rate", "dropped_iterations.count", "http_req_duration.p(99)", "http_req_failed.value"} {
				m, stat, _ := strings.Cut(key, ".")
				if _, ok := sum.Metrics[m][stat].(float64); !ok {
					t.Errorf("summary export lacks metrics.%s", key)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
				t.Error(err)
			}
		})
	}
	if _, code := execute(t, "load", "--rate", "5"); code != ExitUsage {
		t.Errorf("load without url: exit %d, want %d", code, ExitUsage)
	}
}

func TestAnalysisRunCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"p99": 0.12}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	tmpl := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: latency}
spec:
  args: [{name: url}, {name: bound, value: "0.25"}]
  metrics:
  - name: p99
    interval: 100ms
    count: 2
    successCondition: result < asFloat("{{args.bound}}")
    provider: {web: {url: "{{args.url}}", jsonPath: "{$.p99}"}}
`
	file := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(file, []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"successful", []string{"--arg", "url=" + srv.URL}, 0, "RUN latency"},
		{"failed", []string{"--arg", "url=" + srv.URL, "--arg", "bound=0.1"}, 1, "Failed"},
		{"missing arg", nil, 2, "argument url has no value"},
		{"json", []string{"--arg", "url=" + srv.URL, "-o", "json"}, 0, `"phase": "Successful"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := execute(t, append([]string{"analysis", "run", file}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
}

// TestLoadRefusesAbsurdRates: a rate past load.MaxRate is bad usage, said
// before any request is sent.
func TestLoadRefusesAbsurdRates(t *testing.T) {
	for _, args := range [][]string{
		{"--rate", "1e12", "--duration", "1s"},
		{"--stage", "1s:1e9"},
		{"--start-rate", "1e9", "--stage", "1s:10"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, code := execute(t, append([]string{"load", "--url", "http://127.0.0.1:9/"}, args...)...)
			if code != ExitUsage || !strings.Contains(out, "ceiling of 100000 requests per second") {
				t.Errorf("exit %d, output %q; want exit %d naming the ceiling", code, out, ExitUsage)
			}
		})
	}
}
