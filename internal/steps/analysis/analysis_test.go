package analysisstep

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

type inputs struct{ node *yaml.Node }

func (i inputs) Decode(v any) error { return (&yamlx.Decoder{File: "pipeline.yaml"}).Decode(i.node, v) }
func (i inputs) Errorf(path, format string, args ...any) error {
	return fmt.Errorf("with.%s: %s", path, fmt.Sprintf(format, args...))
}
func (i inputs) Resolved() bool { return true }

type sink map[string][]byte

func (s sink) Put(_ context.Context, name, path, _ string) error {
	b, err := os.ReadFile(path)
	s[name] = b
	return err
}
func (s sink) PutBytes(_ context.Context, name string, data []byte, _ string) error {
	s[name] = data
	return nil
}

const tmpl = `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  args: [{name: url}]
  metrics:
  - name: p99
    interval: 200ms
    count: 3
    successCondition: result < 250
    provider:
      gantry: {metric: http_req_duration, stat: "p(99)"}
  - name: health
    count: 1
    successCondition: result == 'ok'
    provider:
      web: {url: "{{args.url}}", jsonPath: "{$.status}"}
`

func TestAnalysisStep(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := "ok"
		if r.Header.Get("X-Down") != "" {
			status = "down"
		}
		_, _ = w.Write([]byte(`{"status":"` + status + `"}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "analysis.yaml"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		with    string
		phase   string
		wantErr bool
	}{
		{"successful", fmt.Sprintf("{template: analysis.yaml, args: {url: %q}, load: {url: %q, rate: 50}}", srv.URL, srv.URL), "Successful", false},
		{"no load for the gantry provider", fmt.Sprintf("{template: analysis.yaml, args: {url: %q}}", srv.URL), "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := yamlx.Parse("pipeline.yaml", []byte(tt.with))
			if err != nil {
				t.Fatal(err)
			}
			st, err := New(inputs{n})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			art := sink{}
			env := &step.Env{Dir: dir, Stdout: &log, Log: slog.New(slog.DiscardHandler), Artifacts: art}
			res, err := st.Run(context.Background(), env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Run error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if !strings.Contains(err.Error(), "gantry provider") {
					t.Errorf("error = %v, want it to explain the gantry provider", err)
				}
				return
			}
			if res.Outputs["phase"] != tt.phase || res.Outputs["successful"] != 4 {
				t.Errorf("outputs = %v", res.Outputs)
			}
			var run struct {
				Phase   string `json:"phase"`
				Metrics []struct {
					Measurements []struct{ Value string } `json:"measurements"`
				} `json:"metricResults"`
			}
			if err := json.Unmarshal(art["analysis-run.json"], &run); err != nil || run.Phase != tt.phase || len(run.Metrics[0].Measurements) != 3 {
				t.Errorf("analysis-run.json = %s (%v)", art["analysis-run.json"], err)
			}
			if !strings.Contains(log.String(), "p99") {
				t.Errorf("log lacks measurements:\n%s", log.String())
			}
		})
	}
}
