//go:build integration

// Package integration runs the whole service against real PostgreSQL,
// Redis and an SQS-compatible server (see scripts/integration-env.sh).
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"

	"github.com/examplepay/payment-service/internal/app"
	"github.com/examplepay/payment-service/internal/config"
	"github.com/examplepay/payment-service/internal/webhook"
)

func requireEnv(t *testing.T) {
	t.Helper()
	var missing []string
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "SQS_ENDPOINT"} {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Skipf("%s not set: skipping the end-to-end integration test (eval \"$(scripts/integration-env.sh start)\" starts PostgreSQL, Redis and SQS)", strings.Join(missing, ", "))
	}
}

// freshDatabase creates an empty database next to DATABASE_URL's, so that
// endpoints left by other tests receive no events from this one.
func freshDatabase(ctx context.Context, t *testing.T) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	name := fmt.Sprintf("flow_it_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	cfg := conn.Config()
	u := &url.URL{Scheme: "postgres", Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + name, RawQuery: "sslmode=disable"}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

// freshQueue creates a queue of its own so that earlier runs cannot leave
// messages behind.
func freshQueue(ctx context.Context, t *testing.T) string {
	t.Helper()
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(os.Getenv("SQS_ENDPOINT")) })
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("flow-it-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	return aws.ToString(out.QueueUrl)
}

// receiver records signed deliveries; it fails the first failFirst
// deliveries of every event.
type receiver struct {
	srv       *httptest.Server
	failFirst int

	mu      sync.Mutex
	secret  string
	seen    map[string]int // deliveries per event ID
	good    []webhook.Event
	badSigs int
}

func newReceiver(failFirst int) *receiver {
	r := &receiver{failFirst: failFirst, seen: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.secret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			r.badSigs++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		id := req.Header.Get("Payment-Event-Id")
		r.seen[id]++
		if r.seen[id] <= r.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		r.good = append(r.good, ev)
	}))
	return r
}

func (r *receiver) events() []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Event(nil), r.good...)
}

type client struct {
	t    *testing.T
	base string
}

func (c client) call(method, path, body string, header map[string]string, out any) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewBufferString(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header, b
}

func TestPaymentFlow(t *testing.T) {
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	env := map[string]string{
		"ADDR": "127.0.0.1:0", "DATABASE_URL": freshDatabase(ctx, t), "REDIS_URL": os.Getenv("REDIS_URL"),
		"SQS_ENDPOINT": os.Getenv("SQS_ENDPOINT"), "SQS_QUEUE_URL": freshQueue(ctx, t), "AWS_REGION": "us-east-1",
		"WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_BACKOFF_BASE": "200ms", "WEBHOOK_BACKOFF_MAX": "1s",
		"QUEUE_POLL_WAIT": "1s", "QUEUE_VISIBILITY_TIMEOUT": "10s", "SHUTDOWN_TIMEOUT": "10s",
	}
	if r := os.Getenv("AWS_REGION"); r != "" {
		env["AWS_REGION"] = r
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	backends, err := app.ExternalBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, log, backends)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()
	c := client{t: t, base: "http://" + a.Addr()}

	if code, _, body := c.call("GET", "/readyz", "", nil, nil); code != 200 || !strings.Contains(string(body), `"postgres":"ok"`) || !strings.Contains(string(body), `"redis":"ok"`) {
		t.Fatalf("readyz = %d %s", code, body)
	}

	good, flaky := newReceiver(0), newReceiver(2)
	ids := map[*receiver]string{}
	defer good.srv.Close()
	defer flaky.srv.Close()
	for _, r := range []struct {
		rcv    *receiver
		events string
	}{{good, `["payment_intent.succeeded"]`}, {flaky, `["*"]`}} {
		var ep struct{ ID, Secret string }
		if code, _, b := c.call("POST", "/v1/webhook_endpoints", `{"url":"`+r.rcv.srv.URL+`","enabled_events":`+r.events+`}`, nil, &ep); code != 201 {
			t.Fatalf("create endpoint = %d %s", code, b)
		}
		ids[r.rcv] = ep.ID
		r.rcv.mu.Lock()
		r.rcv.secret = ep.Secret
		r.rcv.mu.Unlock()
	}

	// Create with an Idempotency-Key, then replay it.
	key := fmt.Sprintf("it-%d", time.Now().UnixNano())
	var intent struct{ ID, Status string }
	code, _, first := c.call("POST", "/v1/payment_intents", `{"amount":4200,"currency":"usd"}`, map[string]string{"Idempotency-Key": key}, &intent)
	if code != 201 || intent.Status != "requires_confirmation" {
		t.Fatalf("create = %d %s", code, first)
	}
	code, hdr, replay := c.call("POST", "/v1/payment_intents", `{"amount":4200,"currency":"usd"}`, map[string]string{"Idempotency-Key": key}, nil)
	if code != 201 || hdr.Get("Idempotent-Replayed") != "true" || !bytes.Equal(first, replay) {
		t.Fatalf("replay = %d replayed=%q %s, want the first response %s", code, hdr.Get("Idempotent-Replayed"), replay, first)
	}
	if code, _, b := c.call("POST", "/v1/payment_intents", `{"amount":1,"currency":"usd"}`, map[string]string{"Idempotency-Key": key}, nil); code != 422 {
		t.Fatalf("key reuse = %d %s", code, b)
	}

	// Confirm: requires_confirmation -> processing -> succeeded.
	if code, _, b := c.call("POST", "/v1/payment_intents/"+intent.ID+"/confirm", `{"card":{"number":"4242424242424242"}}`, nil, &intent); code != 200 || intent.Status != "succeeded" {
		t.Fatalf("confirm = %d %s", code, b)
	}
	if code, _, b := c.call("GET", "/v1/payment_intents/"+intent.ID, "", nil, &intent); code != 200 || intent.Status != "succeeded" {
		t.Fatalf("get = %d %s", code, b)
	}

	// The good endpoint gets payment_intent.succeeded with a valid signature.
	waitFor(t, 30*time.Second, "signed payment_intent.succeeded at the good endpoint", func() bool {
		for _, ev := range good.events() {
			if ev.Type == webhook.EventIntentSucceeded {
				return true
			}
		}
		return false
	})

	// The flaky endpoint fails twice per event; the third attempt succeeds.
	type attempt struct {
		EndpointID string `json:"endpoint_id"`
		EventType  string `json:"event_type"`
		Attempt    int
		StatusCode int `json:"status_code"`
		Succeeded  bool
		NextRetry  *time.Time `json:"next_retry_at"`
	}
	var atts struct{ Data []attempt }
	waitFor(t, 45*time.Second, "three attempts of payment_intent.succeeded at the flaky endpoint", func() bool {
		c.call("GET", "/v1/payment_intents/"+intent.ID+"/delivery_attempts", "", nil, &atts)
		n := 0
		for _, a := range atts.Data {
			if a.EndpointID != ids[flaky] {
				continue
			}
			if a.EventType == webhook.EventIntentSucceeded && !a.Succeeded {
				n++
			}
			if a.EventType == webhook.EventIntentSucceeded && a.Succeeded && a.Attempt == 3 {
				n += 10
			}
		}
		return n >= 12
	})
	for _, a := range atts.Data {
		if a.Succeeded && a.StatusCode != http.StatusOK {
			t.Errorf("successful attempt with status %d: %+v", a.StatusCode, a)
		}
		if !a.Succeeded && (a.StatusCode != http.StatusInternalServerError || a.NextRetry == nil) {
			t.Errorf("failed attempt without retry schedule: %+v", a)
		}
	}
	for _, r := range []*receiver{good, flaky} {
		r.mu.Lock()
		if r.badSigs != 0 {
			t.Errorf("%d deliveries with an invalid signature", r.badSigs)
		}
		r.mu.Unlock()
	}

	// pgxpool statistics are exported.
	_, _, metrics := c.call("GET", "/metrics", "", nil, nil)
	for _, want := range []string{"pgxpool_max_conns ", "pgxpool_acquire_count_total ", `http_request_duration_seconds_count{code="201",method="POST",route="/v1/payment_intents"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
