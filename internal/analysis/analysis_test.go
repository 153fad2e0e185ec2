package analysis

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestArgoExamplesParseUnchanged(t *testing.T) {
	files, err := filepath.Glob("testdata/argo/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Argo examples: %v", err)
	}
	want := map[string]int{
		"analysis-templates.yaml": 2, "rollout-secret.yaml": 1, "analysis-endtest.yaml": 1,
		"prometheus-docs.yaml": 4, "web-docs.yaml": 1,
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := ParseTemplates(f, data)
			if err != nil {
				t.Fatalf("ParseTemplates: %v", err)
			}
			if got := len(ts); got != want[filepath.Base(f)] {
				t.Errorf("templates = %d, want %d", got, want[filepath.Base(f)])
			}
		})
	}
}

func TestArgoExamplesCompile(t *testing.T) {
	secrets := func(name, key string) (string, bool) { return "s3cr3t-" + name + "-" + key, true }
	tests := []struct {
		file, name string
		args       map[string]string
		wantErr    string
	}{
		{"prometheus-docs.yaml", "success-rate", map[string]string{"service-name": "pay"}, ""},
		{"prometheus-docs.yaml", "success-rate", nil, "argument service-name has no value"},
		{"prometheus-docs.yaml", "range-query-example", map[string]string{"service-name": "pay"}, "rangeQuery is not supported"},
		{"prometheus-docs.yaml", "success-rate-oauth", map[string]string{"service-name": "pay"}, "authentication"},
		{"web-docs.yaml", "web", map[string]string{"service-name": "pay", "api-token": "t"}, ""},
		{"rollout-secret.yaml", "analysis-secret", nil, ""},
		{"analysis-templates.yaml", "random-fail", nil, ""},
		{"analysis-endtest.yaml", "endtest", nil, "needs a command"}, // runs the image's entrypoint
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/argo", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := ParseTemplate(tt.file, data, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			err = Check(tmpl, Options{Args: tt.args, Secret: secrets})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Check error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseErrorsHavePositions(t *testing.T) {
	src := "kind: AnalysisTemplate\nmetadata: {name: x}\nspec:\n  metrics:\n  - name: m\n    intervall: 5s\n    provider: {web: {url: http://x}}\n"
	_, err := ParseTemplates("t.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:6:5") {
		t.Fatalf("error = %v, want t.yaml:6:5", err)
	}
}

func TestConditions(t *testing.T) {
	tests := []struct {
		cond   string
		result any
		want   bool
		err    bool
	}{
		{"result[0] < 0.25", []float64{0.2}, true, false},
		{"result[0] < 0.25", []float64{0.3}, false, false},
		{"len(result) > 0", []float64{}, false, false},
		{"isNaN(result)", math.NaN(), true, false},
		{"isNaN(result[0])", []float64{1}, false, false},
		{"isInf(result)", math.Inf(1), true, false},
		{"asInt(result) >= 5", "7", true, false},
		{"asFloat(result) < 0.5", "0.25", true, false},
		{"default(result, 3) == 3", nil, true, false},
		{"isNil(result)", nil, true, false},
		{"result == 'It worked!'", "It worked!", true, false},
		{"result.ok && result.successPercent >= 0.90", map[string]any{"ok": true, "successPercent": 0.95}, true, false},
		{"all(result, # < 1000)", []float64{10, 20}, true, false},
		{"result[0]", []float64{1}, false, true}, // not a boolean
		{"result[3] > 1", []float64{1}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			c, err := CompileCondition(tt.cond)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Eval(tt.result)
			if (err != nil) != tt.err {
				t.Fatalf("Eval error = %v, want error %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Eval(%v) = %v, want %v", tt.result, got, tt.want)
			}
		})
	}
}

func TestAssess(t *testing.T) {
	lt := func(s string) *Condition { c, _ := CompileCondition(s); return c }
	tests := []struct {
		name             string
		success, failure *Condition
		v                float64
		want             Phase
	}{
		{"none", nil, nil, 1, PhaseSuccessful},
		{"success met", lt("result < 1"), nil, 0.5, PhaseSuccessful},
		{"success unmet fails", lt("result < 1"), nil, 2, PhaseFailed},
		{"failure met", nil, lt("result > 1"), 2, PhaseFailed},
		{"failure unmet succeeds", nil, lt("result > 1"), 0.5, PhaseSuccessful},
		{"both, neither: inconclusive", lt("result < 1"), lt("result > 2"), 1.5, PhaseInconclusive},
		{"both, failure wins", lt("result < 10"), lt("result > 2"), 5, PhaseFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := assess(tt.v, tt.success, tt.failure)
			if err != nil || got != tt.want {
				t.Errorf("assess = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// webTemplate builds a template with one web metric against url.
func webTemplate(t *testing.T, metric string) *Template {
	t.Helper()
	src := "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n" +
		"  args: [{name: url}]\n  metrics:\n" + metric
	tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestWebRunPhases(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		switch r.URL.Path {
		case "/err":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/seq": // 0.1, 0.5, 0.1, 0.5, ...
			v := "0.1"
			if i%2 == 0 {
				v = "0.5"
			}
			_, _ = w.Write([]byte(`{"data":{"p99":` + v + `}}`))
		default:
			_, _ = w.Write([]byte(`{"data":{"p99":0.2,"ok":true}}`))
		}
	}))
	defer srv.Close()
	tests := []struct {
		name   string
		metric string
		path   string
		want   Phase
		count  int
	}{
		{"successful", `  - {name: m, interval: 50ms, count: 3, successCondition: "result < 0.25", provider: {web: {url: "{{args.url}}", jsonPath: "{$.data.p99}"}}}` + "\n", "/", PhaseSuccessful, 3},
		{"failed past failureLimit", `  - {name: m, interval: 50ms, count: 10, failureLimit: 1, successCondition: "result < 0.25", provider: {web: {url: "{{args.url}}", jsonPath: "{$.data.p99}"}}}` + "\n", "/seq", PhaseFailed, 4},
		{"inconclusive", `  - {name: m, interval: 50ms, count: 3, successCondition: "result < 0.1", failureCondition: "result > 0.3", provider: {web: {url: "{{args.url}}", jsonPath: "{$.data.p99}"}}}` + "\n", "/", PhaseInconclusive, 1},
		{"error after consecutive errors", `  - {name: m, interval: 20ms, count: 3, consecutiveErrorLimit: 2, provider: {web: {url: "{{args.url}}"}}}` + "\n", "/err", PhaseError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.Store(0)
			run, err := Execute(context.Background(), webTemplate(t, tt.metric), Options{Args: map[string]string{"url": srv.URL + tt.path}})
			if err != nil {
				t.Fatal(err)
			}
			m := run.Metrics[0]
			if run.Phase != tt.want || m.Phase != tt.want {
				t.Errorf("phase = %s (metric %s: %s), want %s", run.Phase, m.Phase, m.Message, tt.want)
			}
			if m.Count != tt.count {
				t.Errorf("count = %d, want %d", m.Count, tt.count)
			}
			// The conditions travel with the result, for readers that
			// draw each measurement against its threshold.
			if tt.name == "inconclusive" && (m.SuccessCondition != "result < 0.1" || m.FailureCondition != "result > 0.3") {
				t.Errorf("conditions = %q, %q; want the template's", m.SuccessCondition, m.FailureCondition)
			}
			if tt.want == PhaseError && len(m.Measurements) != 3 {
				t.Errorf("measurements = %d, want 3 (errors past the limit of 2)", len(m.Measurements))
			}
		})
	}
}

func TestStoppedRunIsNotSuccessful(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`1`))
	}))
	defer srv.Close()
	tmpl := webTemplate(t, `  - {name: m, interval: 100ms, count: 10, successCondition: "result == 1", provider: {web: {url: "{{args.url}}"}}}`+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	run, err := Execute(ctx, tmpl, Options{Args: map[string]string{"url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Phase != PhaseStopped {
		t.Errorf("phase = %s, want Stopped", run.Phase)
	}
	if m := run.Metrics[0]; m.Count == 0 || m.Count >= 10 || !strings.Contains(m.Message, "of 10") {
		t.Errorf("metric = %+v, want a few measurements and a stop message", m)
	}
}

func TestDryRunDoesNotFailRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`5`))
	}))
	defer srv.Close()
	src := "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  args: [{name: url}]\n  dryRun: [{metricName: shadow.*}]\n  metrics:\n" +
		"  - {name: shadow-p99, successCondition: result < 1, provider: {web: {url: '{{args.url}}'}}}\n" +
		"  - {name: real, successCondition: result > 1, provider: {web: {url: '{{args.url}}'}}}\n"
	tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	run, err := Execute(context.Background(), tmpl, Options{Args: map[string]string{"url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Phase != PhaseSuccessful || run.Metrics[0].Phase != PhaseFailed || !run.Metrics[0].DryRun {
		t.Errorf("run %s, dry-run metric %s (dryRun=%v); want Successful with the dry-run metric Failed", run.Phase, run.Metrics[0].Phase, run.Metrics[0].DryRun)
	}
}

func TestJobProviderRunsArgoExample(t *testing.T) {
	data, err := os.ReadFile("testdata/argo/analysis-templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate("analysis-templates.yaml", data, "pass")
	if err != nil {
		t.Fatal(err)
	}
	// "pass" measures every 5 s without a count (background analysis):
	// stopping it after the first measurement is a normal end.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	run, err := Execute(ctx, tmpl, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Phase != PhaseSuccessful || run.Metrics[0].Successful != 1 {
		t.Errorf("pass: phase %s, metric %+v", run.Phase, run.Metrics[0])
	}
	failing := webTemplate(t, "  - {name: j, provider: {job: {spec: {template: {spec: {containers: [{name: c, image: x, command: [sh, -c], args: ['echo nope; exit 3']}]}}}}}}\n")
	run, err = Execute(context.Background(), failing, Options{Args: map[string]string{"url": "unused"}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Phase != PhaseFailed || !strings.Contains(run.Metrics[0].Measurements[0].Value, "exit 3: nope") {
		t.Errorf("failing job: phase %s, measurements %+v", run.Phase, run.Metrics[0].Measurements)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	src := "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  args:\n  - name: url\n    valueFrom: {secretKeyRef: {name: web, key: url}}\n  metrics:\n" +
		"  - {name: m, consecutiveErrorLimit: 0, provider: {web: {url: '{{args.url}}/x'}}}\n"
	tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{SecretEnvName("web", "url") + "=" + srv.URL + "/tok3n"}
	run, err := Execute(context.Background(), tmpl, Options{Secret: SecretsFromEnv(env)})
	if err != nil {
		t.Fatal(err)
	}
	if run.Phase != PhaseError {
		t.Fatalf("phase %s, want Error", run.Phase)
	}
	for _, m := range run.Metrics[0].Measurements {
		if strings.Contains(m.Message+m.Value, "tok3n") {
			t.Errorf("secret leaked: %q", m.Message)
		}
	}
}

type fakeSource map[string]float64

func (f fakeSource) MetricValue(metric, stat string) (float64, error) { return f[metric+"."+stat], nil }

func TestGantryProvider(t *testing.T) {
	tmpl := webTemplate(t, `  - {name: p99, count: 2, interval: 10ms, successCondition: "result < 250", provider: {gantry: {metric: http_req_duration, stat: "p(99)"}}}`+"\n")
	run, err := Execute(context.Background(), tmpl, Options{Args: map[string]string{"url": "-"}, Gantry: fakeSource{"http_req_duration.p(99)": 120}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Phase != PhaseSuccessful || run.Metrics[0].Measurements[0].Value != "120" {
		t.Errorf("run %+v", run)
	}
	if err := Check(tmpl, Options{Args: map[string]string{"url": "-"}}); err == nil {
		t.Error("Check without a load test: want an error")
	}
}
