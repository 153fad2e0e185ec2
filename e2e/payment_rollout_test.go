package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/syncbuf"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// rolloutPipeline builds the example's image and rolls it out to prod
// blue/green with the example's own chart (its Rollout and
// AnalysisTemplate, unchanged unless a test edits its copy), the prod
// values and values-e2e.yaml, which each release of a test writes. The
// analysis queries prod's own Prometheus. A failed promotion notifies
// Slack through the webhook in $SLACK_WEBHOOK_URL.
const rolloutPipeline = `name: payment-service
registry: embedded
secrets:
  SLACK_WEBHOOK_URL: {env: SLACK_WEBHOOK_URL}
notify:
  slack: {webhook: "${secrets.SLACK_WEBHOOK_URL}"}
environments:
  prod:
    chart: deploy/chart
    values: [deploy/chart/values-local.yaml, deploy/chart/values-prod-local.yaml, deploy/chart/values-e2e.yaml]
    prometheus: {rules: [deploy/prometheus/alerts.yaml]}
stages:
  - name: build
    steps:
      - {name: image, uses: image-build, with: {platforms: [PLATFORM], cache: false}}
      - {name: push, uses: image-push, needs: [image]}
  - name: promote-prod
    steps:
      - name: bluegreen
        uses: blue-green
        with:
          environment: prod
          traffic: {header: X-Canary, value: "1"}
          analysis_interval: 6s
          monitors: []
    on_failure: [{notify: slack}]
`

// releaseValues are values-e2e.yaml: in-memory storage (the release
// under test is the service, not its database), a scale-down delay long
// enough for a post-promotion analysis, and the release's own config on
// top (FAULT_LATENCY makes a bad release).
func releaseValues(autoPromote bool, config map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rollout:\n  autoPromotionEnabled: %t\n  scaleDownDelaySeconds: 150\nconfig:\n  STORAGE: memory\n", autoPromote)
	for k, v := range config {
		fmt.Fprintf(&b, "  %s: %q\n", k, v)
	}
	return b.String()
}

// rolloutRepo is a git copy of examples/payment-service whose pipeline is
// rolloutPipeline.
func rolloutRepo(t *testing.T, e *env) {
	t.Helper()
	copyTree(t, "../examples/payment-service", e.repo)
	e.write(".gantry/pipeline.yaml", strings.ReplaceAll(rolloutPipeline, "PLATFORM", "linux/"+goruntime.GOARCH))
	e.write("deploy/chart/values-e2e.yaml", releaseValues(false, nil))
	e.commitAll("feat: payment service")
	t.Cleanup(func() { e.gantry("serve", "stop") })
}

// rolloutJSON is what the tests read of `gantry rollout status -o json`.
type rolloutJSON struct {
	Phase     string `json:"phase"`
	Step      string `json:"step"`
	Message   string `json:"message"`
	Stable    int    `json:"stable"`
	Desired   int    `json:"desired"`
	Digest    string `json:"digest"`
	ActiveURL string `json:"activeURL"`
	AbortedBy string `json:"abortedBy"`
	Analyses  []struct {
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
	} `json:"analyses"`
}

func (e *env) rollout(name string) (rolloutJSON, bool) {
	e.t.Helper()
	r := e.gantry("rollout", "status", name, "-o", "json")
	var st rolloutJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return st, false
	}
	return st, true
}

// waitRolloutStep polls the rollout until ok holds, failing the test after
// limit or when the run ends first.
func (e *env) waitRolloutStep(name, what string, limit time.Duration, runEnded <-chan struct{}, ok func(rolloutJSON) bool) rolloutJSON {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	var last rolloutJSON
	ended := false
	for {
		st, read := e.rollout(name)
		if read {
			last = st
			if ok(st) {
				return st
			}
		}
		if ended {
			e.t.Fatalf("%s: the run ended first; last status: %+v", what, last)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s; last status: %+v", what, limit, last)
		}
		select {
		case <-runEnded:
			ended = true // one more look: the run may end just after
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// bgRun is a gantry run in the background; done closes when it ended,
// with err its end.
type bgRun struct {
	out, errb syncbuf.Buffer
	done      chan struct{}
	err       error
	cmd       *exec.Cmd
}

func (e *env) startRun(ctx context.Context, args ...string) *bgRun {
	e.t.Helper()
	r := &bgRun{done: make(chan struct{})}
	r.cmd = e.cmd(ctx, append([]string{"run", "--progress", "plain"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errb
	if err := r.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { // owned by the test: the cleanup waits for it
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the run's end and returns its exit code.
func (r *bgRun) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		err := r.err
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(limit):
		t.Fatalf("run did not end within %s\n%s", limit, tail(r.out.String(), 40))
		return -1
	}
}

// activeLoad is continuous load on the active URL's /healthz: plain
// requests, which must never fail, and X-Canary requests, which go to
// green before promotion and feed its analysis. It counts the answers
// that carry the fault header (the bad release answered).
type activeLoad struct {
	stop                  chan struct{}
	wg                    sync.WaitGroup
	ok, failed, faulty    atomic.Int64
	canaryOK, canaryFault atomic.Int64
	canaryFailed          atomic.Int64
	mu                    sync.Mutex
	firstFailure          error
}

func startActiveLoad(url string) *activeLoad {
	l := &activeLoad{stop: make(chan struct{})}
	client := func(canary bool) {
		defer l.wg.Done()
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 15 * time.Second}
		defer c.CloseIdleConnections()
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", url+"/healthz", nil)
			if canary {
				req.Header.Set("X-Canary", "1")
			}
			resp, err := c.Do(req)
			fault := ""
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				fault = resp.Header.Get("X-Fault-Injected")
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			switch {
			case canary && err != nil:
				l.canaryFailed.Add(1)
			case canary && fault != "":
				l.canaryFault.Add(1)
			case canary:
				l.canaryOK.Add(1)
			case err != nil:
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstFailure == nil {
					l.firstFailure = err
				}
				l.mu.Unlock()
			case fault != "":
				l.faulty.Add(1)
			default:
				l.ok.Add(1)
			}
		}
	}
	for _, canary := range []bool{false, false, true} {
		l.wg.Add(1)
		go client(canary)
	}
	return l
}

func (l *activeLoad) close() {
	close(l.stop)
	l.wg.Wait()
}

func (l *activeLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("active: %d ok, %d from the bad release, %d failed (first: %v); X-Canary: %d ok, %d from the bad release, %d failed",
		l.ok.Load(), l.faulty.Load(), l.failed.Load(), l.firstFailure, l.canaryOK.Load(), l.canaryFault.Load(), l.canaryFailed.Load())
}

// slackStandIn receives what gantry posts to a Slack incoming webhook.
type slackStandIn struct {
	*httptest.Server
	mu       sync.Mutex
	messages []string
}

func newSlackStandIn(t *testing.T) *slackStandIn {
	s := &slackStandIn{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.messages = append(s.messages, string(b))
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackStandIn) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messages
	s.messages = nil
	return m
}

// checkAbortedToBlue checks a rollout auto-aborted back to blue: Degraded,
// by gantry, the stable revision blue's, the environment serving blue's
// digest and the active URL answering from blue only, under the load.
func checkAbortedToBlue(t *testing.T, e *env, l *activeLoad, blueRev int, blueDigest string, runDone <-chan struct{}, kind string) rolloutJSON {
	t.Helper()
	st := e.waitRolloutStep("prod", "the abort", 4*time.Minute, runDone, func(st rolloutJSON) bool { return st.Step == "aborted" })
	said := map[string]string{"prePromotion": "pre-promotion analysis Failed", "postPromotion": "post-promotion analysis Failed"}[kind]
	if st.Phase != "Degraded" || st.AbortedBy != "gantry" || st.Stable != blueRev || !strings.Contains(st.Message, said) {
		t.Errorf("aborted rollout: phase %s by %q stable %d message %q; want Degraded by gantry, stable %d, naming the %s analysis",
			st.Phase, st.AbortedBy, st.Stable, st.Message, blueRev, kind)
	}
	if len(st.Analyses) == 0 || st.Analyses[len(st.Analyses)-1].Kind != kind || st.Analyses[len(st.Analyses)-1].Phase != "Failed" {
		t.Errorf("analyses %+v: want the last a Failed %s", st.Analyses, kind)
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Current == nil || envs[0].Current.Number != blueRev || envs[0].Current.Digest != blueDigest {
		t.Errorf("after the abort: gantry env ls = %+v, want prod serving revision %d (%s)", envs, blueRev, blueDigest)
	}
	// The record says aborted a moment before the proxy switches; then
	// every answer of the active URL comes from blue.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(st.ActiveURL + "/healthz")
		if err != nil {
			t.Fatalf("GET the active URL after the abort: %v", err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Fault-Injected") == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the active URL still answers from the bad release 10 s after the abort")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Requests the proxy sent to green before the switch finish there
	// (the switch drains, it does not cut them off), each up to the
	// injected 600 ms late: count from once they have all come back.
	time.Sleep(2 * time.Second)
	before := l.faulty.Load()
	for n := l.ok.Load(); l.ok.Load() < n+100; {
		time.Sleep(20 * time.Millisecond)
	}
	if got := l.faulty.Load() - before; got != 0 {
		t.Errorf("after the switch back: %d answers of the active URL came from the bad release, want 0", got)
	}
	return st
}

// TestPaymentRolloutAutoAbort: the real payment service rolled out to
// prod blue/green through `gantry run`, with the chart's AnalysisTemplate
// measured by prod's real Prometheus, under continuous load on the
// active URL that must never fail:
//   - a good release pauses for manual promotion after its analysis
//     passed and is promoted (gantry rollout promote) to Healthy;
//   - a bad release (FAULT_LATENCY=600ms through the chart's config) is
//     aborted by its pre-promotion analysis, the active URL never left
//     blue, the run fails and Slack gets the failing metric with its
//     measured values and no secret;
//   - a bad release whose Rollout has a post-promotion analysis instead
//     is promoted, then aborted by that analysis: the active URL back on
//     blue's digest.
func TestPaymentRolloutAutoAbort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the payment service four times and rolls it out")
	}
	testenv.RequireTool(t, "prometheus", "apt-get install prometheus (scripts/deps.sh does)")
	t.Setenv("GANTRY_ISOLATION", "process")
	slack := newSlackStandIn(t)
	// The webhook's path is its credential, as Slack's are.
	hookSecret := "T0E2E/B0E2E/s3cr3tW3bh00kT0k3n"
	t.Setenv("SLACK_WEBHOOK_URL", slack.URL+"/services/"+hookSecret)
	e := newEnv(t)
	rolloutRepo(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	// Release 1: the first rollout of prod is deployed at once.
	if r := e.gantry("run", "--progress", "plain"); r.code != 0 {
		t.Fatalf("run 1: exit %d\n%s\n%s", r.code, tail(r.stdout, 60), r.stderr)
	}
	first, ok := e.rollout("prod")
	if !ok || first.Phase != "Healthy" || first.Stable != 1 {
		t.Fatalf("after run 1: rollout %+v, want Healthy at revision 1", first)
	}
	l := startActiveLoad(first.ActiveURL)
	defer func() {
		l.close()
		t.Logf("load: %s", l)
		if n := l.failed.Load(); n != 0 {
			t.Errorf("%d requests to the active URL failed, want 0 (%s)", n, l)
		}
	}()

	// Release 2, good: analysis passes, pause, manual promotion.
	e.write("deploy/chart/values-e2e.yaml", releaseValues(false, map[string]string{"LOG_LEVEL": "warn"}))
	e.commitAll("feat: release 2")
	run := e.startRun(ctx)
	st := e.waitRolloutStep("prod", "the pause of release 2", 8*time.Minute, run.done, func(st rolloutJSON) bool {
		return st.Desired == 2 && (st.Step == "paused" || st.Step == "aborted")
	})
	if st.Step != "paused" || len(st.Analyses) != 1 || st.Analyses[0].Phase != "Successful" {
		t.Fatalf("release 2: step %s, analyses %+v (%s); want paused after a Successful analysis\n%s", st.Step, st.Analyses, st.Message, tail(run.out.String(), 40))
	}
	if l.canaryOK.Load() == 0 {
		t.Errorf("no X-Canary request reached green before promotion (%s)", l)
	}
	if r := e.gantry("rollout", "promote", "prod"); r.code != 0 {
		t.Fatalf("rollout promote: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code := run.wait(t, 5*time.Minute); code != 0 {
		t.Fatalf("run 2: exit %d\n%s\n%s", code, tail(run.out.String(), 60), run.errb.String())
	}
	good, _ := e.rollout("prod")
	if good.Phase != "Healthy" || good.Stable != 2 {
		t.Fatalf("release 2: %+v, want Healthy at revision 2", good)
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Current == nil || envs[0].Current.Number != 2 {
		t.Fatalf("gantry env ls: %+v, want prod serving revision 2", envs)
	}
	blueDigest := envs[0].Current.Digest
	if got := l.faulty.Load() + l.canaryFault.Load(); got != 0 {
		t.Errorf("%d answers carry a fault header before any bad release", got)
	}
	t.Logf("release 2 promoted: %s", l)

	// Release 3, bad: aborted in pre-promotion analysis.
	e.write("deploy/chart/values-e2e.yaml", releaseValues(false, map[string]string{"FAULT_LATENCY": "600ms"}))
	e.commitAll("feat: release 3")
	slack.take()
	run = e.startRun(ctx)
	checkAbortedToBlue(t, e, l, 2, blueDigest, run.done, "prePromotion")
	if code := run.wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("run 3: exit %d, want 1\n%s", code, tail(run.out.String(), 60))
	}
	if l.canaryFault.Load() == 0 {
		t.Errorf("no X-Canary request reached the bad green (%s)", l)
	}
	if got := l.faulty.Load(); got != 0 {
		t.Errorf("%d plain requests to the active URL reached the bad release before promotion, want 0", got)
	}
	if v := e.show(3); v.Status != "failed" {
		t.Errorf("run 3: %s, want failed", v.Status)
	}
	checkSlack(t, slack.take(), hookSecret)

	// Release 4, bad, with a post-promotion analysis instead: promoted at
	// once, then aborted by it.
	postAnalysis(t, e)
	e.write("deploy/chart/values-e2e.yaml", releaseValues(true, map[string]string{"FAULT_LATENCY": "600ms"}))
	e.commitAll("feat: release 4")
	run = e.startRun(ctx)
	e.waitRolloutStep("prod", "the promotion of release 4", 5*time.Minute, run.done, func(st rolloutJSON) bool {
		return st.Desired == 4 && st.Step != "preview" && st.Step != "prePromotion" && st.Step != "paused"
	})
	checkAbortedToBlue(t, e, l, 2, blueDigest, run.done, "postPromotion")
	if code := run.wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("run 4: exit %d, want 1\n%s", code, tail(run.out.String(), 60))
	}
	if l.faulty.Load() == 0 {
		t.Errorf("no answer of the active URL came from release 4 while it was promoted (%s)", l)
	}
	checkSlack(t, slack.take(), hookSecret)
}

// postAnalysis edits the test's chart: the Rollout's pre-promotion
// analysis becomes a post-promotion one, measuring the active Service
// with the same metrics and conditions.
func postAnalysis(t *testing.T, e *env) {
	t.Helper()
	rollout := filepath.Join(e.repo, "deploy/chart/templates/rollout.yaml")
	b, err := os.ReadFile(rollout)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "prePromotionAnalysis:", "postPromotionAnalysis:", 1)
	s = strings.Replace(s, `-analysis`, `-post-analysis`, 1)
	if s == string(b) {
		t.Fatal("the chart's Rollout has no prePromotionAnalysis to turn into a post-promotion one")
	}
	e.write("deploy/chart/templates/rollout.yaml", s)
	tmpl, err := os.ReadFile(filepath.Join(e.repo, "deploy/chart/templates/analysis-template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	post := strings.NewReplacer("name: payment-service-analysis", "name: payment-service-post-analysis",
		`service="payment-service-preview"`, `service="payment-service"`).Replace(string(tmpl))
	e.write("deploy/chart/templates/post-analysis-template.yaml", post)
}

// checkSlack: one Block Kit message naming the failing metric and what
// it measured, above the condition's 0.25 s, and no secret.
func checkSlack(t *testing.T, got []string, secret string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("Slack got %d messages, want 1: %q", len(got), got)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []any  `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(got[0]), &msg); err != nil || len(msg.Blocks) == 0 {
		t.Fatalf("Slack message is not Block Kit (%v): %s", err, got[0])
	}
	text := strings.Join(blockTexts(msg.Blocks), "\n")
	if !strings.Contains(text, "p99-latency") {
		t.Errorf("Slack message does not name the failing metric p99-latency:\n%s", text)
	}
	_, measured, found := strings.Cut(text, "measured ")
	high := false
	for _, v := range strings.FieldsFunc(measured, func(r rune) bool { return r == ',' || r == ' ' || r == '[' || r == ']' || r == '\n' || r == ';' }) {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0.25 {
			high = true
			break
		}
	}
	if !found || !high {
		t.Errorf("Slack message lacks the measured values above 0.25:\n%s", text)
	}
	for _, s := range []string{secret, "s3cr3tW3bh00kT0k3n"} {
		if strings.Contains(got[0], s) {
			t.Errorf("Slack message carries the secret %q: %s", s, got[0])
		}
	}
}

// blockTexts collects every string of a Block Kit payload's blocks.
func blockTexts(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, blockTexts(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, blockTexts(e)...)
		}
		return out
	}
	return nil
}
