package envctl

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// agentFixture is a controller whose rollout of v2 on prod is in its
// post-promotion window, with monitor health run from local and eu-west
// and monitor pay from eu-west only. Local monitors run for real
// (monitor.Run, which runs only those of location local).
func agentFixture(t *testing.T) (*fixture, runtime.RolloutStatus) {
	t.Helper()
	f := newFixture(t)
	f.configure = func(c *Config) { c.Monitor = monitor.Run }
	f.open()
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.okWorkload("v1", 1, true))
	_, err := f.ctl.Rollout(context.Background(), runtime.RolloutRequest{
		Strategy: runtime.BlueGreen{ActiveService: "app", AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(600)},
		Monitors: []runtime.Monitor{
			{Name: "health", Path: "/", Interval: time.Second, Locations: []string{"local", "eu-west"}},
			{Name: "pay", Path: "/json", Interval: time.Second, Locations: []string{"eu-west"}},
		},
		Deploy: runtime.DeployRequest{Environment: "prod", Workloads: []runtime.Workload{f.okWorkload("v2", 1, true)}, Who: "tester"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitRollout(t, f.ctl, "prod", "promotion", atStep(runtime.StepScaleDown))
	return f, first
}

func result(name string, ok bool) runtime.MonitorResult {
	r := runtime.MonitorResult{Monitor: name, At: time.Now().UTC(), OK: ok, Status: 200, Latency: time.Millisecond}
	if !ok {
		r.Status, r.Message = 503, "GET /json: status 503, want 200"
	}
	return r
}

func TestAgentAssignments(t *testing.T) {
	f, first := agentFixture(t)
	ctx := context.Background()
	tests := []struct {
		location string
		want     []string // monitor names
	}{
		{"eu-west", []string{"health", "pay"}},
		{"us-east", nil},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			got, err := f.ctl.MonitorAssignments(ctx, tt.location)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(got) != 0 {
					t.Errorf("assignments %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("assignments %+v, want one for prod", got)
			}
			a := got[0]
			var names []string
			for _, m := range a.Monitors {
				names = append(names, m.Name)
			}
			if a.Environment != "prod" || a.Revision != 2 || a.URL != first.ActiveURL || a.Until.IsZero() || !slices.Equal(names, tt.want) {
				t.Errorf("assignment %s rev %d url %s until %s monitors %v; want prod rev 2 url %s, a deadline, monitors %v",
					a.Environment, a.Revision, a.URL, a.Until, names, first.ActiveURL, tt.want)
			}
		})
	}
	if _, err := f.ctl.MonitorAssignments(ctx, "local"); !errors.Is(err, runtime.ErrInvalidRequest) {
		t.Errorf("assignments for local: error %v, want ErrInvalidRequest", err)
	}
}

func TestAgentURLSetting(t *testing.T) {
	f, _ := agentFixture(t)
	f.ctl.cfg.AgentURLs = map[string]string{"prod": "https://pay.example.com"}
	got, err := f.ctl.MonitorAssignments(context.Background(), "eu-west")
	if err != nil || len(got) != 1 {
		t.Fatalf("assignments %+v, %v; want one", got, err)
	}
	if got[0].URL != "https://pay.example.com" {
		t.Errorf("url %s, want the one set for prod", got[0].URL)
	}
}

func TestAgentReportRefused(t *testing.T) {
	f, _ := agentFixture(t)
	ctx := context.Background()
	tooMany := make([]runtime.MonitorResult, maxReportResults+1)
	for i := range tooMany {
		tooMany[i] = result("health", true)
	}
	longMsg := result("health", false)
	longMsg.Message = strings.Repeat("x", maxResultMessage+1)
	noTime := result("health", true)
	noTime.At = time.Time{}
	other := result("health", true)
	other.Location = "us-east"
	tests := []struct {
		name     string
		location string
		reports  []runtime.MonitorReport
		want     string
	}{
		{"local", "local", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{result("health", true)}}}, "is the gantry server itself"},
		{"location not listed", "us-east", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{result("health", true)}}}, "monitor health does not run from us-east (its locations: local, eu-west)"},
		{"unknown monitor", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{result("login", true)}}}, `the rollout has no monitor "login"`},
		{"unknown environment", "eu-west", []runtime.MonitorReport{{Environment: "staging", Revision: 2, Results: []runtime.MonitorResult{result("health", true)}}}, "environment staging"},
		{"environment twice", "eu-west", []runtime.MonitorReport{
			{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{result("health", true)}},
			{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{result("pay", true)}}}, `reports[1]: environment "prod" is reported twice`},
		{"no results", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2}}, "reports[0]: no results"},
		{"too many results", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: tooMany}}, "257 results, at most 256"},
		{"long message", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{longMsg}}}, "message longer than 2048 bytes"},
		{"no time", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{noTime}}}, "no time"},
		{"other location inside", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{other}}}, `result from location "us-east" in a report of "eu-west"`},
		// The failing result after a bad one is not recorded: the whole
		// report is refused, so nothing aborts.
		{"one bad refuses all", "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2, Results: []runtime.MonitorResult{result("pay", false), result("login", true)}}}, `results[1]: environment prod: the rollout has no monitor "login"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.ctl.ReportMonitors(ctx, tt.location, tt.reports)
			if !errors.Is(err, runtime.ErrInvalidRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrInvalidRequest containing %q", err, tt.want)
			}
		})
	}
	st, err := f.ctl.RolloutStatus(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Monitors {
		if m.Location != "local" {
			t.Errorf("recorded %+v from a refused report", m)
		}
	}
	if st.Phase != runtime.RolloutHealthy {
		t.Errorf("phase %s, want Healthy: refused reports abort nothing", st.Phase)
	}
}

func TestAgentReportRecordedAndAborts(t *testing.T) {
	f, first := agentFixture(t)
	ctx := context.Background()
	got, err := f.ctl.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{result("health", true), result("pay", true)}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Recorded != 2 || got.Ignored != 0 || len(got.Aborted) != 0 {
		t.Errorf("report result %+v, want 2 recorded", got)
	}
	st := waitRollout(t, f.ctl, "prod", "local and eu-west results", func(st runtime.RolloutStatus) bool {
		n := 0
		for _, m := range st.Monitors {
			if m.OK && (m.Location == "local" || m.Location == "eu-west") {
				n++
			}
		}
		return n == 3
	})
	if st.PromotedAt.IsZero() {
		t.Errorf("no promotedAt in %+v", st)
	}

	// A result for another revision, or from before the promotion, is
	// ignored.
	old := result("pay", false)
	old.At = st.PromotedAt.Add(-time.Second)
	got, err = f.ctl.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 1,
		Results: []runtime.MonitorResult{result("pay", false)}}})
	if err != nil || got.Recorded != 0 || got.Ignored != 1 {
		t.Errorf("report for revision 1: %+v, %v; want it ignored", got, err)
	}
	got, err = f.ctl.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{old}}})
	if err != nil || got.Recorded != 0 || got.Ignored != 1 {
		t.Errorf("report from before the promotion: %+v, %v; want it ignored", got, err)
	}
	if st, _ := f.ctl.RolloutStatus(ctx, "prod"); st.Phase != runtime.RolloutHealthy {
		t.Fatalf("phase %s after ignored reports, want Healthy", st.Phase)
	}

	// A failing result in the window aborts, back to blue.
	got, err = f.ctl.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{result("pay", false)}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Aborted, []string{"prod"}) {
		t.Errorf("report result %+v, want prod aborted", got)
	}
	st = waitRollout(t, f.ctl, "prod", "the abort", atStep(runtime.StepAborted))
	if !strings.Contains(st.Message, "monitor pay from eu-west failed: GET /json: status 503") || st.Stable != 1 || st.AbortedBy != "gantry" {
		t.Errorf("aborted: message %q stable %d by %q, want the eu-west monitor named, stable 1, by gantry", st.Message, st.Stable, st.AbortedBy)
	}
	waitFor(t, 5*time.Second, "active on blue", func() error { return wantBody(first.ActiveURL, "v1") })

	// Out of the window, results are ignored and nothing is assigned.
	got, err = f.ctl.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{result("pay", true)}}})
	if err != nil || got.Ignored != 1 {
		t.Errorf("report after the abort: %+v, %v; want it ignored", got, err)
	}
	if as, err := f.ctl.MonitorAssignments(ctx, "eu-west"); err != nil || len(as) != 0 {
		t.Errorf("assignments after the abort: %+v, %v; want none", as, err)
	}
}
