package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/examplepay/payment-service/internal/config"
	"github.com/examplepay/payment-service/internal/webhook"
)

func memConfig(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"STORAGE": "memory", "ADDR": "127.0.0.1:0", "QUEUE_POLL_WAIT": "50ms", "WEBHOOK_BACKOFF_BASE": "10ms", "SHUTDOWN_TIMEOUT": "5s"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func post(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func field(t *testing.T, js, name string) string {
	t.Helper()
	i := strings.Index(js, `"`+name+`":"`)
	if i < 0 {
		t.Fatalf("no %s in %s", name, js)
	}
	rest := js[i+len(name)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestRunMemoryEndToEnd starts the whole service in memory mode, pays an
// intent, waits for the signed webhook and shuts down gracefully.
func TestRunMemoryEndToEnd(t *testing.T) {
	cfg := memConfig(t)
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), MemoryBackends(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	base := "http://" + a.Addr()

	var mu sync.Mutex
	var secret string
	got := make(chan error, 4)
	calls := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 { // first delivery fails: the worker must retry
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got <- webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), b, time.Now(), time.Minute)
	}))
	defer rcv.Close()

	ep := post(t, base+"/v1/webhook_endpoints", `{"url":"`+rcv.URL+`","enabled_events":["payment_intent.succeeded"]}`)
	mu.Lock()
	secret = field(t, ep, "secret")
	mu.Unlock()
	id := field(t, post(t, base+"/v1/payment_intents", `{"amount":2000,"currency":"gbp"}`), "id")
	if s := field(t, post(t, base+"/v1/payment_intents/"+id+"/confirm", `{"card":{"number":"4242424242424242"}}`), "status"); s != "succeeded" {
		t.Fatalf("status = %s", s)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("webhook signature: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivered within 20s")
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(b), `http_request_duration_seconds_count{code="201",method="POST",route="/v1/payment_intents"} 1`) {
		t.Fatalf("metrics lack the request histogram:\n%s", b)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil { //nolint:bodyclose // expecting a refused connection, so no body
		t.Fatal("server still answers after shutdown")
	}
}

func TestNewListenError(t *testing.T) {
	cfg := memConfig(t)
	cfg.Addr = "256.0.0.1:1"
	if _, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), MemoryBackends(cfg)); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("New() = %v, want listen error", err)
	}
}

func TestExternalBackendsReportsUnreachableDatabase(t *testing.T) {
	cfg := memConfig(t)
	cfg.DatabaseURL = "postgres://u:topsecret@127.0.0.1:1/db?connect_timeout=1"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := ExternalBackends(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1/db") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("ExternalBackends() = %v, want an error naming the host but not the password", err)
	}
	cfg.DatabaseURL = "postgres://u:topsecret@%zz"
	if _, err := ExternalBackends(ctx, cfg); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("ExternalBackends(bad URL) = %v", err)
	}
}
