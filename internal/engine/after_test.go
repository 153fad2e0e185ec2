package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestAfterRunsWhateverTheOutcome: a step after: [scan] runs once scan
// ended, even though scan failed and a step needing scan was skipped.
func TestAfterRunsWhateverTheOutcome(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: demo
stages:
  - name: security
    steps:
      - {name: scan, run: 'sleep 0.2; echo found > scan.done; exit 1'}
      - {name: fix, run: 'echo never', needs: [scan]}
      - name: sign
        after: [scan, fix]
        env: {SCAN: "${steps.scan.status}", FIX: "${steps.fix.status}"}
        run: 'test -f scan.done && echo "signed: scan $SCAN, fix $FIX"'
      - {name: blocked, run: 'echo never', needs: [scan], after: [sign]}
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusFailed {
		t.Fatalf("status: got %s, want failed (scan failed)", res.Status)
	}
	steps := f.steps(res.RunID)
	for name, want := range map[string]store.Status{
		"security/scan": store.StatusFailed, "security/fix": store.StatusSkipped,
		"security/sign": store.StatusPassed, "security/blocked": store.StatusSkipped,
	} {
		if got := steps[name].Status; got != want {
			t.Errorf("%s: got %s (%s), want %s", name, got, steps[name].Message, want)
		}
	}
	scan, sign := steps["security/scan"], steps["security/sign"]
	if sign.Started.Before(scan.Finished) {
		t.Errorf("sign started at %s, before scan finished at %s", sign.Started, scan.Finished)
	}
	if got, want := f.allLogs(res.RunID), "signed: scan failed, fix skipped"; !strings.Contains(got, want) {
		t.Errorf("logs lack %q:\n%s", want, got)
	}
	if got, want := steps["security/blocked"].Message, "needs: scan failed"; got != want {
		t.Errorf("blocked: got message %q, want %q", got, want)
	}
}
