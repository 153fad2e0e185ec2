package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// fakeRoller records the Roller calls that reach the server and answers
// by environment name: "norollout" and "badstate" fail with
// runtime.ErrNoRollout and runtime.ErrRolloutState, "breaks" fails its
// watch after the first status. A fake, not the real controller: the
// rollout state machine (envctl) is built on another branch, and this
// test is about the socket API and the client, which must carry every
// call and error unchanged whatever implements runtime.Roller.
type fakeRoller struct {
	mu    sync.Mutex
	calls []string
	reqs  []runtime.RolloutRequest
	// updates feeds Watch after its first status.
	updates chan runtime.RolloutStatus
}

var _ runtime.Roller = (*fakeRoller)(nil)

func (f *fakeRoller) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeRoller) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func rolloutFail(env string) error {
	switch env {
	case "norollout":
		return fmt.Errorf("environment %s: %w", env, runtime.ErrNoRollout)
	case "badstate":
		return fmt.Errorf("promote %s: step completed: %w", env, runtime.ErrRolloutState)
	}
	return nil
}

func status(env string, phase runtime.RolloutPhase, step runtime.RolloutStep, who string) runtime.RolloutStatus {
	return runtime.RolloutStatus{Environment: env, Phase: phase, Step: step, Stable: 1, Desired: 2, Digest: "sha256:" + strings.Repeat("b", 64),
		ActiveURL: "http://127.0.0.1:30081", PreviewURL: "http://127.0.0.1:30082", PromotedBy: who}
}

func (f *fakeRoller) Rollout(_ context.Context, req runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	f.record("rollout " + req.Deploy.Environment)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if err := rolloutFail(req.Deploy.Environment); err != nil {
		return runtime.RolloutStatus{}, err
	}
	return status(req.Deploy.Environment, runtime.RolloutProgressing, runtime.StepPreview, ""), nil
}

func (f *fakeRoller) Promote(_ context.Context, env string, full bool, who string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("promote %s full=%v who=%s", env, full, who))
	if err := rolloutFail(env); err != nil {
		return runtime.RolloutStatus{}, err
	}
	return status(env, runtime.RolloutProgressing, runtime.StepPostPromotion, who), nil
}

func (f *fakeRoller) Abort(_ context.Context, env, who, reason string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("abort %s who=%s reason=%s", env, who, reason))
	if err := rolloutFail(env); err != nil {
		return runtime.RolloutStatus{}, err
	}
	st := status(env, runtime.RolloutDegraded, runtime.StepAborted, "")
	st.AbortedBy, st.Message = who, reason
	return st, nil
}

func (f *fakeRoller) Retry(_ context.Context, env, who string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("retry %s who=%s", env, who))
	if err := rolloutFail(env); err != nil {
		return runtime.RolloutStatus{}, err
	}
	return status(env, runtime.RolloutProgressing, runtime.StepPreview, ""), nil
}

func (f *fakeRoller) Undo(_ context.Context, env string, to int, who string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("undo %s to=%d who=%s", env, to, who))
	if err := rolloutFail(env); err != nil {
		return runtime.RolloutStatus{}, err
	}
	return status(env, runtime.RolloutProgressing, runtime.StepPreview, ""), nil
}

func (f *fakeRoller) RolloutStatus(_ context.Context, env string) (runtime.RolloutStatus, error) {
	f.record("status " + env)
	if err := rolloutFail(env); err != nil {
		return runtime.RolloutStatus{}, err
	}
	return status(env, runtime.RolloutPaused, runtime.StepPaused, ""), nil
}

func (f *fakeRoller) Watch(ctx context.Context, env string, fn func(runtime.RolloutStatus) bool) error {
	f.record("watch " + env)
	if err := rolloutFail(env); err != nil {
		return err
	}
	if !fn(status(env, runtime.RolloutProgressing, runtime.StepPrePromotion, "")) {
		return nil
	}
	if env == "breaks" {
		return fmt.Errorf("read the rollout of %s: %w", env, runtime.ErrNoRollout)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case st := <-f.updates:
			if !fn(st) {
				return nil
			}
		}
	}
}

// startRollerServer runs Run with roller (nil: none) and returns a
// client of it.
func startRollerServer(t *testing.T, roller runtime.Roller) *Client {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	cfg := Config{StateDir: dir, Deployer: newRecorder(), Roller: roller, Version: "test", Logger: slog.New(slog.NewTextHandler(&syncbuf.Buffer{}, nil)), noRegistry: true, ready: func() { close(ready) }}
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("Run ended before it listened: %v", err)
	}
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRollerOverSocket calls every Roller method through the client and
// checks what the server's roller got and what the client got back.
func TestRollerOverSocket(t *testing.T) {
	f := &fakeRoller{}
	c := startRollerServer(t, f)
	ctx := context.Background()
	img := "127.0.0.1:5000/pay@sha256:" + strings.Repeat("b", 64)
	five := 5
	req := runtime.RolloutRequest{
		Deploy: runtime.DeployRequest{Environment: "prod", Workloads: []runtime.Workload{{Name: "pay", Image: img, Replicas: 2}}, Who: "run 4", Run: 4},
		Strategy: runtime.BlueGreen{ActiveService: "pay-active", PreviewService: "pay-preview", ScaleDownDelaySeconds: &five,
			PreviewTraffic:       &runtime.TrafficSplit{Header: "X-Canary", Value: "1"},
			PrePromotionAnalysis: &runtime.RolloutAnalysis{Templates: []*analysis.Template{{Metadata: analysis.Metadata{Name: "success-rate"}}}, PrometheusURL: "http://127.0.0.1:9090"}},
		Monitors: []runtime.Monitor{{Name: "health", Path: "/healthz", Locations: []string{"local"}}},
	}
	aborted := status("prod", runtime.RolloutDegraded, runtime.StepAborted, "")
	aborted.AbortedBy, aborted.Message = "ana", "latency"
	tests := []struct {
		name     string
		call     func() (runtime.RolloutStatus, error)
		want     runtime.RolloutStatus
		wantCall string
	}{
		{"rollout", func() (runtime.RolloutStatus, error) { return c.Rollout(ctx, req) },
			status("prod", runtime.RolloutProgressing, runtime.StepPreview, ""), "rollout prod"},
		{"promote", func() (runtime.RolloutStatus, error) { return c.Promote(ctx, "prod", true, "ana") },
			status("prod", runtime.RolloutProgressing, runtime.StepPostPromotion, "ana"), "promote prod full=true who=ana"},
		{"abort", func() (runtime.RolloutStatus, error) { return c.Abort(ctx, "prod", "ana", "latency") },
			aborted, "abort prod who=ana reason=latency"},
		{"retry", func() (runtime.RolloutStatus, error) { return c.Retry(ctx, "prod", "ana") },
			status("prod", runtime.RolloutProgressing, runtime.StepPreview, ""), "retry prod who=ana"},
		{"undo", func() (runtime.RolloutStatus, error) { return c.Undo(ctx, "prod", 3, "ana") },
			status("prod", runtime.RolloutProgressing, runtime.StepPreview, ""), "undo prod to=3 who=ana"},
		{"status", func() (runtime.RolloutStatus, error) { return c.RolloutStatus(ctx, "prod") },
			status("prod", runtime.RolloutPaused, runtime.StepPaused, ""), "status prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answer:\n got %+v\nwant %+v", got, tt.want)
			}
			if last := f.last(); last != tt.wantCall {
				t.Errorf("roller call: got %q, want %q", last, tt.wantCall)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.reqs[0]
	if !reflect.DeepEqual(got.Strategy.PreviewTraffic, req.Strategy.PreviewTraffic) || *got.Strategy.ScaleDownDelaySeconds != 5 ||
		got.Strategy.PrePromotionAnalysis.Templates[0].Metadata.Name != "success-rate" || got.Strategy.PrePromotionAnalysis.PrometheusURL != "http://127.0.0.1:9090" ||
		!reflect.DeepEqual(got.Monitors, req.Monitors) || got.Deploy.Run != 4 {
		t.Errorf("rollout request reached the roller as %+v, want %+v", got, req)
	}
}

// TestRollerErrorsAcrossSocket: the rollout errors are errors.Is on the
// client's side, with their HTTP status, for every verb.
func TestRollerErrorsAcrossSocket(t *testing.T) {
	c := startRollerServer(t, &fakeRoller{})
	ctx := context.Background()
	calls := map[string]func(env string) error{
		"rollout": func(env string) error {
			_, err := c.Rollout(ctx, runtime.RolloutRequest{Deploy: runtime.DeployRequest{Environment: env}})
			return err
		},
		"promote": func(env string) error { _, err := c.Promote(ctx, env, false, "ana"); return err },
		"abort":   func(env string) error { _, err := c.Abort(ctx, env, "ana", ""); return err },
		"retry":   func(env string) error { _, err := c.Retry(ctx, env, "ana"); return err },
		"undo":    func(env string) error { _, err := c.Undo(ctx, env, 0, "ana"); return err },
		"status":  func(env string) error { _, err := c.RolloutStatus(ctx, env); return err },
		"watch": func(env string) error {
			return c.Watch(ctx, env, func(runtime.RolloutStatus) bool { return true })
		},
	}
	envs := []struct {
		env    string
		want   error
		status int
	}{
		{"norollout", runtime.ErrNoRollout, http.StatusNotFound},
		{"badstate", runtime.ErrRolloutState, http.StatusConflict},
	}
	for name, call := range calls {
		for _, e := range envs {
			t.Run(name+"/"+e.env, func(t *testing.T) {
				err := call(e.env)
				if !errors.Is(err, e.want) {
					t.Fatalf("got %v, want errors.Is %v", err, e.want)
				}
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != e.status {
					t.Errorf("got %#v, want an *APIError with status %d", err, e.status)
				}
			})
		}
	}
}

// TestNoRoller: a serve process without a rollout controller answers
// every rollout endpoint 501 with a message saying so.
func TestNoRoller(t *testing.T) {
	c := startRollerServer(t, nil)
	ctx := context.Background()
	calls := map[string]func() error{
		"rollout": func() error {
			_, err := c.Rollout(ctx, runtime.RolloutRequest{Deploy: runtime.DeployRequest{Environment: "prod"}})
			return err
		},
		"promote": func() error { _, err := c.Promote(ctx, "prod", false, "ana"); return err },
		"abort":   func() error { _, err := c.Abort(ctx, "prod", "ana", ""); return err },
		"retry":   func() error { _, err := c.Retry(ctx, "prod", "ana"); return err },
		"undo":    func() error { _, err := c.Undo(ctx, "prod", 0, "ana"); return err },
		"status":  func() error { _, err := c.RolloutStatus(ctx, "prod"); return err },
		"watch":   func() error { return c.Watch(ctx, "prod", func(runtime.RolloutStatus) bool { return true }) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotImplemented || !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("got %v, want a 501 wrapping errors.ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), "no rollout controller") {
				t.Errorf("message %q does not say that no rollout controller runs", err)
			}
		})
	}
}

// TestRolloutWatch: the client gets the first status and each update as
// the server's roller sends it, and stops when its callback says so.
func TestRolloutWatch(t *testing.T) {
	f := &fakeRoller{updates: make(chan runtime.RolloutStatus)}
	c := startRollerServer(t, f)
	ctx := context.Background()
	m1 := status("prod", runtime.RolloutProgressing, runtime.StepPrePromotion, "")
	m1.Analyses = []runtime.AnalysisStatus{{Kind: "prePromotion", Revision: 2, Phase: analysis.PhaseRunning,
		Runs: []*analysis.Run{{Template: "success-rate", Phase: analysis.PhaseRunning}}}}
	paused := status("prod", runtime.RolloutPaused, runtime.StepPaused, "")
	want := []runtime.RolloutStatus{status("prod", runtime.RolloutProgressing, runtime.StepPrePromotion, ""), m1, paused}

	var got []runtime.RolloutStatus
	errc := make(chan error, 1)
	seen := make(chan struct{}, len(want))
	go func() {
		errc <- c.Watch(ctx, "prod", func(st runtime.RolloutStatus) bool {
			got = append(got, st)
			seen <- struct{}{}
			return st.Phase != runtime.RolloutPaused
		})
	}()
	<-seen
	for _, st := range want[1:] {
		f.updates <- st
		<-seen
	}
	if err := <-errc; err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statuses:\n got %+v\nwant %+v", got, want)
	}
}

// TestRolloutWatchBreaks: an error after the stream started reaches the
// client through the trailer, still errors.Is.
func TestRolloutWatchBreaks(t *testing.T) {
	c := startRollerServer(t, &fakeRoller{})
	n := 0
	err := c.Watch(context.Background(), "breaks", func(runtime.RolloutStatus) bool { n++; return true })
	if !errors.Is(err, runtime.ErrNoRollout) {
		t.Fatalf("got %v, want errors.Is runtime.ErrNoRollout", err)
	}
	if n != 1 {
		t.Errorf("statuses before the error: got %d, want 1", n)
	}
}
