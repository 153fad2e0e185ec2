package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// killPipeline rolls the deploy tests' service out to prod blue/green
// with the chart the test writes (a Rollout with pre- and post-promotion
// analyses against the test's verdict server).
const killPipeline = `name: svc
environments:
  prod: {chart: deploy/chart}
stages:
  - name: build
    steps:
      - {name: image, uses: image-build, with: {platforms: [PLATFORM], cache: false}}
      - {name: push, uses: image-push, needs: [image]}
  - name: promote-prod
    steps:
      - {name: bluegreen, uses: blue-green, with: {environment: prod, monitors: []}}
`

// killChart replaces the service's Deployment with an Argo Rollout:
// manual promotion that promotes itself after pauseSeconds, blue kept
// scaleDownSeconds, and a pre- and a post-promotion analysis of 40
// measurements 250 ms apart (10 s) against the verdict URL.
var killChart = map[string]string{
	"deploy/chart/values.yaml": "image: {repository: svc, digest: \"\"}\npauseSeconds: 25\nscaleDownSeconds: 75\nverdict: \"\"\n",
	"deploy/chart/templates/deployment.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: svc
spec:
  replicas: 1
  selector:
    matchLabels: {app: svc}
  strategy:
    blueGreen:
      activeService: svc
      previewService: svc-preview
      autoPromotionEnabled: false
      autoPromotionSeconds: {{ .Values.pauseSeconds }}
      scaleDownDelaySeconds: {{ .Values.scaleDownSeconds }}
      prePromotionAnalysis:
        templates: [{templateName: verdict}]
        args: [{name: url, value: "{{ .Values.verdict }}"}]
      postPromotionAnalysis:
        templates: [{templateName: verdict}]
        args: [{name: url, value: "{{ .Values.verdict }}"}]
  template:
    metadata:
      labels: {app: svc}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: svc
          image: "{{ .Values.image.repository }}@{{ .Values.image.digest }}"
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 1
            failureThreshold: 3
`,
	"deploy/chart/templates/services.yaml": `apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: svc}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-preview}
spec:
  selector: {app: svc}
  ports: [{name: http, port: 80, targetPort: http}]
`,
	"deploy/chart/templates/analysis.yaml": `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: verdict}
spec:
  args: [{name: url}]
  metrics:
    - name: ok
      interval: 250ms
      count: 40
      successCondition: result == true
      provider:
        web:
          url: "{{ "{{" }}args.url{{ "}}" }}"
          jsonPath: "{$.ok}"
`,
}

// probe is one request of the prober: when, and the body or the error.
type probe struct {
	at   time.Time
	body string
	err  error
}

// prober GETs url one request after another until stopped.
type prober struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []probe
}

func startProber(url string) *prober {
	p := &prober{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			pr := probe{at: time.Now()}
			resp, err := c.Get(url)
			if err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				pr.body, err = strings.TrimSpace(string(b)), rerr
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			pr.err = err
			p.mu.Lock()
			p.got = append(p.got, pr)
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *prober) close() []probe {
	close(p.stop)
	p.wg.Wait()
	return p.got
}

// answeredSince waits until the prober has an answer after t and returns
// its time.
func (p *prober) answeredSince(t *testing.T, since time.Time, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, pr := range p.got {
			if pr.at.After(since) && pr.err == nil {
				p.mu.Unlock()
				return pr.at
			}
		}
		p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the active URL did not answer within %s of %s", limit, since.Format(time.TimeOnly))
	return time.Time{}
}

// killServe kills the state dir's gantry serve with SIGKILL and waits
// until it no longer answers.
func (e *env) killServe() time.Time {
	e.t.Helper()
	st := e.gantry("serve", "status", "-o", "json")
	var h struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &h); err != nil || h.Pid == 0 {
		e.t.Fatalf("gantry serve status: %v %q", err, st.stdout)
	}
	if err := syscall.Kill(h.Pid, syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	killed := time.Now()
	for i := 0; e.gantry("serve", "status").code == 0; i++ {
		if i > 200 {
			e.t.Fatal("gantry serve still answers after kill -9")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return killed
}

// statusWithAnalyses is the rollout status with deadlines.
type statusWithAnalyses struct {
	rolloutJSON
	PreviewURL  string    `json:"previewURL"`
	ScaleDownAt time.Time `json:"scaleDownAt"`
	PauseUntil  time.Time `json:"pauseUntil"`
}

func (e *env) rolloutFull(name string) (statusWithAnalyses, bool) {
	e.t.Helper()
	r := e.gantry("rollout", "status", name, "-o", "json")
	var st statusWithAnalyses
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return st, false
	}
	return st, true
}

func (e *env) waitFull(what string, limit time.Duration, ok func(statusWithAnalyses) bool) statusWithAnalyses {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	var last statusWithAnalyses
	for {
		if st, read := e.rolloutFull("prod"); read {
			last = st
			if ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s; last status: %+v", what, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func measured(a []struct {
	Kind  string `json:"kind"`
	Phase string `json:"phase"`
	Runs  []struct {
		Metrics []struct {
			Name         string `json:"name"`
			Phase        string `json:"phase"`
			Measurements []struct {
				Phase string `json:"phase"`
				Value string `json:"value"`
			} `json:"measurements"`
		} `json:"metricResults"`
	} `json:"runs"`
}, i int) int {
	if i >= len(a) || len(a[i].Runs) == 0 || len(a[i].Runs[0].Metrics) == 0 {
		return 0
	}
	return len(a[i].Runs[0].Metrics[0].Measurements)
}

// TestRolloutSurvivesServeKill9: the gantry serve process (the real
// binary, its proxy and its rollout controller) is killed with SIGKILL in
// each phase of one blue/green cycle (pre-promotion analysis running,
// paused, post-promotion analysis running, scale-down delay pending) and
// started again. Each time the rollout continues from its record: an
// interrupted analysis is Stopped and measured afresh, the pause and the
// scale-down keep their recorded deadlines, the active URL serves the
// revision the record says. A prober on the active URL runs throughout:
// the proxy lives in the killed process, so requests fail from the kill
// until the new serve answers (reported below); outside those windows no
// request fails, and it only ever sees blue, then green, never blue again.
// The run that started the rollout follows it across every restart
// until Healthy and passes.
func TestRolloutSurvivesServeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a service twice and kills gantry serve four times")
	}
	t.Setenv("GANTRY_ISOLATION", "process")
	verdict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok": true}`)
	}))
	t.Cleanup(verdict.Close)
	e := newEnv(t)
	deployRepo(t, e)
	e.write(".gantry/pipeline.yaml", strings.ReplaceAll(killPipeline, "PLATFORM", "linux/"+goruntime.GOARCH))
	for name, content := range killChart {
		if name == "deploy/chart/values.yaml" {
			content = strings.Replace(content, `verdict: ""`, fmt.Sprintf("verdict: %q", verdict.URL), 1)
		}
		e.write(name, content)
	}
	e.version("v1", true, 200)
	if r := e.gantry("run", "--progress", "plain"); r.code != 0 {
		t.Fatalf("run 1: exit %d\n%s\n%s", r.code, tail(r.stdout, 60), r.stderr)
	}
	first, ok := e.rolloutFull("prod")
	if !ok || first.Phase != "Healthy" {
		t.Fatalf("after run 1: %+v, want Healthy", first)
	}
	active := first.ActiveURL
	p := startProber(active)
	var windows [][2]time.Time
	defer func() {
		got := p.close()
		checkProbes(t, got, windows)
	}()
	var serves []*exec.Cmd
	t.Cleanup(func() {
		for _, s := range serves {
			_ = s.Process.Signal(syscall.SIGTERM)
			_ = s.Wait()
		}
	})
	restart := func(phase string) {
		t.Helper()
		killed := e.killServe()
		srv, _ := e.startServe()
		serves = append(serves, srv)
		back := p.answeredSince(t, killed, 2*time.Minute)
		windows = append(windows, [2]time.Time{killed, back})
		t.Logf("%s: killed at %s, the active URL answered again %s later", phase, killed.Format("15:04:05.000"), back.Sub(killed).Round(time.Millisecond))
	}

	// Run 2 rolls v2 out and follows the rollout through gantry serve,
	// waiting for it to come back after each kill.
	e.version("v2", true, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	run := e.startRun(ctx)

	// 1. Pre-promotion analysis running.
	e.waitFull("pre-promotion measurements", 5*time.Minute, func(st statusWithAnalyses) bool {
		return st.Desired == 2 && st.Step == "prePromotion" && measured(st.Analyses, 0) > 0
	})
	restart("prePromotion")
	st := e.waitFull("a fresh pre-promotion analysis", time.Minute, func(st statusWithAnalyses) bool {
		return len(st.Analyses) >= 2 && measured(st.Analyses, 1) > 0 || st.Step != "prePromotion"
	})
	if len(st.Analyses) < 2 || st.Analyses[0].Phase != "Stopped" || st.Analyses[1].Kind != "prePromotion" {
		t.Errorf("after the kill in prePromotion: analyses %+v, want the interrupted one Stopped and a fresh prePromotion one", st.Analyses)
	}
	if got := waitAnswers(t, st.PreviewURL+"/", 30*time.Second); strings.TrimSpace(got) != "v2" {
		t.Errorf("preview URL after the restart: %q, want v2", got)
	}

	// 2. Paused, its automatic promotion due at the recorded deadline.
	paused := e.waitFull("the pause", 2*time.Minute, func(st statusWithAnalyses) bool { return st.Step == "paused" })
	if paused.PauseUntil.IsZero() {
		t.Fatalf("paused without a deadline: %+v", paused)
	}
	restart("paused")
	if st, _ := e.rolloutFull("prod"); time.Now().Before(paused.PauseUntil) && st.Step != "paused" {
		t.Errorf("after the kill while paused: step %s before the deadline %s, want still paused", st.Step, paused.PauseUntil)
	}
	promoted := e.waitFull("the promotion at the deadline", 2*time.Minute, func(st statusWithAnalyses) bool {
		return st.Step == "postPromotion" && measured(st.Analyses, len(st.Analyses)-1) > 0
	})
	if seen := time.Now(); seen.Before(paused.PauseUntil) {
		t.Errorf("promoted at or before %s, before the recorded deadline %s", seen, paused.PauseUntil)
	}

	// 3. Post-promotion analysis running; blue still kept.
	restart("postPromotion")
	st = e.waitFull("a fresh post-promotion analysis", time.Minute, func(st statusWithAnalyses) bool {
		n := len(st.Analyses)
		return n >= 4 && st.Analyses[n-1].Kind == "postPromotion" && measured(st.Analyses, n-1) > 0 || st.Step != "postPromotion"
	})
	if n := len(st.Analyses); n < 4 || st.Analyses[n-2].Phase != "Stopped" || st.Analyses[n-1].Kind != "postPromotion" {
		t.Errorf("after the kill in postPromotion: analyses %+v, want the interrupted post-promotion one Stopped and a fresh one", st.Analyses)
	}
	if !st.ScaleDownAt.Equal(promoted.ScaleDownAt) || promoted.ScaleDownAt.IsZero() {
		t.Errorf("scale-down deadline %s before the kill, %s after: want it kept", promoted.ScaleDownAt, st.ScaleDownAt)
	}

	// 4. Healthy, blue waiting out its scale-down delay.
	e.waitFull("the scale-down wait", 2*time.Minute, func(st statusWithAnalyses) bool { return st.Step == "scaleDown" })
	restart("scaleDown")
	done := e.waitFull("completion at the deadline", 3*time.Minute, func(st statusWithAnalyses) bool { return st.Step == "completed" })
	if time.Now().Before(promoted.ScaleDownAt) || done.Phase != "Healthy" || done.Stable != 2 {
		t.Errorf("completed %+v at %s; want Healthy at revision 2, not before the deadline %s", done, time.Now(), promoted.ScaleDownAt)
	}
	if got := waitAnswers(t, active+"/", 10*time.Second); strings.TrimSpace(got) != "v2" {
		t.Errorf("active URL at the end: %q, want v2", got)
	}
	// The run followed the rollout across every restart of its
	// controller until Healthy, and passed (its step ends at Healthy,
	// while blue waits out its delay: the last kill may come after it).
	if code := run.wait(t, time.Minute); code != 0 {
		t.Errorf("run 2: exit %d, want 0\n%s\n%s", code, tail(run.out.String(), 60), run.errb.String())
	}
	if n := strings.Count(run.out.String(), "gantry serve is back; following the rollout"); n < 3 {
		t.Errorf("run 2 followed the rollout again %d times, want once per kill before Healthy (3):\n%s", n, tail(run.out.String(), 60))
	}
}

// checkProbes: every request outside the kill windows succeeded; every
// answer is v1 or v2, and v1 never comes after v2.
func checkProbes(t *testing.T, got []probe, windows [][2]time.Time) {
	t.Helper()
	inWindow := func(at time.Time) bool {
		for _, w := range windows {
			if !at.Before(w[0].Add(-time.Second)) && !at.After(w[1]) {
				return true
			}
		}
		return false
	}
	failed, outside, sawV2 := 0, 0, false
	for _, pr := range got {
		switch {
		case pr.err != nil:
			failed++
			if !inWindow(pr.at) {
				outside++
				if outside <= 3 {
					t.Errorf("a request failed at %s, outside every kill-to-restart window: %v", pr.at.Format("15:04:05.000"), pr.err)
				}
			}
		case pr.body == "v2":
			sawV2 = true
		case pr.body == "v1":
			if sawV2 {
				t.Errorf("blue answered at %s after green had", pr.at.Format("15:04:05.000"))
				return
			}
		default:
			t.Errorf("the active URL answered %q at %s: neither blue nor green", pr.body, pr.at.Format("15:04:05.000"))
		}
	}
	if outside > 0 {
		t.Errorf("%d requests failed outside the kill windows, want 0", outside)
	}
	t.Logf("prober: %d requests, %d failed, all inside the %d kill-to-restart windows", len(got), failed, len(windows))
}
