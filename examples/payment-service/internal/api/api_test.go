package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/examplepay/payment-service/internal/idempotency"
	"github.com/examplepay/payment-service/internal/metrics"
	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/queue"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/webhook"
)

type env struct {
	srv   *httptest.Server
	repo  *store.Memory
	queue *queue.Memory
	deps  *Deps
}

func newEnv(t *testing.T, mod func(*Deps)) *env {
	t.Helper()
	repo := store.NewMemory()
	q := queue.NewMemory(time.Minute)
	reg := metrics.NewRegistry()
	d := &Deps{
		Repo: repo, Idempotency: idempotency.NewMemory(time.Hour), Processor: payment.FakeProcessor{},
		Events: webhook.NewDispatcher(repo, q), Metrics: metrics.NewHTTP(reg), MetricsHandler: metrics.Handler(reg),
		Ready: []Check{{Name: "memory", Ping: repo.Ping}},
		Log:   slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(d)
	}
	srv := httptest.NewServer(New(*d).Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, repo: repo, queue: q, deps: d}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errCode(t *testing.T) string {
	t.Helper()
	var e map[string]apiError
	r.decode(t, &e)
	return e["error"].Code
}

func (e *env) do(t *testing.T, method, path, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func TestPaymentFlowWithWebhook(t *testing.T) {
	e := newEnv(t, nil)

	var mu sync.Mutex
	var secret string
	var gotSig error
	var gotEvent webhook.Event
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		gotSig = webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), b, time.Now(), 5*time.Minute)
		_ = json.Unmarshal(b, &gotEvent)
	}))
	defer rcv.Close()

	// Register an endpoint for succeeded events only.
	res := e.do(t, "POST", "/v1/webhook_endpoints", `{"url":"`+rcv.URL+`/hook","enabled_events":["payment_intent.succeeded"]}`, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("create endpoint = %d %s", res.status, res.body)
	}
	var ep endpointResponse
	res.decode(t, &ep)
	if !strings.HasPrefix(ep.Secret, webhook.SecretPrefix) || !strings.HasPrefix(ep.ID, "we_") {
		t.Fatalf("endpoint = %+v", ep)
	}
	mu.Lock()
	secret = ep.Secret
	mu.Unlock()

	res = e.do(t, "POST", "/v1/payment_intents", `{"amount":1099,"currency":"usd"}`, map[string]string{"Idempotency-Key": "k-1"})
	if res.status != http.StatusCreated {
		t.Fatalf("create intent = %d %s", res.status, res.body)
	}
	var in payment.Intent
	res.decode(t, &in)
	if in.Status != payment.StatusRequiresConfirmation || in.Amount != 1099 || !strings.HasPrefix(in.ID, "pi_") {
		t.Fatalf("intent = %+v", in)
	}
	if e.queue.Len() != 0 {
		t.Fatalf("created event queued for an endpoint that does not want it")
	}

	// The same key and body replays the stored response.
	replay := e.do(t, "POST", "/v1/payment_intents", `{"amount":1099,"currency":"usd"}`, map[string]string{"Idempotency-Key": "k-1"})
	if replay.status != http.StatusCreated || replay.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(replay.body, res.body) {
		t.Fatalf("replay = %d %q %s, want the first response", replay.status, replay.header.Get("Idempotent-Replayed"), replay.body)
	}
	// Same key, other body.
	if r := e.do(t, "POST", "/v1/payment_intents", `{"amount":5,"currency":"usd"}`, map[string]string{"Idempotency-Key": "k-1"}); r.status != http.StatusUnprocessableEntity || r.errCode(t) != "idempotency_key_reused" {
		t.Fatalf("reused key = %d %s", r.status, r.body)
	}

	res = e.do(t, "GET", "/v1/payment_intents/"+in.ID, "", nil)
	if res.status != http.StatusOK {
		t.Fatalf("get = %d", res.status)
	}

	res = e.do(t, "POST", "/v1/payment_intents/"+in.ID+"/confirm", `{"card":{"number":"4242 4242 4242 4242"}}`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("confirm = %d %s", res.status, res.body)
	}
	res.decode(t, &in)
	if in.Status != payment.StatusSucceeded || in.CardLast4 != "4242" {
		t.Fatalf("confirmed intent = %+v", in)
	}
	if r := e.do(t, "POST", "/v1/payment_intents/"+in.ID+"/confirm", `{"card":{"number":"4242424242424242"}}`, nil); r.status != http.StatusConflict || r.errCode(t) != "payment_intent_unexpected_state" {
		t.Fatalf("second confirm = %d %s", r.status, r.body)
	}

	// The succeeded event is queued; deliver it with a real worker to the
	// receiver, which checks the signature.
	msgs, err := e.queue.Receive(context.Background(), 10, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("queued jobs = %v, %v; want 1", msgs, err)
	}
	w := webhook.NewWorker(e.queue, e.repo, e.repo, slog.New(slog.DiscardHandler))
	if err := w.Handle(context.Background(), msgs[0]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if gotSig != nil || gotEvent.Type != webhook.EventIntentSucceeded {
		t.Fatalf("receiver got event %+v, signature error %v", gotEvent, gotSig)
	}
	mu.Unlock()

	res = e.do(t, "GET", "/v1/payment_intents/"+in.ID+"/delivery_attempts", "", nil)
	var atts struct{ Data []webhook.Attempt }
	res.decode(t, &atts)
	if res.status != http.StatusOK || len(atts.Data) != 1 || !atts.Data[0].Succeeded || atts.Data[0].StatusCode != http.StatusOK || atts.Data[0].EventType != webhook.EventIntentSucceeded {
		t.Fatalf("delivery attempts = %d %s", res.status, res.body)
	}

	metricsBody := e.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`http_request_duration_seconds_count{code="201",method="POST",route="/v1/payment_intents"} 2`,
		`http_request_duration_seconds_count{code="200",method="POST",route="/v1/payment_intents/{id}/confirm"} 1`,
	} {
		if !strings.Contains(string(metricsBody.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestConfirmOutcomes(t *testing.T) {
	tests := []struct {
		card       string
		wantStatus int
		wantIntent payment.Status
		wantCode   string
	}{
		{payment.CardDeclined, http.StatusOK, payment.StatusFailed, "card_declined"},
		{payment.CardInsufficientFunds, http.StatusOK, payment.StatusFailed, "insufficient_funds"},
		{payment.CardProcessorDown, http.StatusBadGateway, payment.StatusRequiresConfirmation, ""},
	}
	for _, tt := range tests {
		t.Run(tt.card, func(t *testing.T) {
			e := newEnv(t, nil)
			if r := e.do(t, "POST", "/v1/webhook_endpoints", `{"url":"https://example.invalid/hook"}`, nil); r.status != http.StatusCreated {
				t.Fatalf("create endpoint = %d", r.status)
			}
			var in payment.Intent
			e.do(t, "POST", "/v1/payment_intents", `{"amount":500,"currency":"eur"}`, nil).decode(t, &in)
			res := e.do(t, "POST", "/v1/payment_intents/"+in.ID+"/confirm", `{"card":{"number":"`+tt.card+`"}}`, map[string]string{"Idempotency-Key": "c-" + in.ID})
			if res.status != tt.wantStatus {
				t.Fatalf("confirm = %d %s, want %d", res.status, res.body, tt.wantStatus)
			}
			got, _ := e.repo.GetIntent(context.Background(), in.ID)
			if got.Status != tt.wantIntent || got.FailureCode != tt.wantCode {
				t.Fatalf("intent = %+v, want %s %q", got, tt.wantIntent, tt.wantCode)
			}
			if res.status == http.StatusBadGateway {
				// A 5xx is not stored: the retry with the same key runs again.
				if r := e.do(t, "POST", "/v1/payment_intents/"+in.ID+"/confirm", `{"card":{"number":"`+tt.card+`"}}`, map[string]string{"Idempotency-Key": "c-" + in.ID}); r.status != http.StatusBadGateway || r.header.Get("Idempotent-Replayed") != "" {
					t.Fatalf("retry after 502 = %d replayed=%q", r.status, r.header.Get("Idempotent-Replayed"))
				}
			}
			// created + failed events for the "*" endpoint, none for a 502.
			wantJobs := 2
			if tt.wantIntent == payment.StatusRequiresConfirmation {
				wantJobs = 1
			}
			if e.queue.Len() != wantJobs {
				t.Fatalf("queued %d jobs, want %d", e.queue.Len(), wantJobs)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil)
	var in payment.Intent
	e.do(t, "POST", "/v1/payment_intents", `{"amount":100,"currency":"usd"}`, nil).decode(t, &in)
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
		wantCode                 string
	}{
		{"not json", "POST", "/v1/payment_intents", `{`, nil, 400, "invalid_json"},
		{"unknown field", "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd","tip":5}`, nil, 400, "invalid_json"},
		{"two values", "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"} {}`, nil, 400, "invalid_json"},
		{"bad amount", "POST", "/v1/payment_intents", `{"amount":0,"currency":"usd"}`, nil, 400, "parameter_invalid"},
		{"bad currency", "POST", "/v1/payment_intents", `{"amount":10,"currency":"btc"}`, nil, 400, "parameter_invalid"},
		{"missing intent", "GET", "/v1/payment_intents/pi_nope", "", nil, 404, "resource_missing"},
		{"missing intent attempts", "GET", "/v1/payment_intents/pi_nope/delivery_attempts", "", nil, 404, "resource_missing"},
		{"confirm missing", "POST", "/v1/payment_intents/pi_nope/confirm", `{"card":{"number":"4242424242424242"}}`, nil, 404, "resource_missing"},
		{"confirm bad card", "POST", "/v1/payment_intents/" + in.ID + "/confirm", `{"card":{"number":"4242424242424241"}}`, nil, 400, "parameter_invalid"},
		{"confirm bad json", "POST", "/v1/payment_intents/" + in.ID + "/confirm", `[]`, nil, 400, "invalid_json"},
		{"endpoint bad url", "POST", "/v1/webhook_endpoints", `{"url":"ftp://x"}`, nil, 400, "parameter_invalid"},
		{"endpoint bad event", "POST", "/v1/webhook_endpoints", `{"url":"http://x","enabled_events":["charge.refunded"]}`, nil, 400, "parameter_invalid"},
		{"endpoint bad json", "POST", "/v1/webhook_endpoints", `nope`, nil, 400, "invalid_json"},
		{"long key", "POST", "/v1/payment_intents", `{}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "idempotency_key_invalid"},
		{"huge body", "POST", "/v1/payment_intents", strings.Repeat(" ", maxBody+1), map[string]string{"Idempotency-Key": "big"}, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.method, tt.path, tt.body, tt.header)
			if res.status != tt.wantStatus || res.errCode(t) != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, res.status, res.body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if r := e.do(t, "DELETE", "/v1/payment_intents", "", nil); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE = %d, want 405", r.status)
	}
}

// stubIdem answers Begin with fixed values and fails to store, to reach
// the branches a single request cannot.
type stubIdem struct {
	idempotency.Store
	rec      idempotency.Record
	claimed  bool
	beginErr error
}

func (s *stubIdem) Begin(context.Context, string, string) (idempotency.Record, bool, error) {
	return s.rec, s.claimed, s.beginErr
}
func (s *stubIdem) Complete(context.Context, string, idempotency.Record) error {
	return errors.New("redis down")
}
func (s *stubIdem) Release(context.Context, string) error { return errors.New("redis down") }

func TestIdempotencyEdges(t *testing.T) {
	t.Run("key reused", func(t *testing.T) {
		e := newEnv(t, func(d *Deps) { d.Idempotency = &stubIdem{rec: idempotency.Record{Pending: true}} })
		res := e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, map[string]string{"Idempotency-Key": "x"})
		if res.status != http.StatusUnprocessableEntity {
			t.Fatalf("status = %d", res.status)
		}
	})
	t.Run("pending same request", func(t *testing.T) {
		mem := idempotency.NewMemory(time.Hour)
		e := newEnv(t, func(d *Deps) { d.Idempotency = mem })
		// Claim the key the way a concurrent first request would.
		first := e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, map[string]string{"Idempotency-Key": "p"})
		if first.status != http.StatusCreated {
			t.Fatal(first.status)
		}
		var rec idempotency.Record
		rec, _, _ = mem.Begin(context.Background(), "p", "")
		rec.Pending = true
		_, _, _ = mem.Begin(context.Background(), "q", rec.Fingerprint) // q is now pending with p's fingerprint
		res := e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, map[string]string{"Idempotency-Key": "q"})
		if res.status != http.StatusConflict || res.errCode(t) != "request_in_progress" {
			t.Fatalf("pending = %d %s", res.status, res.body)
		}
	})
	t.Run("store down", func(t *testing.T) {
		e := newEnv(t, func(d *Deps) { d.Idempotency = &stubIdem{beginErr: errors.New("down")} })
		res := e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, map[string]string{"Idempotency-Key": "x"})
		if res.status != http.StatusServiceUnavailable || res.errCode(t) != "idempotency_unavailable" {
			t.Fatalf("status = %d %s", res.status, res.body)
		}
	})
	t.Run("complete fails but response is sent", func(t *testing.T) {
		e := newEnv(t, func(d *Deps) { d.Idempotency = &stubIdem{claimed: true} })
		if res := e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, map[string]string{"Idempotency-Key": "x"}); res.status != http.StatusCreated {
			t.Fatalf("status = %d", res.status)
		}
		if res := e.do(t, "POST", "/v1/payment_intents/pi_x/confirm", `{"card":{"number":"4000000000000119"}}`, map[string]string{"Idempotency-Key": "y"}); res.status != http.StatusNotFound {
			t.Fatalf("status = %d", res.status)
		}
	})
}

type failingRepo struct {
	*store.Memory
	err error
}

func (f failingRepo) CreateIntent(context.Context, payment.Intent) error     { return f.err }
func (f failingRepo) CreateEndpoint(context.Context, webhook.Endpoint) error { return f.err }
func (f failingRepo) ListAttempts(context.Context, string) ([]webhook.Attempt, error) {
	return nil, f.err
}
func (f failingRepo) Ping(context.Context) error { return f.err }

type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, webhook.Event) (int, error) {
	return 0, errors.New("queue down")
}

type panicProcessor struct{}

func (panicProcessor) Process(context.Context, payment.Intent, payment.Card) (payment.Outcome, error) {
	panic("processor bug")
}

type brokenProcessor struct{}

func (brokenProcessor) Process(context.Context, payment.Intent, payment.Card) (payment.Outcome, error) {
	return payment.Outcome{}, errors.New("tls handshake")
}

func TestBackendFailures(t *testing.T) {
	down := errors.New("db down")
	var repo failingRepo
	e := newEnv(t, func(d *Deps) {
		repo = failingRepo{Memory: d.Repo.(*store.Memory), err: down}
		d.Repo = repo
		d.Events = failingPublisher{}
		d.Ready = []Check{{Name: "postgres", Ping: repo.Ping}, {Name: "redis", Ping: func(context.Context) error { return nil }}}
	})
	if r := e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, nil); r.status != 500 || r.errCode(t) != "internal_error" {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/v1/webhook_endpoints", `{"url":"http://x"}`, nil); r.status != 500 {
		t.Fatalf("create endpoint = %d", r.status)
	}
	in := payment.Intent{ID: "pi_f", Amount: 1, Currency: "usd", Status: payment.StatusRequiresConfirmation}
	_ = repo.Memory.CreateIntent(context.Background(), in)
	if r := e.do(t, "GET", "/v1/payment_intents/pi_f/delivery_attempts", "", nil); r.status != 500 {
		t.Fatalf("attempts = %d", r.status)
	}
	// Publishing fails after the state change: the confirm still succeeds.
	if r := e.do(t, "POST", "/v1/payment_intents/pi_f/confirm", `{"card":{"number":"4242424242424242"}}`, nil); r.status != 200 {
		t.Fatalf("confirm = %d %s", r.status, r.body)
	}
	r := e.do(t, "GET", "/readyz", "", nil)
	var ready struct {
		Status string
		Checks map[string]string
	}
	r.decode(t, &ready)
	if r.status != 503 || ready.Status != "unavailable" || ready.Checks["postgres"] != "unavailable" || ready.Checks["redis"] != "ok" {
		t.Fatalf("readyz = %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "db down") {
		t.Fatal("readyz leaks backend error text")
	}
}

func TestProcessorFailures(t *testing.T) {
	for _, p := range []payment.Processor{panicProcessor{}, brokenProcessor{}} {
		e := newEnv(t, func(d *Deps) { d.Processor = p })
		var in payment.Intent
		e.do(t, "POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, nil).decode(t, &in)
		r := e.do(t, "POST", "/v1/payment_intents/"+in.ID+"/confirm", `{"card":{"number":"4242424242424242"}}`, nil)
		if r.status != 500 && r.status != 502 {
			t.Fatalf("%T: confirm = %d %s", p, r.status, r.body)
		}
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, nil)
	for _, m := range []string{"GET", "POST"} {
		if r := e.do(t, m, "/healthz", "{}", nil); r.status != 200 {
			t.Fatalf("%s /healthz = %d", m, r.status)
		}
	}
	if r := e.do(t, "GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("/readyz = %d %s", r.status, r.body)
	}
}

// TestFaultInjection: FAULT_LATENCY delays and FAULT_ERROR_RATE fails the
// API and /healthz, says so in a header and shows in the request-duration
// histogram the rollout's analysis reads; /readyz stays untouched so a
// faulty release still becomes ready.
func TestFaultInjection(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		wantHeader string
	}{
		{name: "none", wantStatus: 200},
		{name: "latency", fault: Fault{Latency: 60 * time.Millisecond}, wantStatus: 200, wantHeader: "latency=60ms"},
		{name: "errors", fault: Fault{ErrorRate: 1}, wantStatus: 500, wantHeader: "error"},
		{name: "both", fault: Fault{Latency: 60 * time.Millisecond, ErrorRate: 1}, wantStatus: 500, wantHeader: "latency=60ms; error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(d *Deps) { d.Fault = tt.fault })
			for _, path := range []string{"/healthz", "/v1/payment_intents/pi_missing"} {
				start := time.Now()
				r := e.do(t, "GET", path, "", nil)
				took := time.Since(start)
				if tt.wantStatus == 200 && path != "/healthz" {
					if r.status != 404 {
						t.Errorf("GET %s: got %d, want 404 (no fault error)", path, r.status)
					}
				} else if r.status != tt.wantStatus {
					t.Errorf("GET %s: got %d, want %d", path, r.status, tt.wantStatus)
				}
				if got := r.header.Get(FaultHeader); got != tt.wantHeader {
					t.Errorf("GET %s: %s %q, want %q", path, FaultHeader, got, tt.wantHeader)
				}
				if took < tt.fault.Latency {
					t.Errorf("GET %s took %v, want at least the injected %v", path, took, tt.fault.Latency)
				}
			}
			if r := e.do(t, "GET", "/readyz", "", nil); r.status != 200 || r.header.Get(FaultHeader) != "" {
				t.Errorf("/readyz: got %d with %s %q, want 200 without a fault", r.status, FaultHeader, r.header.Get(FaultHeader))
			}
			m := e.do(t, "GET", "/metrics", "", nil)
			if tt.wantStatus == 500 && !strings.Contains(string(m.body), `http_request_duration_seconds_count{code="500",method="GET",route="/healthz"} 1`) {
				t.Errorf("metrics lack the injected 500 of /healthz:\n%s", m.body)
			}
		})
	}
}

// TestFailNextRate: the injected failures are the rate's share of any
// run of requests, spread evenly.
func TestFailNextRate(t *testing.T) {
	for _, rate := range []float64{0, 0.001, 0.1, 0.5, 1} {
		failed := 0
		for n := uint64(1); n <= 1000; n++ {
			if failNext(n, rate) {
				failed++
			}
		}
		if want := int(1000 * rate); failed != want {
			t.Errorf("rate %v: %d of 1000 failed, want %d", rate, failed, want)
		}
	}
}
