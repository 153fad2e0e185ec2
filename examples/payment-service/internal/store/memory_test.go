package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/store/storetest"
	"github.com/examplepay/payment-service/internal/webhook"
)

// The postgres package runs the same contract against a real database.
func TestMemoryContract(t *testing.T) {
	storetest.RunContract(t, store.NewMemory())
}

func TestMemoryDuplicates(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory()
	in := payment.Intent{ID: "pi_dup", Amount: 1, Currency: "usd", Status: payment.StatusRequiresConfirmation}
	if err := m.CreateIntent(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateIntent(ctx, in); err == nil {
		t.Fatal("second CreateIntent with the same ID: want error")
	}
	ep := webhook.Endpoint{ID: "we_dup", URL: "http://x", CreatedAt: time.Now()}
	if err := m.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateEndpoint(ctx, ep); err == nil {
		t.Fatal("second CreateEndpoint with the same ID: want error")
	}
	if err := m.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateStatus(ctx, "pi_dup", payment.StatusSucceeded, payment.StatusFailed, store.StatusChange{}); !errors.Is(err, payment.ErrInvalidTransition) {
		t.Fatalf("UpdateStatus(invalid transition) = %v", err)
	}
}
