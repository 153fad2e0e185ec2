package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/examplepay/payment-service/internal/idempotency"
	"github.com/examplepay/payment-service/internal/metrics"
	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/queue"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/webhook"
)

// BenchmarkCreateAndConfirm measures the handler cost of one create plus
// one confirm on the in-memory backends (no network).
func BenchmarkCreateAndConfirm(b *testing.B) {
	repo := store.NewMemory()
	reg := metrics.NewRegistry()
	h := New(Deps{
		Repo: repo, Idempotency: idempotency.NewMemory(time.Hour), Processor: payment.FakeProcessor{},
		Events: webhook.NewDispatcher(repo, queue.NewMemory(time.Minute)), Metrics: metrics.NewHTTP(reg),
		Log: slog.New(slog.DiscardHandler),
	}).Handler()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/payment_intents", strings.NewReader(`{"amount":1099,"currency":"usd"}`)))
		if rec.Code != http.StatusCreated {
			b.Fatal(rec.Code)
		}
		body := rec.Body.String()
		id := body[strings.Index(body, `"id":"`)+6:]
		id = id[:strings.IndexByte(id, '"')]
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/payment_intents/"+id+"/confirm", strings.NewReader(`{"card":{"number":"4242424242424242"}}`)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
