package k6

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/testenv"
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

const script = `import http from 'k6/http';
import { check } from 'k6';
export const options = {
  scenarios: { smoke: { executor: 'constant-arrival-rate', rate: 20, timeUnit: '1s', duration: '1s', preAllocatedVUs: 5 } },
  thresholds: { http_req_duration: ['p(99)<%s'], http_req_failed: ['rate<0.01'] },
};
export default function () {
  const r = http.get(__ENV.TARGET);
  check(r, { 'status is 200': (x) => x.status === 200 });
}
`

func TestK6Step(t *testing.T) {
	if _, err := exec.LookPath("k6"); err != nil {
		testenv.Missing(t, "k6", "go install go.k6.io/k6@"+Tool.Version)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	tests := []struct {
		name, bound string
		wantErr     bool
	}{{"passes", "500", false}, {"fails", "0.001", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "smoke.js"), []byte(fmt.Sprintf(script, tt.bound)), 0o644); err != nil {
				t.Fatal(err)
			}
			n, err := yamlx.Parse("pipeline.yaml", []byte(fmt.Sprintf("{script: smoke.js, env: {TARGET: %q}}", srv.URL)))
			if err != nil {
				t.Fatal(err)
			}
			st, err := New(inputs{n})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			art := sink{}
			env := &step.Env{Dir: dir, TempDir: t.TempDir(), StateDir: t.TempDir(), Vars: os.Environ(), Stdout: &log, Log: slog.New(slog.DiscardHandler), Artifacts: art}
			res, err := st.Run(context.Background(), env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Run error = %v, want error %v\n%s", err, tt.wantErr, log.String())
			}
			if tt.wantErr && !strings.Contains(err.Error(), `http_req_duration "p(99)<0.001" failed`) {
				t.Errorf("error = %v, want the failed threshold named", err)
			}
			if got := res.Outputs["http_reqs"].(float64); got < 15 || got > 25 {
				t.Errorf("http_reqs = %v, want about 20", got)
			}
			if res.Outputs["p99_ms"].(float64) <= 0 {
				t.Errorf("p99_ms = %v, want > 0 (k6 run with --summary-trend-stats)", res.Outputs["p99_ms"])
			}
			if len(art["summary.json"]) == 0 {
				t.Error("summary.json not stored")
			}
		})
	}
}
