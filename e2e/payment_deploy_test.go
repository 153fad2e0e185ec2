package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// paymentPipeline builds the example's image and deploys it to staging
// with the example's own chart, local values and services: the example's
// stage 4 without the earlier stages' gates, the policy (its key is a
// placeholder until scripts/example.sh trusts the state dir's) and the
// load tests.
const paymentPipeline = `name: payment-service
registry: embedded
environments:
  staging:
    chart: deploy/chart
    values: [deploy/chart/values-local.yaml]
    services: [postgres, redis, sqs]
stages:
  - name: build
    steps:
      - {name: image, uses: image-build, with: {platforms: [PLATFORM], cache: false}}
      - {name: push, uses: image-push, needs: [image]}
  - name: deploy-staging
    steps:
      - {name: deploy, uses: deploy, with: {environment: staging, timeout: 3m}}
`

// paymentRepo is a git copy of examples/payment-service whose pipeline is
// paymentPipeline.
func paymentRepo(t *testing.T, e *env) {
	t.Helper()
	copyTree(t, "../examples/payment-service", e.repo)
	e.write(".gantry/pipeline.yaml", strings.ReplaceAll(paymentPipeline, "PLATFORM", "linux/"+goruntime.GOARCH))
	e.commitAll("feat: payment service")
	t.Cleanup(func() { e.gantry("serve", "stop") })
}

// webhookReceiver is a real HTTP server the payment service delivers its
// webhooks to; it keeps which intents' events it accepted and how many it
// refused (it answers 500 while failing is set).
type webhookReceiver struct {
	*httptest.Server
	failing  atomic.Bool
	mu       sync.Mutex
	accepted map[string]string // intent id -> event type
	refused  int
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{accepted: map[string]string{}}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &ev)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.failing.Load() {
			w.refused++
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.accepted[ev.Data.ID] = ev.Type
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(w.Close)
	return w
}

// got reports whether the event of intent id was accepted.
func (w *webhookReceiver) got(id, event string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accepted[id] == event
}

func (w *webhookReceiver) refusals() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refused
}

// intent creates and confirms a payment intent and returns its id.
func intent(t *testing.T, url, key string) string {
	t.Helper()
	var pi struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	call(t, "POST", url+"/v1/payment_intents", `{"amount": 1099, "currency": "usd"}`, map[string]string{"Idempotency-Key": key}, http.StatusCreated, &pi)
	call(t, "POST", url+"/v1/payment_intents/"+pi.ID+"/confirm", `{"card": {"number": "4242424242424242"}}`, nil, http.StatusOK, &pi)
	if pi.Status != "succeeded" {
		t.Errorf("confirm %s: got status %q, want succeeded", pi.ID, pi.Status)
	}
	return pi.ID
}

// waitDelivered waits until the receiver accepted intent id's
// payment_intent.succeeded.
func waitDelivered(t *testing.T, recv *webhookReceiver, url, id string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !recv.got(id, "payment_intent.succeeded") {
		if time.Now().After(deadline) {
			var attempts any
			call(t, "GET", url+"/v1/payment_intents/"+id+"/delivery_attempts", "", nil, http.StatusOK, &attempts)
			t.Fatalf("no payment_intent.succeeded webhook of %s within %s; delivery attempts: %v", id, limit, attempts)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// call sends a JSON request to the payment service and decodes its JSON
// answer into out (when not nil), failing the test on a status other than
// want.
func call(t *testing.T, method, url string, body string, header map[string]string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: got %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
}

// waitAnswers polls url until it answers 200 and returns the body.
func waitAnswers(t *testing.T, url string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = resp.Status + " " + strings.TrimSpace(string(b))
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s (last: %s)", url, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDeployPaymentServicePlainProcesses deploys the payment service
// itself — the image gantry builds from examples/payment-service, with the
// example's chart and local values — as plain processes
// (GANTRY_ISOLATION=process) next to the environment's PostgreSQL, Redis
// and SQS server. Through the environment's URL: it is ready on its
// database and cache, a payment intent is created and confirmed, and its
// payment_intent.succeeded webhook, queued through SQS, reaches a
// receiver. A second payment's webhook is refused, so its retry waits in
// SQS; after `gantry serve stop` and a new serve the same revision answers
// on the same URL, the intents are still in PostgreSQL, and the retry kept
// in the SQS server's data (under the environment's service dir) is
// delivered.
func TestDeployPaymentServicePlainProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and deploys the payment service (minutes)")
	}
	t.Setenv("GANTRY_ISOLATION", "process")
	e := newEnv(t)
	paymentRepo(t, e)

	r := e.gantry("run", "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, tail(r.stdout, 60), r.stderr)
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Name != "staging" || envs[0].Current == nil {
		t.Fatalf("gantry env ls: got %+v, want staging serving", envs)
	}
	staging := envs[0]
	if got := len(staging.Instances); got != 2 {
		t.Errorf("instances: got %d, want the local values' 2 replicas", got)
	}
	for _, in := range staging.Instances {
		if in.Isolation != "process" || in.State != "ready" {
			t.Errorf("instance: got %s %s, want a ready plain process", in.Isolation, in.State)
		}
	}
	url := staging.URL

	// Ready: its readiness checks PostgreSQL and Redis.
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(waitAnswers(t, url+"/readyz", 30*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}
	if ready.Status != "ok" || ready.Checks["postgres"] != "ok" || ready.Checks["redis"] != "ok" {
		t.Errorf("GET /readyz: got %+v, want ok with postgres and redis ok", ready)
	}

	// A payment whose webhook goes through SQS to a receiver.
	recv := newWebhookReceiver(t)
	call(t, "POST", url+"/v1/webhook_endpoints", `{"url": "`+recv.URL+`/hook", "enabled_events": ["payment_intent.succeeded"]}`, nil, http.StatusCreated, nil)
	first := intent(t, url, "e2e-first")
	waitDelivered(t, recv, url, first, time.Minute)

	// A payment whose webhook the receiver refuses: the service queues its
	// retry in SQS (with a delay; it keeps no other record to retry from).
	recv.failing.Store(true)
	second := intent(t, url, "e2e-second")
	for i := 0; recv.refusals() == 0; i++ {
		if i > 300 {
			t.Fatal("the receiver was never called for the second payment")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A graceful restart of the serve process: the same revision on the
	// same URL, the intents still in PostgreSQL, and the retry still in
	// SQS' queue: once the receiver accepts, it is delivered.
	if r := e.gantry("serve", "stop"); r.code != 0 {
		t.Fatalf("gantry serve stop: exit %d %s", r.code, r.stderr)
	}
	recv.failing.Store(false)
	srv, _ := e.startServe()
	t.Cleanup(func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() })
	waitAnswers(t, url+"/readyz", 2*time.Minute)
	after := e.envs()
	if len(after) != 1 || after[0].URL != url || after[0].Current == nil || after[0].Current.Number != staging.Current.Number || after[0].Current.Digest != staging.Current.Digest {
		t.Errorf("after a restart: gantry env ls = %+v, want staging at %s serving revision %d (%s)", after, url, staging.Current.Number, staging.Current.Digest)
	}
	for _, id := range []string{first, second} {
		var again struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		call(t, "GET", url+"/v1/payment_intents/"+id, "", nil, http.StatusOK, &again)
		if again.ID != id || again.Status != "succeeded" {
			t.Errorf("after a restart: GET the intent = %+v, want %s succeeded", again, id)
		}
	}
	waitDelivered(t, recv, url, second, 2*time.Minute)
	if _, err := os.Stat(filepath.Join(e.state, "envs", "staging", "services", "sqs", "fauxqs.db")); err != nil && !kumoOnPath() {
		t.Errorf("the SQS server's data under the environment's service dir: %v", err)
	}
}

// kumoOnPath: kumo, when on PATH, is the SQS server instead of fauxqs
// and keeps its data in its own format.
func kumoOnPath() bool {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if fi, err := os.Stat(filepath.Join(dir, "kumo")); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}
