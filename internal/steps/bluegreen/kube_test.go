package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/kubetest"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/deploy"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// kubeRepo writes a repository whose environment prod is a kubernetes one
// on the bed, with a chart holding a blue/green Rollout, and returns it
// with its pipeline file (extra is added to the file).
func kubeRepo(t *testing.T, kubeconfig, namespace, extra string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "kube", "testdata", "bluegreen")
	for _, f := range []string{"Chart.yaml", "values.yaml", "templates/rollout.yaml", "templates/services.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, "chart", f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "chart", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pipeline := fmt.Sprintf(`name: web
environments:
  prod:
    chart: chart
    runtime: kubernetes
    kubernetes: {kubeconfig: %s, namespace: %s, release: web}
%sstages: []
`, kubeconfig, namespace, extra)
	return dir, []byte(pipeline)
}

// kubeRollerOf is the rollout controller of the repository's prod, as
// gantry rollout reaches it.
func kubeRollerOf(t *testing.T, dir string, pipeline []byte) *KubeRoller {
	t.Helper()
	p, err := spec.ParseEnvironments(".gantry/pipeline.yaml", pipeline, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := p.FindEnvironment("prod")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := NewKubeRoller(deploy.Request{Dir: dir, Environment: prod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func kubeImage(n int) string {
	return fmt.Sprintf("registry.example/web@sha256:%064x", n)
}

// runStep runs a blue-green step of image on the repository.
func runStep(t *testing.T, dir string, pipeline []byte, with string) (*step.Result, string, error) {
	t.Helper()
	return runStepLogged(t, dir, pipeline, with, &syncbuf.Buffer{})
}

// runStepLogged is runStep writing the step's log to out as it runs.
func runStepLogged(t *testing.T, dir string, pipeline []byte, with string, out *syncbuf.Buffer) (*step.Result, string, error) {
	t.Helper()
	env, _, _ := steptest.NewEnv(t, dir, "promote-prod", "rollout")
	env.Stdout, env.Log = out, slog.New(slog.NewTextHandler(out, nil))
	env.PipelineFile, env.PipelineSource = ".gantry/pipeline.yaml", pipeline
	s, err := NewKind(func(context.Context, string) (Controller, error) {
		return nil, fmt.Errorf("the step reached for gantry serve for a kubernetes environment")
	}).New(steptest.Inputs{YAML: with})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := s.Run(ctx, env)
	return res, out.String(), err
}

// TestBlueGreenOnKubernetes: the blue-green step rolls a digest out
// through the cluster's Argo Rollouts controller: a first release is
// Healthy at once; the next one pauses with green behind the preview
// Service and blue still active until it is promoted through the same
// controller `gantry rollout promote` uses, and the step ends then, with
// the active Service on green.
func TestBlueGreenOnKubernetes(t *testing.T) {
	b := kubetest.Start(t)
	dir, pipeline := kubeRepo(t, b.Kubeconfig, "bgstep", "")

	res, out, err := runStep(t, dir, pipeline, "{environment: prod, image: "+kubeImage(1)+", monitors: []}")
	if err != nil {
		t.Fatalf("first rollout: %v\n%s", err, out)
	}
	if res.Outputs["phase"] != string(runtime.RolloutHealthy) || res.Outputs["digest"] != strings.TrimPrefix(kubeImage(1), "registry.example/web@") {
		t.Fatalf("first rollout: outputs %v, want Healthy with digest 1\n%s", res.Outputs, out)
	}
	stable := activeHash(t, b)

	kr := kubeRollerOf(t, dir, pipeline)
	type ended struct {
		res *step.Result
		out string
		err error
	}
	done := make(chan ended, 1)
	log := &syncbuf.Buffer{}
	go func() {
		res, out, err := runStepLogged(t, dir, pipeline, "{environment: prod, image: "+kubeImage(2)+", monitors: []}", log)
		done <- ended{res, out, err}
	}()
	// The step waits at the pause: green behind the preview Service,
	// blue still active. The promotion waits until the step has said so
	// too: its watch would miss a pause that ends before it looks.
	var paused runtime.RolloutStatus
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := kr.RolloutStatus(context.Background(), "prod")
		if err == nil && st.Phase == runtime.RolloutPaused && strings.HasSuffix(kubeImage(2), st.Digest) &&
			strings.Contains(log.String(), "paused, waiting for manual promotion") {
			paused = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second rollout never paused: last %+v, %v\n%s", st, err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := activeHash(t, b); got != stable {
		t.Errorf("paused: the active Service selects %s, want blue's %s", got, stable)
	}
	select {
	case r := <-done:
		t.Fatalf("the step ended before the promotion: %v\n%s", r.err, r.out)
	default:
	}
	if _, err := kr.Promote(context.Background(), "prod", false, "lead"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("second rollout: %v\n%s", r.err, r.out)
	}
	if r.res.Outputs["phase"] != string(runtime.RolloutHealthy) || r.res.Outputs["revision"] != paused.Desired {
		t.Errorf("second rollout: outputs %v, want Healthy at revision %d", r.res.Outputs, paused.Desired)
	}
	if got := activeHash(t, b); got == stable || got == "" {
		t.Errorf("promoted: the active Service selects %q, want green's hash", got)
	}
}

// TestKubernetesRefusesLocalOnlyInputs: monitors and the traffic split
// are not built for a cluster; the step refuses them before the release
// changes.
func TestKubernetesRefusesLocalOnlyInputs(t *testing.T) {
	b := kubetest.Start(t)
	dir, pipeline := kubeRepo(t, b.Kubeconfig, "bgrefuse", "monitors:\n  health: {path: /healthz}\n")
	for _, tc := range []struct{ with, want string }{
		{"{environment: prod, image: " + kubeImage(7) + "}", "synthetic monitors are not built yet"},
		{"{environment: prod, image: " + kubeImage(7) + ", monitors: [], traffic: {percent: 10}}", "with.traffic is not built yet"},
	} {
		_, out, err := runStep(t, dir, pipeline, tc.with)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("with %s: got %v, want %q\n%s", tc.with, err, tc.want, out)
		}
	}
	kr := kubeRollerOf(t, dir, pipeline)
	if _, err := kr.RolloutStatus(context.Background(), "prod"); !errors.Is(err, runtime.ErrNoRollout) {
		t.Errorf("after the refusals: rollout status %v, want ErrNoRollout (nothing installed)", err)
	}
}

func activeHash(t *testing.T, b *kubetest.Bed) string {
	t.Helper()
	svc, err := b.Client.CoreV1().Services("bgstep").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector["rollouts-pod-template-hash"]
}
