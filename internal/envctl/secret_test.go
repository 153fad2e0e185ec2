package envctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// TestAnalysisSecretKeyRef: an AnalysisTemplate argument from
// valueFrom.secretKeyRef takes the value the request carries for it
// (SECRET_<NAME>_<KEY>); the metric's provider gets it, and it is shown
// nowhere: not in the measured values (the provider echoes it back), the
// status, the events or the log.
func TestAnalysisSecretKeyRef(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		got = append(got, auth)
		fmt.Fprintf(w, `{"ok": %t, "echo": %q}`, auth == "Bearer "+token, auth)
	}))
	t.Cleanup(srv.Close)
	src := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: authed
spec:
  args:
  - name: url
  - name: token
    valueFrom:
      secretKeyRef: {name: metrics-api, key: token}
  metrics:
  - name: ok
    interval: 50ms
    count: 2
    successCondition: result.ok == true
    provider:
      web:
        url: "{{args.url}}"
        headers: [{key: Authorization, value: "Bearer {{args.token}}"}]
        jsonPath: "{$}"
`
	tmpl, err := analysis.ParseTemplate("authed.yaml", []byte(src), "authed")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	f := newFixture(t)
	f.configure = func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f.open()
	f.run()
	f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	a := analysisOf(srv.URL)
	a.Templates = []*analysis.Template{tmpl}
	a.Secrets = map[string]string{analysis.SecretEnvName("metrics-api", "token"): token}
	f.mustRollout("prod", runtime.BlueGreen{AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(0), PrePromotionAnalysis: a}, f.workload("v2", 1, ""))
	st := waitRollout(t, f.ctl, "prod", "the end of the cycle", func(st runtime.RolloutStatus) bool {
		return st.Step == runtime.StepCompleted || st.Step == runtime.StepAborted
	})
	if st.Step != runtime.StepCompleted || len(st.Analyses) != 1 || st.Analyses[0].Phase != analysis.PhaseSuccessful {
		t.Fatalf("rollout: step %s (%s), analyses %+v; want completed after a Successful analysis", st.Step, st.Message, st.Analyses)
	}
	if len(got) == 0 || got[0] != "Bearer "+token {
		t.Errorf("the provider got Authorization %q, want the secret's value", got)
	}
	status, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(status, []byte("***")) {
		t.Errorf("the echoed secret is not shown masked in the measurements: %s", status)
	}
	evs, err := f.ctl.RolloutEvents(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"status": string(status), "events": fmt.Sprint(evs), "log": logs.String()} {
		if strings.Contains(text, token) {
			t.Errorf("the secret's value is in the %s:\n%s", where, text)
		}
	}
}
