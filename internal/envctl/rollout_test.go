package envctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/testload"
)

// webTemplate is an AnalysisTemplate measuring {{args.url}}'s JSON "ok"
// field count times, interval apart, with Argo's web provider.
func webTemplate(t testing.TB, name string, count int, interval string) *analysis.Template {
	t.Helper()
	src := fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: %s
spec:
  args:
  - name: url
  metrics:
  - name: ok
    interval: %s
    count: %d
    successCondition: result == true
    provider:
      web:
        url: "{{args.url}}"
        jsonPath: "{$.ok}"
`, name, interval, count)
	tmpl, err := analysis.ParseTemplate(name+".yaml", []byte(src), name)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func intp(i int) *int { return &i }

// verdict is an httptest server whose JSON "ok" the test sets.
type verdict struct {
	srv *httptest.Server
	ok  atomic.Bool
	n   atomic.Int64 // measurements answered
}

func newVerdict(t *testing.T, ok bool) *verdict {
	v := &verdict{}
	v.ok.Store(ok)
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.n.Add(1)
		fmt.Fprintf(w, `{"ok": %t}`, v.ok.Load())
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func analysisOf(url string, tmpl ...*analysis.Template) *runtime.RolloutAnalysis {
	return &runtime.RolloutAnalysis{Templates: tmpl, Args: []runtime.AnalysisArg{{Name: "url", Value: url}}}
}

// rollout asks for a rollout of ws with strategy s.
func (f *fixture) rollout(env string, s runtime.BlueGreen, ws ...runtime.Workload) (runtime.RolloutStatus, error) {
	f.t.Helper()
	if s.ActiveService == "" {
		s.ActiveService = "app"
	}
	return f.ctl.Rollout(context.Background(), runtime.RolloutRequest{Strategy: s,
		Deploy: runtime.DeployRequest{Environment: env, Workloads: ws, Who: "tester"}})
}

func (f *fixture) mustRollout(env string, s runtime.BlueGreen, ws ...runtime.Workload) runtime.RolloutStatus {
	f.t.Helper()
	st, err := f.rollout(env, s, ws...)
	if err != nil {
		f.t.Fatalf("rollout: %v", err)
	}
	return st
}

// waitRollout waits until the rollout's status satisfies ok (Watch).
func waitRollout(t *testing.T, ctl *Controller, env string, what string, ok func(runtime.RolloutStatus) bool) runtime.RolloutStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last runtime.RolloutStatus
	err := ctl.Watch(ctx, env, func(st runtime.RolloutStatus) bool {
		last = st
		return !ok(st)
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last status: step %s, phase %s, message %q)", what, err, last.Step, last.Phase, last.Message)
	}
	return last
}

func atStep(step runtime.RolloutStep) func(runtime.RolloutStatus) bool {
	return func(st runtime.RolloutStatus) bool { return st.Step == step }
}

// body GETs url (with header k: v when k is set) and returns the body
// (or the error's text).
func body(url, k, v string) string {
	req, _ := http.NewRequest("GET", url, nil)
	if k != "" {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return strconv.Itoa(resp.StatusCode)
	}
	return strings.TrimSpace(string(b))
}

// okWorkload is f.workload with OK set (its /json says ok: OK != false).
func (f *fixture) okWorkload(version string, replicas int, ok bool) runtime.Workload {
	w := f.workload(version, replicas, "")
	w.Env = append(w.Env, "OK="+strconv.FormatBool(ok))
	return w
}

// instancePids lists the pids of revision rev's instances (from their
// pid files).
func (f *fixture) instancePid(t *testing.T, env string, rev, replica int) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.stateDir, "envs", env, "instances", instanceID(env, rev, "app", replica), "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func running(pid int) bool {
	// A zombie is gone for our purpose: /proc/PID/stat says Z.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestFirstRolloutDeploysAtOnce(t *testing.T) {
	f := newFixture(t)
	st := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	if st.Phase != runtime.RolloutHealthy || st.Step != runtime.StepCompleted || st.Stable != 1 || st.Desired != 1 {
		t.Errorf("first rollout: phase %s step %s stable %d desired %d, want Healthy completed 1 1", st.Phase, st.Step, st.Stable, st.Desired)
	}
	if got := body(st.ActiveURL, "", ""); got != "v1" {
		t.Errorf("active URL answers %q, want v1", got)
	}
	if st.PreviewURL == "" || st.PreviewURL == st.ActiveURL {
		t.Errorf("preview URL %q: want its own", st.PreviewURL)
	}
	if _, err := f.ctl.Promote(context.Background(), "prod", false, "alice"); !errors.Is(err, runtime.ErrRolloutState) {
		t.Errorf("promote of a completed rollout: error %v, want ErrRolloutState", err)
	}
	if _, err := f.ctl.RolloutStatus(context.Background(), "qa"); !errors.Is(err, runtime.ErrNoRollout) {
		t.Errorf("status of an unknown environment: error %v, want ErrNoRollout", err)
	}
	if _, err := f.rollout("prod", runtime.BlueGreen{ScaleDownDelaySeconds: intp(-1)}, f.workload("v2", 1, "")); !errors.Is(err, runtime.ErrInvalidRequest) {
		t.Errorf("negative scaleDownDelaySeconds: error %v, want ErrInvalidRequest", err)
	}
	if _, err := f.rollout("prod", runtime.BlueGreen{}, f.workload("v2", 1, ""), f.workload("v2", 1, "")); !errors.Is(err, runtime.ErrInvalidRequest) {
		t.Errorf("a workload twice: error %v, want ErrInvalidRequest", err)
	}
}

// TestBlueGreenPromoteUnderLoad is the good release: green beside blue,
// the preview URL on green only, a header's requests on green before
// promotion, a pre-promotion analysis against green, a pause, a promote
// with zero failed requests under continuous load, blue kept for its
// scale-down delay then stopped.
func TestBlueGreenPromoteUnderLoad(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 2, ""))
	active, preview := first.ActiveURL, first.PreviewURL
	l := testload.Start(active, 8)
	// A watcher sees every step and every measurement.
	var mu sync.Mutex
	var steps []runtime.RolloutStep
	measurements := 0
	wctx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() {
		watched <- f.ctl.Watch(wctx, "prod", func(st runtime.RolloutStatus) bool {
			mu.Lock()
			defer mu.Unlock()
			if len(steps) == 0 || steps[len(steps)-1] != st.Step {
				steps = append(steps, st.Step)
			}
			n := 0
			for _, a := range st.Analyses {
				for _, r := range a.Runs {
					for _, m := range r.Metrics {
						n += len(m.Measurements)
					}
				}
			}
			measurements = max(measurements, n)
			return true
		})
	}()
	st := f.mustRollout("prod", runtime.BlueGreen{
		PreviewService:        "app-preview",
		PreviewReplicaCount:   intp(1),
		PrePromotionAnalysis:  analysisOf(preview+"/json", webTemplate(t, "green-ok", 3, "50ms")),
		ScaleDownDelaySeconds: intp(1),
		PreviewTraffic:        &runtime.TrafficSplit{Header: "X-Preview", Value: "1"},
	}, f.okWorkload("v2", 2, true))
	if st.Step != runtime.StepPreview || st.Stable != 1 || st.Desired != 2 {
		t.Fatalf("rollout: step %s stable %d desired %d, want preview 1 2", st.Step, st.Stable, st.Desired)
	}
	if _, err := f.deploy("prod", f.workload("v9", 1, "")); !errors.Is(err, runtime.ErrDeployInProgress) {
		t.Errorf("deploy during a rollout: error %v, want ErrDeployInProgress", err)
	}
	st = waitRollout(t, f.ctl, "prod", "the pause", atStep(runtime.StepPaused))
	if st.Phase != runtime.RolloutPaused {
		t.Errorf("paused rollout phase %s, want Paused", st.Phase)
	}
	if len(st.Analyses) != 1 || st.Analyses[0].Phase != analysis.PhaseSuccessful || st.Analyses[0].Kind != "prePromotion" {
		t.Fatalf("analyses %+v, want one successful prePromotion", st.Analyses)
	}
	for range 10 {
		if got := body(active, "", ""); got != "v1" {
			t.Fatalf("active URL before promotion answers %q, want v1", got)
		}
		if got := body(preview, "", ""); got != "v2" {
			t.Fatalf("preview URL answers %q, want v2", got)
		}
		if got := body(active, "X-Preview", "1"); got != "v2" {
			t.Fatalf("active URL with the preview header answers %q, want v2", got)
		}
	}
	bluePid := f.instancePid(t, "prod", 1, 0)
	if _, err := f.ctl.Promote(context.Background(), "prod", false, "alice"); err != nil {
		t.Fatal(err)
	}
	st = waitRollout(t, f.ctl, "prod", "completion", atStep(runtime.StepCompleted))
	if st.Phase != runtime.RolloutHealthy || st.Stable != 2 || st.PromotedBy != "alice" {
		t.Errorf("completed: phase %s stable %d promotedBy %q, want Healthy 2 alice", st.Phase, st.Stable, st.PromotedBy)
	}
	for l.Seen("v2") < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	l.Stop()
	if n := l.Failed(); n != 0 {
		t.Errorf("%d requests failed across the switch (first: %v), want 0", n, l.First())
	}
	t.Logf("answers: %v", l.Bodies())
	if got := body(active, "", ""); got != "v2" {
		t.Errorf("active URL after promotion answers %q, want v2", got)
	}
	waitFor(t, 5*time.Second, "blue stopped", func() error {
		if running(bluePid) {
			return errors.New("blue's instance still runs")
		}
		return nil
	})
	wantStatuses(t, f.ctl, "prod", store.RevisionSuperseded, store.RevisionServing)
	stopWatch()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	want := []runtime.RolloutStep{runtime.StepPreview, runtime.StepPrePromotion, runtime.StepPaused, runtime.StepPostPromotion, runtime.StepScaleDown, runtime.StepCompleted}
	if fmt.Sprint(steps[len(steps)-len(want):]) != fmt.Sprint(want) {
		t.Errorf("watched steps %v, want them to end with %v", steps, want)
	}
	if measurements != 3 {
		t.Errorf("watched %d measurements, want 3", measurements)
	}
	evs, err := f.ctl.RolloutEvents(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, e := range evs {
		verbs = append(verbs, e.Verb+":"+e.Who)
	}
	if got := strings.Join(verbs, " "); !strings.Contains(got, "promote:alice") || !strings.Contains(got, "promoted:alice") {
		t.Errorf("audit trail %q: want promote and promoted by alice", got)
	}
}

// TestFailedAnalysisAbortsThenRetryIsFresh: a failing pre-promotion
// analysis aborts (active stays on blue, Degraded); retry runs a fresh
// analysis that passes instead of aborting again on the old result.
func TestFailedAnalysisAbortsThenRetryIsFresh(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	v := newVerdict(t, false)
	f.mustRollout("prod", runtime.BlueGreen{
		PrePromotionAnalysis:       analysisOf(v.srv.URL, webTemplate(t, "verdict", 2, "50ms")),
		AutoPromotionEnabled:       true,
		AbortScaleDownDelaySeconds: intp(0),
		ScaleDownDelaySeconds:      intp(0),
		PreviewTraffic:             &runtime.TrafficSplit{Percent: 50},
	}, f.workload("v2", 1, ""))
	st := waitRollout(t, f.ctl, "prod", "the abort", atStep(runtime.StepAborted))
	if st.Phase != runtime.RolloutDegraded || st.AbortedBy != "gantry" || !strings.Contains(st.Message, "pre-promotion analysis Failed") {
		t.Errorf("aborted: phase %s by %q message %q, want Degraded by gantry naming the analysis", st.Phase, st.AbortedBy, st.Message)
	}
	waitFor(t, 5*time.Second, "active on blue", func() error { return wantBody(first.ActiveURL, "v1") })
	for range 10 {
		if got := body(first.ActiveURL, "", ""); got != "v1" {
			t.Fatalf("active URL after the abort answers %q, want v1 (no split left)", got)
		}
	}
	if got := body(first.PreviewURL, "", ""); got != "v2" {
		t.Errorf("preview URL after the abort (abortScaleDownDelaySeconds 0 keeps green) answers %q, want v2", got)
	}
	wantStatuses(t, f.ctl, "prod", store.RevisionServing, store.RevisionAborted)
	if _, err := f.ctl.Promote(context.Background(), "prod", false, "alice"); !errors.Is(err, runtime.ErrRolloutState) {
		t.Errorf("promote an aborted rollout: error %v, want ErrRolloutState", err)
	}
	v.ok.Store(true)
	if _, err := f.ctl.Retry(context.Background(), "prod", "alice"); err != nil {
		t.Fatal(err)
	}
	st = waitRollout(t, f.ctl, "prod", "completion after retry", atStep(runtime.StepCompleted))
	if len(st.Analyses) != 2 || st.Analyses[0].Phase != analysis.PhaseFailed || st.Analyses[1].Phase != analysis.PhaseSuccessful {
		t.Fatalf("analyses after retry: %+v, want the failed one then a fresh successful one", st.Analyses)
	}
	if n := len(st.Analyses[1].Runs[0].Metrics[0].Measurements); n != 2 {
		t.Errorf("the retry's analysis took %d measurements, want its own 2", n)
	}
	if st.Phase != runtime.RolloutHealthy || st.Stable != 2 {
		t.Errorf("after retry: phase %s stable %d, want Healthy 2", st.Phase, st.Stable)
	}
	if got := body(first.ActiveURL, "", ""); got != "v2" {
		t.Errorf("active URL after retry and promotion answers %q, want v2", got)
	}
}

// TestManualAbortWhilePaused: abort sends the preview traffic back to blue
// at once; retry is refused while not aborted.
func TestManualAbortWhilePaused(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	f.mustRollout("prod", runtime.BlueGreen{PreviewTraffic: &runtime.TrafficSplit{Percent: 100}, AbortScaleDownDelaySeconds: intp(1)}, f.workload("v2", 1, ""))
	waitRollout(t, f.ctl, "prod", "the pause", atStep(runtime.StepPaused))
	if _, err := f.ctl.Retry(context.Background(), "prod", "bob"); !errors.Is(err, runtime.ErrRolloutState) {
		t.Errorf("retry of a paused rollout: error %v, want ErrRolloutState", err)
	}
	if got := body(first.ActiveURL, "", ""); got != "v2" {
		t.Fatalf("active URL with 100%% preview traffic answers %q, want v2", got)
	}
	greenPid := f.instancePid(t, "prod", 2, 0)
	start := time.Now()
	st, err := f.ctl.Abort(context.Background(), "prod", "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("abort took %s", time.Since(start))
	if got := body(first.ActiveURL, "", ""); got != "v1" {
		t.Errorf("active URL when abort returned answers %q, want v1", got)
	}
	if st.Phase != runtime.RolloutDegraded || st.AbortedBy != "bob" {
		t.Errorf("after abort: phase %s by %q, want Degraded by bob", st.Phase, st.AbortedBy)
	}
	waitFor(t, 10*time.Second, "green stopped after its abort scale-down delay", func() error {
		if running(greenPid) {
			return errors.New("green still runs")
		}
		return nil
	})
	if got := body(first.PreviewURL, "", ""); got != "503" {
		t.Errorf("preview URL with green stopped answers %q, want 503 (never blue)", got)
	}
}

// TestPostPromotionFailureGoesBackToBlue: a failing post-promotion
// analysis sends active traffic back to blue (still running: the
// scale-down delay) and the previous active revision (green) is scaled
// down even with abortScaleDownDelaySeconds 0.
func TestPostPromotionFailureGoesBackToBlue(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	l := testload.Start(first.ActiveURL, 4)
	v := newVerdict(t, false)
	f.mustRollout("prod", runtime.BlueGreen{
		AutoPromotionEnabled:       true,
		PostPromotionAnalysis:      analysisOf(v.srv.URL, webTemplate(t, "post", 3, "200ms")),
		ScaleDownDelaySeconds:      intp(60),
		AbortScaleDownDelaySeconds: intp(0),
	}, f.workload("v2", 1, ""))
	st := waitRollout(t, f.ctl, "prod", "the abort", atStep(runtime.StepAborted))
	if !strings.Contains(st.Message, "post-promotion analysis Failed") || st.Stable != 1 {
		t.Errorf("aborted: message %q stable %d, want the post-promotion analysis and stable 1", st.Message, st.Stable)
	}
	// The record says aborted a moment before the proxy switches back.
	waitFor(t, 5*time.Second, "active on blue", func() error { return wantBody(first.ActiveURL, "v1") })
	greenPid := f.instancePid(t, "prod", 2, 0)
	waitFor(t, 10*time.Second, "green (the previous active revision) stopped", func() error {
		if running(greenPid) {
			return errors.New("green still runs")
		}
		return nil
	})
	l.Stop()
	if n := l.Failed(); n != 0 {
		t.Errorf("%d requests failed across promotion and abort (first: %v), want 0", n, l.First())
	}
	if l.Seen("v2") == 0 {
		t.Errorf("green never answered the active URL: %v", l.Bodies())
	}
	wantStatuses(t, f.ctl, "prod", store.RevisionServing, store.RevisionAborted)
}

// TestAnalysisCutShortIsNeverSuccessful: a post-promotion analysis still
// running when the scale-down delay ends is Stopped and the rollout
// Degraded, never Healthy on it.
func TestAnalysisCutShortIsNeverSuccessful(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	v := newVerdict(t, true)
	f.mustRollout("prod", runtime.BlueGreen{
		AutoPromotionEnabled:  true,
		PostPromotionAnalysis: analysisOf(v.srv.URL, webTemplate(t, "long", 1000, "100ms")),
		ScaleDownDelaySeconds: intp(1),
	}, f.workload("v2", 1, ""))
	st := waitRollout(t, f.ctl, "prod", "completion", atStep(runtime.StepCompleted))
	if st.Phase != runtime.RolloutDegraded || !strings.Contains(st.Message, "cut short") {
		t.Errorf("phase %s message %q, want Degraded, cut short", st.Phase, st.Message)
	}
	if n := len(st.Analyses); n != 1 || st.Analyses[0].Phase == analysis.PhaseSuccessful {
		t.Fatalf("analyses %+v, want one that is not Successful", st.Analyses)
	}
	if got := st.Analyses[0].Phase; got != analysis.PhaseStopped {
		t.Errorf("cut-short analysis phase %s, want Stopped", got)
	}
}

// TestInstanceKilledDuringAnalysisFailsIt: a green instance killed while
// the pre-promotion analysis runs (the other one keeps answering the
// preview URL well) fails the analysis: the rollout aborts.
func TestInstanceKilledDuringAnalysisFailsIt(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	f.mustRollout("prod", runtime.BlueGreen{
		AutoPromotionEnabled: true,
		PrePromotionAnalysis: analysisOf(first.PreviewURL+"/json", webTemplate(t, "green", 1000, "50ms")),
	}, f.okWorkload("v2", 2, true))
	st := waitRollout(t, f.ctl, "prod", "the first measurement", func(st runtime.RolloutStatus) bool {
		return len(st.Analyses) == 1 && len(st.Analyses[0].Runs[0].Metrics) > 0
	})
	if err := syscall.Kill(-f.instancePid(t, "prod", 2, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitRollout(t, f.ctl, "prod", "the abort", atStep(runtime.StepAborted))
	if st.Analyses[0].Phase != analysis.PhaseFailed || !strings.Contains(st.Message, "prod-r2-app-1") {
		t.Errorf("analysis %s, message %q: want Failed naming the killed instance", st.Analyses[0].Phase, st.Message)
	}
	if got := body(first.ActiveURL, "", ""); got != "v1" {
		t.Errorf("active URL answers %q, want v1", got)
	}
}

// TestPreviewNeverReachesBlueDuringSwitch: load on the preview URL across
// the promotion only ever meets green.
func TestPreviewNeverReachesBlueDuringSwitch(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 2, ""))
	f.mustRollout("prod", runtime.BlueGreen{ScaleDownDelaySeconds: intp(0)}, f.workload("v2", 2, ""))
	waitRollout(t, f.ctl, "prod", "the pause", atStep(runtime.StepPaused))
	l := testload.Start(first.PreviewURL, 8)
	for l.Seen("v2") < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := f.ctl.Promote(context.Background(), "prod", true, "alice"); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, f.ctl, "prod", "completion", atStep(runtime.StepCompleted))
	n := l.Seen("v2")
	for l.Seen("v2") < n+50 {
		time.Sleep(5 * time.Millisecond)
	}
	l.Stop()
	if l.Seen("v1") != 0 || l.Failed() != 0 {
		t.Errorf("preview answers across the switch: %v, %d failed (first: %v); want only v2", l.Bodies(), l.Failed(), l.First())
	}
}

// TestUndoScalesDownThePreviousActive: undo is a new cycle for the
// earlier revision's workloads, and the revision it replaces is scaled
// down after its delay.
func TestUndoScalesDownThePreviousActive(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	s := runtime.BlueGreen{AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(1)}
	f.mustRollout("prod", s, f.workload("v2", 1, ""))
	waitRollout(t, f.ctl, "prod", "completion of v2", atStep(runtime.StepCompleted))
	v2 := f.instancePid(t, "prod", 2, 0)
	st, err := f.ctl.Undo(context.Background(), "prod", 0, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if st.Desired != 3 || st.Stable != 2 {
		t.Errorf("undo: desired %d stable %d, want 3 2", st.Desired, st.Stable)
	}
	waitRollout(t, f.ctl, "prod", "completion of the undo", atStep(runtime.StepCompleted))
	if got := body(first.ActiveURL, "", ""); got != "v1" {
		t.Errorf("active URL after undo answers %q, want v1", got)
	}
	waitFor(t, 5*time.Second, "revision 2 stopped", func() error {
		if running(v2) {
			return errors.New("revision 2 still runs")
		}
		return nil
	})
	h, err := f.ctl.History(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if h[2].Reason != "undo to 1" || h[2].Status != store.RevisionServing {
		t.Errorf("revision 3: %s %q, want serving, reason undo to 1", h[2].Status, h[2].Reason)
	}
	if _, err := f.ctl.Undo(context.Background(), "prod", 7, "carol"); !errors.Is(err, ErrNoRollbackTarget) {
		t.Errorf("undo to a revision that does not exist: error %v, want ErrNoRollbackTarget", err)
	}
}

// rolloutHelper is the child process of TestRolloutSurvivesKill: it runs
// a controller, rolls v1 out then v2 with the scenario's strategy, prints
// "ok" once the rollout reaches the scenario's step, then waits to be
// killed.
func rolloutHelper() {
	state := os.Getenv("ENVCTL_STATE")
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		fatal(err)
	}
	ctl, err := New(Config{Store: s, Runtime: procRuntime{}, Admitter: &refuser{}, Dir: filepath.Join(state, "envs"), Interval: 100 * time.Millisecond})
	if err != nil {
		fatal(err)
	}
	go ctl.Run(ctx) // killed with the process
	scenario := os.Getenv("ENVCTL_ROLLOUT")
	strategy, step := scenarioStrategy(scenario, os.Getenv("ENVCTL_VERDICT"))
	w := func(version string) runtime.Workload {
		return runtime.Workload{
			Name: "app", Image: "127.0.0.1:5000/app@sha256:" + strings.Repeat(version[1:], 64), Command: []string{os.Getenv("ENVCTL_APP")},
			Env: []string{"VERSION=" + version, "READY_FILE=" + os.Getenv("ENVCTL_READY")}, Replicas: 1,
			Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: 100 * time.Millisecond, FailureThreshold: 30},
		}
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := ctl.Rollout(ctx, runtime.RolloutRequest{Strategy: strategy,
			Deploy: runtime.DeployRequest{Environment: "prod", Workloads: []runtime.Workload{w(v)}, Who: "helper"}}); err != nil {
			fatal(err)
		}
	}
	err = ctl.Watch(ctx, "prod", func(st runtime.RolloutStatus) bool {
		if st.Step != step {
			return true
		}
		// Preview up, or post-promotion: the analysis has measured green
		// at least once.
		if (step == runtime.StepPrePromotion || step == runtime.StepPostPromotion) && (len(st.Analyses) == 0 || len(st.Analyses[0].Runs[0].Metrics) == 0) {
			return true
		}
		// Paused: the pause itself recorded (its phase and auto-promotion
		// deadline are written after the step).
		if step == runtime.StepPaused && st.Phase != runtime.RolloutPaused {
			return true
		}
		return false
	})
	if err != nil {
		fatal(err)
	}
	fmt.Println("ok")
	select {}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

// scenarioStrategy is the strategy of a kill scenario and the step at
// which the helper is killed.
func scenarioStrategy(scenario, verdictURL string) (runtime.BlueGreen, runtime.RolloutStep) {
	s := runtime.BlueGreen{ActiveService: "app", PreviewService: "app-preview"}
	switch scenario {
	case "preview":
		s.PrePromotionAnalysis = analysisOf(verdictURL, webTemplate(&testing.T{}, "long", 1000, "100ms"))
		s.AutoPromotionEnabled = true
		return s, runtime.StepPrePromotion
	case "paused":
		s.AutoPromotionSeconds = 3
		return s, runtime.StepPaused
	case "scaledown":
		s.AutoPromotionEnabled = true
		s.ScaleDownDelaySeconds = intp(3)
		return s, runtime.StepScaleDown
	case "postpromotion":
		s.PostPromotionAnalysis = analysisOf(verdictURL, webTemplate(&testing.T{}, "long", 1000, "100ms"))
		s.AutoPromotionEnabled = true
		s.ScaleDownDelaySeconds = intp(600)
		return s, runtime.StepPostPromotion
	}
	fatal(fmt.Errorf("unknown scenario %q", scenario))
	return s, ""
}

// TestRolloutSurvivesKill: the serve process killed with -9 while green's
// preview is up (its analysis running), while paused, while the
// post-promotion analysis runs and while blue waits out its scale-down
// delay; a new process carries on from the record: deadlines kept, the
// active URL on the right revision, an interrupted analysis never counted
// as passed.
func TestRolloutSurvivesKill(t *testing.T) {
	for _, scenario := range []string{"preview", "paused", "postpromotion", "scaledown"} {
		t.Run(scenario, func(t *testing.T) {
			f := newFixture(t)
			v := newVerdict(t, true)
			ready := filepath.Join(f.stateDir, "ready")
			if err := os.WriteFile(ready, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "ENVCTL_HELPER=1", "ENVCTL_ROLLOUT="+scenario, "ENVCTL_STATE="+f.stateDir, "ENVCTL_APP="+appBin,
				"ENVCTL_READY="+ready, "ENVCTL_VERDICT="+v.srv.URL)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			if err != nil || strings.TrimSpace(line) != "ok" {
				t.Fatalf("helper said %q (%v)", line, err)
			}
			before, err := f.ctl.RolloutStatus(context.Background(), "prod")
			if err != nil {
				t.Fatal(err)
			}
			if body(before.ActiveURL, "", "") == "v1" {
				t.Fatal("the active URL answers after the kill: the helper lives on")
			}
			f.run()
			switch scenario {
			case "preview":
				waitFor(t, 20*time.Second, "active on blue", func() error { return wantBody(before.ActiveURL, "v1") })
				waitFor(t, 20*time.Second, "preview on green", func() error { return wantBody(before.PreviewURL, "v2") })
				st := waitRollout(t, f.ctl, "prod", "a fresh analysis", func(st runtime.RolloutStatus) bool {
					return len(st.Analyses) == 2 && len(st.Analyses[1].Runs[0].Metrics) > 0
				})
				if st.Analyses[0].Phase != analysis.PhaseStopped || st.Analyses[1].Phase != analysis.PhaseRunning || st.Step != runtime.StepPrePromotion {
					t.Errorf("after restart: step %s, analyses %s then %s; want prePromotion, the interrupted one Stopped and a fresh one Running",
						st.Step, st.Analyses[0].Phase, st.Analyses[1].Phase)
				}
			case "paused":
				waitFor(t, 20*time.Second, "active on blue", func() error { return wantBody(before.ActiveURL, "v1") })
				st := waitRollout(t, f.ctl, "prod", "auto-promotion", atStep(runtime.StepPostPromotion))
				if !st.PauseUntil.IsZero() || before.PauseUntil.IsZero() {
					t.Errorf("pause deadline before %v, after promotion %v", before.PauseUntil, st.PauseUntil)
				}
				promoted := waitEvent(t, f.ctl, "promoted", 2)
				if promoted.At.Before(before.PauseUntil) {
					t.Errorf("promoted at %v, want at or after the recorded deadline %v", promoted.At, before.PauseUntil)
				}
				waitFor(t, 20*time.Second, "active on green", func() error { return wantBody(before.ActiveURL, "v2") })
			case "postpromotion":
				// Blue is still kept (its deadline is 10 minutes away): the
				// active URL serves green, the post-promotion analysis runs
				// afresh and blue runs again, ready for an abort.
				waitFor(t, 20*time.Second, "active on green", func() error { return wantBody(before.ActiveURL, "v2") })
				st := waitRollout(t, f.ctl, "prod", "a fresh post-promotion analysis", func(st runtime.RolloutStatus) bool {
					return len(st.Analyses) == 2 && len(st.Analyses[1].Runs[0].Metrics) > 0
				})
				if st.Analyses[0].Phase != analysis.PhaseStopped || st.Analyses[1].Phase != analysis.PhaseRunning || st.Analyses[1].Kind != "postPromotion" || st.Step != runtime.StepPostPromotion {
					t.Errorf("after restart: step %s, analyses %s then %s %s; want postPromotion, the interrupted one Stopped and a fresh postPromotion Running",
						st.Step, st.Analyses[0].Phase, st.Analyses[1].Kind, st.Analyses[1].Phase)
				}
				if !st.ScaleDownAt.Equal(before.ScaleDownAt) || st.ScaleDownAt.IsZero() {
					t.Errorf("scale-down deadline before the kill %v, after %v: want it kept", before.ScaleDownAt, st.ScaleDownAt)
				}
				if _, err := f.ctl.Abort(context.Background(), "prod", "dave", "after the restart"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 20*time.Second, "active back on blue", func() error { return wantBody(before.ActiveURL, "v1") })
				st = waitRollout(t, f.ctl, "prod", "the analysis over", func(st runtime.RolloutStatus) bool {
					return st.Analyses[1].Phase != analysis.PhaseRunning
				})
				if st.Analyses[1].Phase == analysis.PhaseSuccessful {
					t.Errorf("post-promotion analysis cut short by the abort: Successful, want not")
				}
			case "scaledown":
				waitFor(t, 20*time.Second, "active on green", func() error { return wantBody(before.ActiveURL, "v2") })
				st := waitRollout(t, f.ctl, "prod", "completion", atStep(runtime.StepCompleted))
				if st.Phase != runtime.RolloutHealthy {
					t.Errorf("phase %s, want Healthy", st.Phase)
				}
				down := waitEvent(t, f.ctl, "scaled-down", 1)
				if down.At.Before(before.ScaleDownAt) {
					t.Errorf("revision 1 scaled down at %v, want at or after the recorded deadline %v", down.At, before.ScaleDownAt)
				}
				if got := body(before.ActiveURL, "", ""); got != "v2" {
					t.Errorf("active URL after completion answers %q, want v2", got)
				}
			}
		})
	}
}

func wantBody(url, want string) error {
	if got := body(url, "", ""); got != want {
		return fmt.Errorf("GET %s = %q, want %q", url, got, want)
	}
	return nil
}

// waitEvent waits for the audit event verb of revision rev.
func waitEvent(t *testing.T, ctl *Controller, verb string, rev int) store.RolloutEvent {
	t.Helper()
	var found store.RolloutEvent
	waitFor(t, 10*time.Second, "event "+verb, func() error {
		evs, err := ctl.RolloutEvents(context.Background(), "prod")
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Verb == verb && e.Revision == rev {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no %s event of revision %d in %d events", verb, rev, len(evs))
	})
	return found
}

// checkJSONOK is the tests' monitor runner (serve wires monitor.Run):
// every monitor GETs baseURL+Path every Interval from "local" and passes
// when the answer is 200 with "ok": true in its JSON.
func checkJSONOK(ctx context.Context, baseURL string, ms []runtime.Monitor, report func(runtime.MonitorResult)) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			t := time.NewTicker(m.Interval)
			defer t.Stop()
			for {
				res := runtime.MonitorResult{Monitor: m.Name, Location: "local", At: time.Now().UTC()}
				got := body(baseURL+m.Path, "", "")
				res.OK = strings.Contains(got, `"ok": true`)
				if !res.OK {
					res.Message = "answer " + got
				}
				report(res)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// TestFailingMonitorAbortsAfterPromotion: a synthetic monitor failing in
// the post-promotion window sends active traffic back to blue.
func TestFailingMonitorAbortsAfterPromotion(t *testing.T) {
	f := newFixture(t)
	f.configure = func(c *Config) { c.Monitor = checkJSONOK }
	f.open()
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.okWorkload("v1", 1, true))
	_, err := f.ctl.Rollout(context.Background(), runtime.RolloutRequest{
		Strategy: runtime.BlueGreen{ActiveService: "app", AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(60)},
		Monitors: []runtime.Monitor{{Name: "health", Path: "/json", Interval: 50 * time.Millisecond, Locations: []string{"local"}}},
		Deploy:   runtime.DeployRequest{Environment: "prod", Workloads: []runtime.Workload{f.okWorkload("v2", 1, false)}, Who: "tester"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := waitRollout(t, f.ctl, "prod", "the abort", atStep(runtime.StepAborted))
	if !strings.Contains(st.Message, "monitor health from local failed") || st.Stable != 1 {
		t.Errorf("aborted: message %q stable %d, want the monitor named and stable 1", st.Message, st.Stable)
	}
	if len(st.Monitors) == 0 || st.Monitors[0].OK {
		t.Errorf("monitor results %+v, want the failing one", st.Monitors)
	}
	// The record says aborted a moment before the proxy switches back.
	waitFor(t, 5*time.Second, "active on blue", func() error { return wantBody(first.ActiveURL, "v1") })
}

func TestMonitorsNeedARunner(t *testing.T) {
	f := newFixture(t)
	_, err := f.ctl.Rollout(context.Background(), runtime.RolloutRequest{
		Strategy: runtime.BlueGreen{ActiveService: "app"},
		Monitors: []runtime.Monitor{{Name: "health", Path: "/", Interval: time.Second}},
		Deploy:   runtime.DeployRequest{Environment: "prod", Workloads: []runtime.Workload{f.workload("v1", 1, "")}},
	})
	if !errors.Is(err, runtime.ErrInvalidRequest) || !strings.Contains(err.Error(), "no monitor runner") {
		t.Errorf("monitors without a runner: error %v, want ErrInvalidRequest saying so", err)
	}
}

// TestRevisionLimitScalesDownAtOnce: scaleDownDelayRevisionLimit 0 keeps
// no old revision waiting out its delay: blue stops at the switch.
func TestRevisionLimitScalesDownAtOnce(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	blue := f.instancePid(t, "prod", 1, 0)
	f.mustRollout("prod", runtime.BlueGreen{AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(600), ScaleDownDelayRevisionLimit: intp(0)},
		f.workload("v2", 1, ""))
	waitRollout(t, f.ctl, "prod", "promotion", atStep(runtime.StepScaleDown))
	waitFor(t, 5*time.Second, "blue stopped", func() error {
		if running(blue) {
			return errors.New("blue still runs")
		}
		return nil
	})
	st, err := f.ctl.RolloutStatus(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != runtime.StepScaleDown || st.Phase != runtime.RolloutHealthy {
		t.Errorf("step %s phase %s, want scaleDown Healthy (its deadline is 600s away)", st.Step, st.Phase)
	}
}

// TestAbortDuringAnalysisStopsIt: an analysis that an abort cuts short is
// Stopped, never Successful, though every measurement it took passed.
func TestAbortDuringAnalysisStopsIt(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	v := newVerdict(t, true)
	f.mustRollout("prod", runtime.BlueGreen{PrePromotionAnalysis: analysisOf(v.srv.URL, webTemplate(t, "long", 1000, "50ms"))}, f.workload("v2", 1, ""))
	waitRollout(t, f.ctl, "prod", "a measurement", func(st runtime.RolloutStatus) bool {
		return len(st.Analyses) == 1 && len(st.Analyses[0].Runs[0].Metrics) > 0
	})
	if _, err := f.ctl.Abort(context.Background(), "prod", "dave", "looks wrong"); err != nil {
		t.Fatal(err)
	}
	st := waitRollout(t, f.ctl, "prod", "the analysis over", func(st runtime.RolloutStatus) bool {
		return st.Analyses[0].Phase != analysis.PhaseRunning
	})
	if got := st.Analyses[0].Phase; got != analysis.PhaseStopped {
		t.Errorf("analysis cut short by an abort: %s, want Stopped", got)
	}
	if st.Step != runtime.StepAborted || st.AbortedBy != "dave" || st.Message != "looks wrong" {
		t.Errorf("step %s by %q (%q), want aborted by dave, looks wrong", st.Step, st.AbortedBy, st.Message)
	}
}

// TestGreenCrashWhilePausedAborts: a green instance that dies while the
// rollout waits for promotion aborts it.
func TestGreenCrashWhilePausedAborts(t *testing.T) {
	f := newFixture(t)
	f.run()
	first := f.mustRollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	f.mustRollout("prod", runtime.BlueGreen{PreviewTraffic: &runtime.TrafficSplit{Percent: 100}}, f.workload("v2", 1, ""))
	waitRollout(t, f.ctl, "prod", "the pause", atStep(runtime.StepPaused))
	if err := syscall.Kill(-f.instancePid(t, "prod", 2, 0), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitRollout(t, f.ctl, "prod", "the abort", atStep(runtime.StepAborted))
	if st.AbortedBy != "gantry" || !strings.Contains(st.Message, "green crashed: instance prod-r2-app-0") {
		t.Errorf("aborted by %q: %q, want gantry, green crashed", st.AbortedBy, st.Message)
	}
	waitFor(t, 5*time.Second, "active on blue", func() error { return wantBody(first.ActiveURL, "v1") })
}
