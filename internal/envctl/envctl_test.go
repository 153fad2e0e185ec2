package envctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/syncbuf"
	"github.com/gantry-ci/gantry/internal/testload"
)

// appBin is the test workload, built once by TestMain.
var appBin string

func TestMain(m *testing.M) {
	if os.Getenv("ENVCTL_HELPER") != "" {
		helper()
		return
	}
	dir, err := os.MkdirTemp("", "envctl-app-")
	if err != nil {
		log.Fatal(err)
	}
	appBin = filepath.Join(dir, "app")
	if out, err := exec.Command("go", "build", "-o", appBin, "./testdata/app").CombinedOutput(); err != nil {
		log.Fatalf("build the test app: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is a controller on a real store in a temporary state dir.
type fixture struct {
	t        testing.TB
	stateDir string
	store    *store.Store
	adm      *refuser
	ctl      *Controller
	services map[string]service.Provider
	// configure, when set, changes the controller's Config (hooks).
	configure func(*Config)
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{t: t, stateDir: t.TempDir(), adm: &refuser{refuse: map[string]bool{}}}
	f.open()
	return f
}

// open opens the store and a controller on the fixture's state dir, as a
// starting serve process does.
func (f *fixture) open() {
	t := f.t
	s, err := store.Open(context.Background(), filepath.Join(f.stateDir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: s, Runtime: procRuntime{}, Admitter: f.adm, Services: f.services,
		Dir: filepath.Join(f.stateDir, "envs"), Interval: 100 * time.Millisecond}
	if f.configure != nil {
		f.configure(&cfg)
	}
	ctl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.store, f.ctl = s, ctl
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := ctl.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		s.Close()
	})
}

// run runs the controller's loop until the test ends.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.ctl.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			f.t.Errorf("Run: %v", err)
		}
	})
}

// workload returns an app workload answering version; it is ready while
// readyFile exists.
func (f *fixture) workload(version string, replicas int, readyFile string) runtime.Workload {
	if readyFile == "" {
		readyFile = filepath.Join(f.stateDir, "ready")
		if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	return runtime.Workload{
		Name:             "app",
		Image:            "127.0.0.1:5000/app@sha256:" + strings.Repeat(version[len(version)-1:], 64),
		Command:          []string{appBin},
		Env:              []string{"VERSION=" + version, "READY_FILE=" + readyFile},
		Replicas:         replicas,
		Readiness:        &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz", Port: "http"}, Period: 100 * time.Millisecond, FailureThreshold: 3},
		TerminationGrace: 5 * time.Second,
	}
}

func (f *fixture) deploy(env string, ws ...runtime.Workload) (runtime.Revision, error) {
	f.t.Helper()
	return f.ctl.Deploy(context.Background(), runtime.DeployRequest{Environment: env, Workloads: ws, Who: "tester"})
}

func (f *fixture) mustDeploy(env string, ws ...runtime.Workload) runtime.Revision {
	f.t.Helper()
	rev, err := f.deploy(env, ws...)
	if err != nil {
		f.t.Fatalf("deploy: %v", err)
	}
	return rev
}

func (f *fixture) url(env string) string {
	f.t.Helper()
	st, err := f.ctl.Status(context.Background(), env)
	if err != nil {
		f.t.Fatal(err)
	}
	return st.URL
}

// waitFor polls check until it returns nil; after timeout it fails the
// test with what and check's last error.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers checks that GET url answers 200.
func answers(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func statuses(t *testing.T, ctl *Controller, env string) []string {
	t.Helper()
	h, err := ctl.History(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range h {
		out = append(out, r.Status)
	}
	return out
}

func wantStatuses(t *testing.T, ctl *Controller, env string, want ...string) {
	t.Helper()
	if got := statuses(t, ctl, env); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("history of %s: %v, want %v", env, got, want)
	}
}

func TestDeployServesOnURL(t *testing.T) {
	f := newFixture(t)
	rev := f.mustDeploy("staging", f.workload("v1", 2, ""))
	if rev.Number != 1 || rev.Status != store.RevisionServing || rev.Digest != "sha256:"+strings.Repeat("1", 64) || rev.Who != "tester" {
		t.Errorf("revision = %+v, want 1 serving by tester with the image's digest", rev)
	}
	url := f.url("staging")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("URL = %q", url)
	}
	for range 4 {
		if got := testload.Get(t, url); got != "v1" {
			t.Errorf("GET %s = %q, want v1", url, got)
		}
	}
	st, err := f.ctl.Status(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if st.Current == nil || st.Current.Number != 1 || len(st.Instances) != 2 {
		t.Errorf("status = %+v, want revision 1 with 2 instances", st)
	}
	ids := map[string]bool{}
	for _, in := range st.Instances {
		ids[in.ID] = true
	}
	if !ids["staging-r1-app-0"] || !ids["staging-r1-app-1"] {
		t.Errorf("instance IDs = %v, want staging-r1-app-0 and -1", ids)
	}
	list, err := f.ctl.List(context.Background())
	if err != nil || len(list) != 1 || list[0].URL != url {
		t.Errorf("List = %+v, %v", list, err)
	}
	var logs strings.Builder
	if err := f.ctl.Logs(context.Background(), "staging", false, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "staging-r1-app-1 | ") || !strings.Contains(logs.String(), "app v1 listening") {
		t.Errorf("logs = %q, want each instance's lines prefixed with its ID", logs.String())
	}
	// A redeploy keeps the URL.
	f.mustDeploy("staging", f.workload("v2", 1, ""))
	if got := f.url("staging"); got != url {
		t.Errorf("URL after redeploy = %q, want %q", got, url)
	}
	if got := testload.Get(t, url); got != "v2" {
		t.Errorf("after redeploy GET = %q, want v2", got)
	}
	wantStatuses(t, f.ctl, "staging", store.RevisionSuperseded, store.RevisionServing)
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	ok := f.workload("v1", 1, "")
	noImage := ok
	noImage.Image = ""
	badName := ok
	badName.Name = "App_1"
	long := ok
	long.Name = strings.Repeat("w", 63)
	for _, tc := range []struct {
		name string
		req  runtime.DeployRequest
		want string
	}{
		{"bad environment", runtime.DeployRequest{Environment: "../x", Workloads: []runtime.Workload{ok}}, "DNS label"},
		{"no workload", runtime.DeployRequest{Environment: "staging"}, "no workload"},
		{"no image", runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{noImage}}, "workload app: no image"},
		{"bad workload name", runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{badName}}, `"App_1"`},
		{"twice", runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{ok, ok}}, "appears twice"},
		{"IDs too long", runtime.DeployRequest{Environment: strings.Repeat("e", 63), Workloads: []runtime.Workload{long}}, "too long for instance IDs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.ctl.Deploy(context.Background(), tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if !errors.Is(err, runtime.ErrInvalidRequest) {
				t.Errorf("error %v: want errors.Is runtime.ErrInvalidRequest", err)
			}
		})
	}
}

// TestClosedIsRuntimeErrClosed: a call after Close says so with the
// shared sentinel, so that the serve API can map it to 503.
func TestClosedIsRuntimeErrClosed(t *testing.T) {
	f := newFixture(t)
	if err := f.ctl.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := f.ctl.Deploy(context.Background(), runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{f.workload("v1", 1, "")}})
	if !errors.Is(err, ErrClosed) || !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("got %v, want errors.Is envctl.ErrClosed and runtime.ErrClosed", err)
	}
}

func TestRedeployUnderLoadDropsNothing(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 2, ""))
	l := testload.Start(f.url("staging"), 8)
	for _, v := range []string{"v2", "v3"} {
		f.mustDeploy("staging", f.workload(v, 2, ""))
	}
	for l.Seen("v3") < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	l.Stop()
	if n := l.Failed(); n != 0 {
		t.Errorf("%d requests failed across two redeploys (first: %v), want 0", n, l.First())
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		if l.Seen(v) == 0 {
			t.Errorf("no request was answered by %s", v)
		}
	}
	t.Logf("answers: %v", l.Bodies())
	wantStatuses(t, f.ctl, "staging", store.RevisionSuperseded, store.RevisionSuperseded, store.RevisionServing)
}

func TestNeverReadyKeepsPrevious(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	bad := f.workload("v2", 2, filepath.Join(f.stateDir, "never"))
	rev, err := f.deploy("staging", bad)
	if !errors.Is(err, runtime.ErrNotReady) {
		t.Fatalf("deploy of a never-ready revision: error %v, want ErrNotReady", err)
	}
	for _, want := range []string{"staging-r2-app-0", "staging-r2-app-1", "GET /readyz: 503"} {
		if !strings.Contains(err.Error(), want) || !strings.Contains(rev.Message, want) {
			t.Errorf("error %q / message %q: want both to name %q", err, rev.Message, want)
		}
	}
	if rev.Status != store.RevisionFailed {
		t.Errorf("revision status = %q, want failed", rev.Status)
	}
	if got := testload.Get(t, f.url("staging")); got != "v1" {
		t.Errorf("GET after the failed deploy = %q, want v1 still serving", got)
	}
	wantStatuses(t, f.ctl, "staging", store.RevisionServing, store.RevisionFailed)
	h, _ := f.ctl.History(context.Background(), "staging")
	if !strings.Contains(h[1].Message, "GET /readyz: 503") {
		t.Errorf("recorded message = %q, want the probe's answer", h[1].Message)
	}
	st, _ := f.ctl.Status(context.Background(), "staging")
	if len(st.Instances) != 1 || st.Instances[0].ID != "staging-r1-app-0" {
		t.Errorf("instances after the failed deploy = %+v, want only staging-r1-app-0", st.Instances)
	}
	// The failed revision's processes are gone.
	for _, id := range []string{"staging-r2-app-0", "staging-r2-app-1"} {
		if alive(t, filepath.Join(f.stateDir, "envs", "staging", "instances", id, "pid")) {
			t.Errorf("instance %s still runs", id)
		}
	}
}

// alive reports whether the process in pidFile runs.
func alive(t *testing.T, pidFile string) bool {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return syscall.Kill(pid, 0) == nil
}

func TestAdmissionRefusalStartsNothing(t *testing.T) {
	f := newFixture(t)
	v1 := f.workload("v1", 1, "")
	f.adm.refuse[v1.Image] = true
	rev, err := f.deploy("staging", v1)
	if !errors.Is(err, runtime.ErrAdmission) {
		t.Fatalf("deploy of a refused image: error %v, want ErrAdmission", err)
	}
	if rev.Status != store.RevisionRefused || !strings.Contains(rev.Message, "rule verify-signature") || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("revision %+v, error %v: want refused with the rule and reason", rev, err)
	}
	if _, err := os.Stat(filepath.Join(f.stateDir, "envs", "staging", "instances")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instances directory exists after a refusal (%v): something started", err)
	}
	st, err := f.ctl.Status(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != nil || len(st.Instances) != 0 {
		t.Errorf("status after a refusal = %+v, want nothing serving", st)
	}
	// Once a revision serves, a refused one leaves it serving.
	delete(f.adm.refuse, v1.Image)
	f.mustDeploy("staging", v1)
	v2 := f.workload("v2", 1, "")
	f.adm.refuse[v2.Image] = true
	if _, err := f.deploy("staging", v2); !errors.Is(err, runtime.ErrAdmission) {
		t.Fatalf("second refusal: error %v, want ErrAdmission", err)
	}
	if _, err := os.Stat(filepath.Join(f.stateDir, "envs", "staging", "instances", "staging-r3-app-0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused revision 3 has an instance directory (%v)", err)
	}
	if got := testload.Get(t, f.url("staging")); got != "v1" {
		t.Errorf("GET after refusal = %q, want v1", got)
	}
	wantStatuses(t, f.ctl, "staging", store.RevisionRefused, store.RevisionServing, store.RevisionRefused)

	// An admitter that cannot decide refuses nothing: the revision fails
	// and nothing starts either.
	v3 := f.workload("v3", 1, "")
	f.adm.unreachable = map[string]bool{v3.Image: true}
	rev, err = f.deploy("staging", v3)
	if err == nil || errors.Is(err, runtime.ErrAdmission) || !errors.Is(err, errUnreachable) {
		t.Errorf("deploy while admission cannot decide: error %v, want the admitter's error, not ErrAdmission", err)
	}
	if rev.Status != store.RevisionFailed || !strings.Contains(rev.Message, "admission could not decide") {
		t.Errorf("revision = %+v, want failed saying admission could not decide", rev)
	}
	if _, err := os.Stat(filepath.Join(f.stateDir, "envs", "staging", "instances", "staging-r4-app-0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("revision 4 has an instance directory (%v)", err)
	}
	if got := testload.Get(t, f.url("staging")); got != "v1" {
		t.Errorf("GET = %q, want v1", got)
	}
}

func TestConcurrentDeployRefused(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	// A deploy that waits (its revision never becomes ready) holds the
	// environment while the others try.
	slow := f.workload("v2", 1, filepath.Join(f.stateDir, "later"))
	done := make(chan error, 1)
	go func() {
		_, err := f.deploy("staging", slow)
		done <- err
	}()
	for {
		if s := statuses(t, f.ctl, "staging"); len(s) == 2 && s[1] == store.RevisionDeploying {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := f.deploy("staging", f.workload("v3", 1, "")); !errors.Is(err, runtime.ErrDeployInProgress) {
		t.Errorf("second deploy in this process: error %v, want ErrDeployInProgress", err)
	}
	// Another controller on the same store stands for another process.
	other, err := New(Config{Store: f.store, Runtime: procRuntime{}, Admitter: f.adm, Dir: filepath.Join(f.stateDir, "envs")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Deploy(context.Background(), runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{f.workload("v3", 1, "")}}); !errors.Is(err, runtime.ErrDeployInProgress) {
		t.Errorf("deploy from another controller: error %v, want ErrDeployInProgress", err)
	}
	if err := <-done; !errors.Is(err, runtime.ErrNotReady) {
		t.Errorf("slow deploy: error %v, want ErrNotReady", err)
	}
	// Refused deploys left no record.
	wantStatuses(t, f.ctl, "staging", store.RevisionServing, store.RevisionFailed)
	f.mustDeploy("staging", f.workload("v3", 1, ""))
}

func TestRollback(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.ctl.Rollback(ctx, "staging", 0, "ann", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rollback of an unknown environment: error %v, want ErrNotFound", err)
	}
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	if _, err := f.ctl.Rollback(ctx, "staging", 0, "ann", ""); !errors.Is(err, ErrNoRollbackTarget) {
		t.Errorf("rollback with one revision: error %v, want ErrNoRollbackTarget", err)
	}
	f.mustDeploy("staging", f.workload("v2", 1, ""))
	f.mustDeploy("staging", f.workload("v3", 1, ""))
	url := f.url("staging")

	rev, err := f.ctl.Rollback(ctx, "staging", 0, "ann", "")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Number != 4 || rev.Reason != "rollback to 2" || rev.Who != "ann" || rev.Status != store.RevisionServing {
		t.Errorf("rollback revision = %+v, want 4, serving, \"rollback to 2\" by ann", rev)
	}
	if got := testload.Get(t, url); got != "v2" {
		t.Errorf("after rollback GET = %q, want v2", got)
	}
	rev, err = f.ctl.Rollback(ctx, "staging", 1, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Number != 5 || rev.Reason != "rollback to 1" || rev.Digest != "sha256:"+strings.Repeat("1", 64) {
		t.Errorf("rollback --to 1 = %+v", rev)
	}
	if got := testload.Get(t, url); got != "v1" {
		t.Errorf("after rollback --to 1 GET = %q, want v1", got)
	}
	// Rollbacks go through admission again.
	f.adm.refuse[f.workload("v3", 1, "").Image] = true
	if _, err := f.ctl.Rollback(ctx, "staging", 3, "bob", ""); !errors.Is(err, runtime.ErrAdmission) {
		t.Errorf("rollback to a now refused image: error %v, want ErrAdmission", err)
	}
	if _, err := f.ctl.Rollback(ctx, "staging", 99, "bob", ""); !errors.Is(err, ErrNoRollbackTarget) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rollback to 99: error %v, want ErrNoRollbackTarget and ErrNotFound", err)
	}
	if _, err := f.ctl.Rollback(ctx, "staging", 6, "bob", ""); !errors.Is(err, ErrNoRollbackTarget) {
		t.Errorf("rollback to a refused revision: error %v, want ErrNoRollbackTarget", err)
	}
	if got := testload.Get(t, url); got != "v1" {
		t.Errorf("after refused rollbacks GET = %q, want v1", got)
	}
}

func TestPortTakenAtStart(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	url := f.url("staging")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.ctl.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := f.store.Environment(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctl, err := New(Config{Store: f.store, Runtime: procRuntime{}, Admitter: f.adm, Dir: filepath.Join(f.stateDir, "envs")})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close(ctx)
	err = ctl.Run(ctx)
	if err == nil {
		t.Fatal("Run with the environment's port taken succeeded")
	}
	for _, want := range []string{"staging", fmt.Sprint(e.Port)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if pe := (*PortError)(nil); !errors.As(err, &pe) || pe.Environment != "staging" || pe.Port != e.Port {
		t.Errorf("error %v: want a *PortError for staging:%d", err, e.Port)
	}
}

// TestBrokenEnvironmentDoesNotStopOthers: after a restart, an environment
// whose instances cannot start is retried and logged, and the others come
// back.
func TestBrokenEnvironmentDoesNotStopOthers(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	gone := filepath.Join(f.stateDir, "app-copy")
	b, err := os.ReadFile(appBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	w := f.workload("v9", 1, "")
	w.Command = []string{gone}
	f.mustDeploy("broken", w)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.ctl.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	f.open()
	f.run() // fails the test if Run returns an error
	waitFor(t, 20*time.Second, "staging not back", func() error {
		st, err := f.ctl.Status(ctx, "staging")
		if err == nil && len(st.Instances) != 1 {
			err = fmt.Errorf("instances %+v, want 1", st.Instances)
		}
		return err
	})
	waitFor(t, 20*time.Second, "staging does not answer", func() error { return answers(f.url("staging")) })
	resp, err := http.Get(f.url("broken"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("broken environment answers %d, want 503 (its proxy up, no instance)", resp.StatusCode)
	}
}

// TestRunRecoversAfterKill runs a controller in a child process, lets it
// deploy, kills it with SIGKILL (its instances die with it, as
// runtime/local's do), then starts a controller on the same state: the URL
// answers again on the same port. A second child is killed in the middle
// of a deploy: its revision is recorded failed and the previous one
// serves.
func TestRunRecoversAfterKill(t *testing.T) {
	f := newFixture(t)
	// The fixture's controller is not used until the children are gone.
	child := func(version, ready string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ENVCTL_HELPER=1", "ENVCTL_STATE="+f.stateDir, "ENVCTL_APP="+appBin,
			"ENVCTL_VERSION="+version, "ENVCTL_READY="+ready)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %v", err)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		return strings.TrimSpace(line)
	}
	url := child("v1", filepath.Join(f.stateDir, "ready"))
	if !strings.HasPrefix(url, "http://") {
		t.Fatalf("helper said %q, want the URL", url)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatalf("URL %s answers after the kill: the child's proxy lives on", url)
	}
	// The second child is killed while its deploy waits for readiness.
	if got := child("v2", filepath.Join(f.stateDir, "never")); got != "deploying" {
		t.Fatalf("second helper said %q", got)
	}
	f.run()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if got := strings.TrimSpace(string(b)); got != "v1" {
					t.Errorf("after recovery GET = %q, want v1", got)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("URL %s does not answer after recovery: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h, err := f.ctl.History(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Status != store.RevisionServing || h[1].Status != store.RevisionFailed || h[1].Message != InterruptedMessage {
		t.Errorf("history after recovery = %+v, want 1 serving, 2 failed (interrupted)", h)
	}
	// The environment takes deploys again.
	f.mustDeploy("staging", f.workload("v3", 1, ""))
	if got := testload.Get(t, url); got != "v3" {
		t.Errorf("GET after a deploy following recovery = %q, want v3", got)
	}
}

// helper is the child process of TestRunRecoversAfterKill: it deploys
// ENVCTL_VERSION to staging and prints the URL (or "deploying" once a
// deploy that cannot finish has recorded its revision), then waits to be
// killed.
func helper() {
	if os.Getenv("ENVCTL_ROLLOUT") != "" {
		rolloutHelper()
		return
	}
	state := os.Getenv("ENVCTL_STATE")
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		log.Fatal(err)
	}
	ctl, err := New(Config{Store: s, Runtime: procRuntime{}, Admitter: &refuser{}, Dir: filepath.Join(state, "envs")})
	if err != nil {
		log.Fatal(err)
	}
	version, ready := os.Getenv("ENVCTL_VERSION"), os.Getenv("ENVCTL_READY")
	if version == "v1" {
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	w := runtime.Workload{
		Name: "app", Image: "127.0.0.1:5000/app@sha256:" + strings.Repeat(version[1:], 64), Command: []string{os.Getenv("ENVCTL_APP")},
		Env: []string{"VERSION=" + version, "READY_FILE=" + ready}, Replicas: 2,
		Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: time.Second, FailureThreshold: 60},
	}
	go func() { // the process is killed while it runs
		_, err := ctl.Deploy(ctx, runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{w}, Who: "helper"})
		if err != nil {
			log.Fatal(err)
		}
		st, err := ctl.Status(ctx, "staging")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(st.URL)
	}()
	if version != "v1" {
		for {
			revs, err := s.EnvRevisions(ctx, "staging")
			if err == nil && len(revs) > 0 && revs[len(revs)-1].Status == store.RevisionDeploying {
				// Give the deploy time to start its instances.
				time.Sleep(300 * time.Millisecond)
				fmt.Println("deploying")
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {}
}

// TestUnreadyInstanceLeavesRotation: an instance failing readiness gets
// no request until it passes again; the other one takes them all.
func TestUnreadyInstanceLeavesRotation(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.mustDeploy("staging", f.workload("v1", 2, ""))
	url := f.url("staging")
	sick := testload.Get(t, url+"/unready")
	deadline := time.Now().Add(20 * time.Second)
	for clean := 0; clean < 20; {
		if testload.Get(t, url+"/port") == sick {
			clean = 0
		} else {
			clean++
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance on port %s still gets requests after failing readiness", sick)
		}
	}
}

// TestCrashedInstanceReplaced: an instance whose process is gone for good
// is started again under its ID, and the URL keeps answering.
func TestCrashedInstanceReplaced(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	pidFile := filepath.Join(f.stateDir, "envs", "staging", "instances", "staging-r1-app-0", "pid")
	before, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(before), &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "instance not replaced", func() error {
		st, err := f.ctl.Status(context.Background(), "staging")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Instances) != 1 || st.Instances[0].PID == pid || st.Instances[0].State != "running" {
			return fmt.Errorf("instances %+v", st.Instances)
		}
		if st.Instances[0].ID != "staging-r1-app-0" {
			t.Errorf("replacement ID = %q, want staging-r1-app-0", st.Instances[0].ID)
		}
		return nil
	})
	waitFor(t, 20*time.Second, "URL does not answer after the replacement", func() error { return answers(f.url("staging")) })
}

// TestDeployWaitsForReconcile: a deploy that finds the reconcile loop at
// work on its environment waits for it instead of being refused.
func TestDeployWaitsForReconcile(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	f.ctl.mu.Lock()
	en := f.ctl.envs["staging"]
	f.ctl.mu.Unlock()
	en.op <- struct{}{} // what a reconcile in progress holds
	done := make(chan error, 1)
	go func() {
		_, err := f.deploy("staging", f.workload("v2", 1, ""))
		done <- err
	}()
	for {
		f.ctl.mu.Lock()
		waiting := en.deploying
		f.ctl.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("deploy returned while the environment was busy: %v", err)
	default:
	}
	<-en.op
	if err := <-done; err != nil {
		t.Fatalf("deploy after the reconcile: %v", err)
	}
	if got := testload.Get(t, f.url("staging")); got != "v2" {
		t.Errorf("GET = %q, want v2", got)
	}
}

func TestLogsFollow(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer // read while Logs writes
	done := make(chan error, 1)
	go func() { done <- f.ctl.Logs(ctx, "staging", true, &out) }()
	logFile := filepath.Join(f.stateDir, "envs", "staging", "instances", "staging-r1-app-0", "log")
	lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A line written in two parts is copied once complete.
	fmt.Fprint(lf, "payment 1 ")
	time.Sleep(2 * logPoll)
	fmt.Fprint(lf, "confirmed\n")
	lf.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "staging-r1-app-0 | payment 1 confirmed\n") {
		if time.Now().After(deadline) {
			t.Fatalf("followed logs = %q, want the appended line", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The runtime rotates a long log: log becomes log.1, a new log starts.
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logFile, []byte("payment 2 confirmed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "staging-r1-app-0 | payment 2 confirmed\n") {
		if time.Now().After(deadline) {
			t.Fatalf("followed logs = %q, want the line of the rotated log", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs after cancel: %v", err)
	}
	if err := f.ctl.Logs(context.Background(), "nowhere", false, io.Discard); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("logs of an unknown environment: error %v, want ErrNotFound", err)
	}
}

// BenchmarkRedeploy measures a deploy from the call to "serving" (admit,
// record, start, ready, switch, drain and stop the old instances) with the
// test app, one replica.
func BenchmarkRedeploy(b *testing.B) {
	f := newFixture(b)
	ws := []runtime.Workload{f.workload("v1", 1, ""), f.workload("v2", 1, "")}
	i := 0
	for b.Loop() {
		if _, err := f.ctl.Deploy(context.Background(), runtime.DeployRequest{Environment: "staging", Workloads: ws[i%2 : i%2+1]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestCloseEndsDeployInProgress: a graceful stop does not wait for a
// deploy whose readiness deadline is minutes away; the deploy gives up,
// its instances are stopped, and the previous revision is what serves.
func TestCloseEndsDeployInProgress(t *testing.T) {
	f := newFixture(t)
	f.mustDeploy("staging", f.workload("v1", 1, ""))
	slow := f.workload("v2", 1, filepath.Join(f.stateDir, "never"))
	slow.Readiness.Period = 200 * time.Second // a deadline of 10 minutes
	done := make(chan error, 1)
	go func() {
		_, err := f.deploy("staging", slow)
		done <- err
	}()
	for {
		if s := statuses(t, f.ctl, "staging"); len(s) == 2 && s[1] == store.RevisionDeploying {
			if _, err := os.Stat(filepath.Join(f.stateDir, "envs", "staging", "instances", "staging-r2-app-0", "pid")); err == nil {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := f.ctl.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("deploy ended by Close: error %v, want context.Canceled", err)
	}
	if alive(t, filepath.Join(f.stateDir, "envs", "staging", "instances", "staging-r2-app-0", "pid")) {
		t.Error("the abandoned revision's instance still runs")
	}
	wantStatuses(t, f.ctl, "staging", store.RevisionServing, store.RevisionFailed)
	if _, err := f.deploy("staging", f.workload("v3", 1, "")); !errors.Is(err, ErrClosed) {
		t.Errorf("deploy after Close: error %v, want ErrClosed", err)
	}
}

// TestEnvValuesNotShown: a revision keeps its workloads' environment in
// the store (a rollback needs it) but what the controller answers shows
// only the names.
func TestEnvValuesNotShown(t *testing.T) {
	f := newFixture(t)
	const secret = "sk_live_51HqLyjWDarjtT1zdp7dc"
	w1 := f.workload("v1", 1, "")
	w1.Env = append(w1.Env, "STRIPE_KEY="+secret)
	rev := f.mustDeploy("staging", w1)
	f.mustDeploy("staging", f.workload("v2", 1, ""))
	back, err := f.ctl.Rollback(context.Background(), "staging", 1, "tester", "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.ctl.Status(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	hist, err := f.ctl.History(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"deploy": rev, "rollback": back, "status": st, "history": hist} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s shows the secret value: %s", name, b)
		}
		if !strings.Contains(string(b), "STRIPE_KEY=") {
			t.Errorf("%s: got %s, want the variable's name shown", name, b)
		}
	}
	recs, err := f.store.EnvRevisions(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; !strings.Contains(string(last.Workloads), "STRIPE_KEY="+secret) {
		t.Errorf("the rolled-back revision's record lost the value: %s", last.Workloads)
	}
}

// TestHooks: Serving hears the ready instances' addresses and the spec of
// the revision they run; Describe adds to the status; an InstanceEnv
// error keeps the revision from starting.
func TestHooks(t *testing.T) {
	var (
		mu    sync.Mutex
		heard = map[string][]string{}
		rules []string
	)
	failEnv := errors.New("no secret for you")
	f := &fixture{t: t, stateDir: t.TempDir(), adm: &refuser{refuse: map[string]bool{}}, configure: func(c *Config) {
		c.Serving = func(_ context.Context, env string, spec runtime.EnvironmentSpec, addrs []string) error {
			mu.Lock()
			defer mu.Unlock()
			heard[env] = slices.Sorted(slices.Values(addrs))
			for _, r := range spec.AlertRules {
				rules = append(rules, r.Name)
			}
			return nil
		}
		c.Describe = func(env string, st *runtime.EnvironmentStatus) { st.SinkURL = "http://sink/" + env }
		c.InstanceEnv = func(_ context.Context, env string) ([]string, error) {
			if env == "broken" {
				return nil, failEnv
			}
			return []string{"GANTRY_SINK_URL=http://sink/" + env}, nil
		}
	}}
	f.open()
	ctx := context.Background()
	_, err := f.ctl.Deploy(ctx, runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{f.workload("v1", 2, "")},
		Spec: runtime.EnvironmentSpec{AlertRules: []runtime.File{{Name: "alerts.yaml", Data: []byte("groups: []")}}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.ctl.Status(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, in := range st.Instances {
		want = append(want, in.Addr)
	}
	slices.Sort(want)
	mu.Lock()
	got, gotRules := heard["staging"], slices.Clone(rules)
	mu.Unlock()
	if !slices.Equal(got, want) || len(got) != 2 {
		t.Errorf("Serving heard %v, want the 2 instances %v", got, want)
	}
	if len(gotRules) == 0 || gotRules[0] != "alerts.yaml" {
		t.Errorf("Serving's spec rules: got %v, want alerts.yaml", gotRules)
	}
	if st.SinkURL != "http://sink/staging" {
		t.Errorf("status sink URL: got %q, want http://sink/staging", st.SinkURL)
	}
	_, err = f.ctl.Deploy(ctx, runtime.DeployRequest{Environment: "broken", Workloads: []runtime.Workload{f.workload("v1", 1, "")}})
	if !errors.Is(err, failEnv) {
		t.Errorf("deploy with an InstanceEnv error: got %v, want it wrapped", err)
	}
}
