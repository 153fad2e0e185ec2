package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// agentPipeline rolls the uisvc service out blue/green with two
// monitors: health from the server itself and from eu-west, pay from
// eu-west only.
const agentPipeline = `name: agentsvc
environments:
  prod: {}
monitors:
  health: {path: /healthz, interval: 1s, locations: [local, eu-west]}
  pay: {path: /pay, interval: 1s, locations: [eu-west]}
stages:
  - name: build
    steps:
      - {name: image, uses: image-build, with: {platforms: [PLATFORM], cache: false}}
      - {name: push, uses: image-push, needs: [image]}
  - name: promote-prod
    steps:
      - {name: rollout, uses: blue-green, with: {environment: prod}}
`

// agentMain is uisvc's main.go at version v with a /pay endpoint that
// fails in version "bad": a release bad only for the check the eu-west
// agent runs.
func agentMain(t *testing.T, v string) string {
	pay := `mux.HandleFunc("/pay", func(w http.ResponseWriter, _ *http.Request) {
		if version == "bad" {
			http.Error(w, "payments broken", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "paid")
	})
	log.Fatal(`
	return strings.Replace(uiMain(t, v), "log.Fatal(", pay, 1)
}

// TestMonitorAgent runs a real gantry serve --listen and a real gantry
// monitor agent --location eu-west: with the agent running a rollout
// completes and both locations show passes (the agent checking the URL
// of --agent-url); the server restarts under the agent, which carries
// on; a release that fails only the agent's check is aborted with
// traffic back on blue; with no agent the gate holds,
// naming the silent location, and once the post-promotion window is over
// the step fails while the release stays.
func TestMonitorAgent(t *testing.T) {
	e := newEnv(t)
	os.Chmod(e.state, 0o700)
	copyTestdata(t, e, "uisvc")
	e.write(".gantry/pipeline.yaml", strings.ReplaceAll(agentPipeline, "PLATFORM", "linux/"+goruntime.GOARCH))
	chart, err := os.ReadFile("testdata/uisvc/deploy/chart/templates/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rollout := strings.Replace(string(chart), "autoPromotionEnabled: false", "autoPromotionEnabled: true", 1)
	rollout = strings.Replace(rollout, "scaleDownDelaySeconds: 5", "scaleDownDelaySeconds: 15", 1)
	e.write("deploy/chart/templates/rollout.yaml", rollout)
	e.write("main.go", agentMain(t, "v1"))
	e.commitAll("feat: version v1")

	// The agent's user and token.
	add := e.cmd(context.Background(), "user", "add", "agent-eu", "--role", "developer")
	add.Stdin = strings.NewReader("correct horse battery staple agent\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	tr := e.gantry("token", "create", "--user", "agent-eu", "--location", "eu-west")
	if tr.code != 0 {
		t.Fatalf("token create: exit %d\n%s", tr.code, tr.stderr)
	}
	token := strings.TrimSpace(tr.stdout)

	// What agents check: a proxy in front of the active URL (learned
	// after the first rollout), standing for the address the outside
	// reaches the environment at.
	var target atomic.Value
	target.Store("")
	var viaAgentURL atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := url.Parse(target.Load().(string))
		if err != nil || u.Host == "" {
			http.Error(w, "no active URL yet", http.StatusBadGateway)
			return
		}
		viaAgentURL.Add(1)
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.ErrorLog = log.New(io.Discard, "", 0) // the restart's refused connections
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()

	addr := freeAddr(t)
	var srvLog syncBuffer
	// startServe starts gantry serve --listen; the returned func stops
	// it with SIGTERM, as a user does (it stops the instances it
	// started), and waits.
	startServe := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		srv := e.cmd(ctx, "serve", "--listen", addr, "--agent-url", "prod="+front.URL)
		srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
		srv.WaitDelay = time.Minute
		srv.Stdout, srv.Stderr = &srvLog, &srvLog
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		return func() {
			once.Do(func() {
				cancel()
				_ = srv.Wait()
			})
		}
	}
	stopServe := startServe()
	t.Cleanup(func() {
		stopServe()
		if t.Failed() {
			t.Logf("gantry serve:\n%s", srvLog.String())
		}
	})
	base := "http://" + addr
	waitHTTP(t, base+"/login")

	// An agent whose token is not bound to its location is refused and
	// stops at once (a person's token may not send results that can
	// abort a release), as is one bound to another location.
	for _, loc := range []string{"", "us-east"} {
		args := []string{"token", "create", "--user", "agent-eu"}
		if loc != "" {
			args = append(args, "--location", loc)
		}
		tr := e.gantry(args...)
		if tr.code != 0 {
			t.Fatalf("token create: exit %d\n%s", tr.code, tr.stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		wrong := e.cmd(ctx, "monitor", "agent", "--server", base, "--location", "eu-west")
		wrong.Env = append(wrong.Env, "GANTRY_TOKEN="+strings.TrimSpace(tr.stdout))
		out, err := wrong.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 77 || !strings.Contains(string(out), "the server refuses this agent") {
			t.Errorf("agent with a token bound to %q: %v, want exit 77 saying it is refused\n%s", loc, err, out)
		}
	}

	status := func() runtime.RolloutStatus {
		t.Helper()
		r := e.gantry("rollout", "status", "prod", "-o", "json")
		var st runtime.RolloutStatus
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("rollout status: exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		return st
	}
	run := func(v string) result {
		t.Helper()
		e.write("main.go", agentMain(t, v))
		e.commitAll("feat: version " + v)
		return e.gantry("run", "--progress", "plain")
	}

	// v1: the first rollout is deployed at once; no monitor runs.
	if r := e.gantry("run", "--progress", "plain"); r.code != 0 {
		t.Fatalf("run v1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	active := status().ActiveURL
	target.Store(active)

	// The agent, as on another machine.
	actx, stopAgent := context.WithCancel(context.Background())
	agent := e.cmd(actx, "monitor", "agent", "--server", base, "--location", "eu-west", "--poll", "200ms", "--flush", "200ms")
	agent.Env = append(agent.Env, "GANTRY_TOKEN="+token)
	agent.Cancel = func() error { return agent.Process.Signal(syscall.SIGTERM) }
	agent.WaitDelay = 30 * time.Second
	var agentLog syncBuffer
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentStopped := false
	t.Cleanup(func() {
		if !agentStopped {
			stopAgent()
			_ = agent.Wait()
		}
		if t.Failed() {
			t.Logf("gantry monitor agent:\n%s", agentLog.String())
		}
	})

	// v2 with the agent: completes, both locations passed.
	if r := run("v2"); r.code != 0 {
		t.Fatalf("run v2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	st := status()
	passed := map[string]bool{}
	for _, m := range st.Monitors {
		passed[m.Monitor+"@"+m.Location] = m.OK
	}
	for _, want := range []string{"health@local", "health@eu-west", "pay@eu-west"} {
		if !passed[want] {
			t.Errorf("after v2: no pass of %s in %+v", want, st.Monitors)
		}
	}
	if st.Phase != runtime.RolloutHealthy || st.Desired != 2 {
		t.Errorf("after v2: %s revision %d, want Healthy 2", st.Phase, st.Desired)
	}
	if viaAgentURL.Load() == 0 {
		t.Error("the agent never checked the --agent-url address")
	}
	if got := get(t, active); got != "v2" {
		t.Errorf("after v2 the active URL answers %q, want v2", got)
	}

	// The server restarts under the agent, which carries on.
	stopServe()
	stopServe = startServe()
	waitHTTP(t, base+"/login")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(agentLog.String(), "the server answers again") {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not come back to the restarted server")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// bad: fails only the agent's pay check; aborted, back on blue.
	r := run("bad")
	if r.code != 1 {
		t.Fatalf("run bad: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	st = status()
	if st.Phase != runtime.RolloutDegraded || st.AbortedBy != "gantry" || !strings.Contains(st.Message, "monitor pay from eu-west failed") {
		t.Errorf("after bad: %s aborted by %q: %q; want Degraded by gantry, the eu-west pay monitor named", st.Phase, st.AbortedBy, st.Message)
	}
	if got := get(t, active); got != "v2" {
		t.Errorf("after the abort the active URL answers %q, want v2 (blue)", got)
	}

	// The agent ends cleanly on SIGTERM (Wait reports the cancelled
	// context; the exit status is the agent's).
	stopAgent()
	err = agent.Wait()
	agentStopped = true
	if code := agent.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the agent stopped with exit %d (%v), want 0", code, err)
	}

	// v4 without the agent: the gate names eu-west as silent; past the
	// window the step fails, the release stays.
	r = run("v4")
	out := r.stdout + r.stderr
	if r.code != 1 {
		t.Fatalf("run v4: exit %d, want 1\n%s", r.code, out)
	}
	for _, want := range []string{
		"waiting for every synthetic monitor to pass from every location: health from eu-west: no result since the promotion at",
		"(is gantry monitor agent --location eu-west running?)",
		"the release is not aborted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run v4 output lacks %q:\n%s", want, out)
		}
	}
	st = status()
	if st.Phase != runtime.RolloutHealthy || st.Step != runtime.StepCompleted || st.Desired != 4 {
		t.Errorf("after v4: %s %s revision %d, want Healthy completed 4", st.Phase, st.Step, st.Desired)
	}
	if got := get(t, active); got != "v4" {
		t.Errorf("after v4 the active URL answers %q, want v4", got)
	}
}

// get returns url's body, trimmed.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// syncBuffer is a bytes.Buffer that a process's two streams write
// together.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
