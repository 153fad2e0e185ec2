package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// TestKill9ServeDuringSoak: a pipeline's soak runs against staging's URL
// when the gantry serve process is killed with SIGKILL (its proxy and the
// instances it supervises die with it). A new `gantry serve` brings
// staging back on the same URL with the same revision. The soak, which
// measures the environment under load, does not hide the outage: it fails
// with the requests that failed while nothing answered counted against its
// threshold. Its stage's on_failure rollback then finds nothing to roll
// back to (staging's first revision) and says so as a note.
func TestKill9ServeDuringSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds, deploys and soaks a service")
	}
	t.Setenv("GANTRY_ISOLATION", "process")
	e := newEnv(t)
	deployRepo(t, e)
	b, err := os.ReadFile(filepath.Join(e.repo, ".gantry", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := strings.NewReplacer("name: smoke", "name: soak", "duration: 2s", "duration: 40s").Replace(string(b))
	e.write(".gantry/pipeline.yaml", p)
	e.version("v1", true, 200)

	// The run, in the background: build, deploy, then the 40 s soak.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	run := e.cmd(ctx, "run", "--progress", "plain")
	var out, errb syncbuf.Buffer
	run.Stdout, run.Stderr = &out, &errb
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- run.Wait() }() // owned by the test: waited for below or at its end
	ended := false
	defer func() {
		if !ended {
			_ = run.Process.Kill()
			<-runDone
		}
	}()
	for i := 0; !strings.Contains(out.String(), "load-test: "); i++ {
		select {
		case err := <-runDone:
			ended = true
			t.Fatalf("the run ended before its soak: %v\n%s\n%s", err, tail(out.String(), 40), errb.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Current == nil {
		t.Fatalf("gantry env ls during the soak: got %+v, want staging serving", envs)
	}
	url, served := envs[0].URL, *envs[0].Current
	if got := waitAnswers(t, url+"/", 10*time.Second); strings.TrimSpace(got) != "v1" {
		t.Fatalf("GET / during the soak: got %q, want v1", got)
	}
	time.Sleep(2 * time.Second) // some of the soak answered

	// kill -9 of the serve process mid-soak.
	st := e.gantry("serve", "status", "-o", "json")
	var h struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &h); err != nil || h.Pid == 0 {
		t.Fatalf("gantry serve status: %v %q", err, st.stdout)
	}
	if err := syscall.Kill(h.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for i := 0; e.gantry("serve", "status").code == 0; i++ {
		if i > 200 {
			t.Fatal("gantry serve still answers after kill -9")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv, _ := e.startServe()
	t.Cleanup(func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() })
	if got := waitAnswers(t, url+"/", time.Minute); strings.TrimSpace(got) != "v1" {
		t.Errorf("after kill -9 and a new serve: GET / = %q, want v1", got)
	}
	t.Logf("staging answered again %s after the kill", time.Since(killed).Round(time.Millisecond))
	envs = e.envs()
	if len(envs) != 1 || envs[0].URL != url || envs[0].Current == nil || envs[0].Current.Number != served.Number || envs[0].Current.Digest != served.Digest {
		t.Errorf("after kill -9: gantry env ls = %+v, want staging at %s serving revision %d (%s)", envs, url, served.Number, served.Digest)
	}

	// The soak fails, counting what failed while nothing answered.
	var exit *exec.ExitError
	err = <-runDone
	ended = true
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit 1\n%s\n%s", err, tail(out.String(), 60), errb.String())
	}
	var soak []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "deploy-staging/soak") || strings.Contains(line, "rollback staging") {
			soak = append(soak, line)
		}
	}
	t.Logf("what the run reported of its soak:\n%s", tail(strings.Join(soak, "\n"), 25))
	v := e.show(1)
	status, outputs, _ := v.step("deploy-staging", "soak")
	if status != "failed" {
		t.Errorf("soak step: got %s, want failed\n%s", status, tail(out.String(), 40))
	}
	if rate, _ := outputs["error_rate"].(float64); rate <= 0 {
		t.Errorf("soak outputs: error_rate %v, want the failed requests counted (%v)", outputs["error_rate"], outputs)
	}
	if !strings.Contains(out.String(), "http_req_failed") {
		t.Errorf("run output: want the soak's failed threshold http_req_failed named:\n%s", tail(out.String(), 40))
	}
	note := "rollback staging: nothing rolled back: staging had no earlier revision that served; revision 1 (" + served.Digest + ") still serves"
	if !strings.Contains(out.String(), note) {
		t.Errorf("run output lacks the note %q:\n%s", note, tail(out.String(), 40))
	}
	for _, bad := range []string{"failure action failed", "no revision to roll back to"} {
		if strings.Contains(out.String()+errb.String(), bad) {
			t.Errorf("run output has %q:\n%s\n%s", bad, tail(out.String(), 40), errb.String())
		}
	}
	if got := waitAnswers(t, url+"/", 10*time.Second); strings.TrimSpace(got) != "v1" {
		t.Errorf("after the run: GET / = %q, want v1", got)
	}
}
