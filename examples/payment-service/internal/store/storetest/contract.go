// Package storetest holds the behaviour every store.Repository must have.
package storetest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/webhook"
)

// RunContract checks the behaviour every Repository must have. Each call
// uses fresh random IDs, so it can run against a shared database.
func RunContract(t *testing.T, r store.Repository) {
	t.Helper()
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 10)
	now := time.Now().UTC().Truncate(time.Microsecond)

	in := payment.Intent{ID: "pi_c" + suffix, Amount: 1099, Currency: "usd", Status: payment.StatusRequiresConfirmation, CreatedAt: now, UpdatedAt: now}
	if err := r.CreateIntent(ctx, in); err != nil {
		t.Fatalf("CreateIntent() = %v", err)
	}
	got, err := r.GetIntent(ctx, in.ID)
	if err != nil {
		t.Fatalf("GetIntent() = %v", err)
	}
	if got.ID != in.ID || got.Amount != in.Amount || got.Currency != in.Currency || got.Status != in.Status || !got.CreatedAt.Equal(in.CreatedAt) {
		t.Fatalf("GetIntent() = %+v, want %+v", got, in)
	}
	if _, err := r.GetIntent(ctx, "pi_missing"+suffix); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIntent(missing) = %v, want ErrNotFound", err)
	}
	if _, err := r.UpdateStatus(ctx, "pi_missing"+suffix, payment.StatusRequiresConfirmation, payment.StatusProcessing, store.StatusChange{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateStatus(missing) = %v, want ErrNotFound", err)
	}
	up, err := r.UpdateStatus(ctx, in.ID, payment.StatusRequiresConfirmation, payment.StatusProcessing, store.StatusChange{CardLast4: "4242"})
	if err != nil || up.Status != payment.StatusProcessing || up.CardLast4 != "4242" {
		t.Fatalf("UpdateStatus(-> processing) = %+v, %v", up, err)
	}
	if _, err := r.UpdateStatus(ctx, in.ID, payment.StatusRequiresConfirmation, payment.StatusProcessing, store.StatusChange{}); !errors.Is(err, store.ErrStatusConflict) {
		t.Fatalf("second UpdateStatus(-> processing) = %v, want ErrStatusConflict", err)
	}
	up, err = r.UpdateStatus(ctx, in.ID, payment.StatusProcessing, payment.StatusFailed, store.StatusChange{FailureCode: "card_declined"})
	if err != nil || up.Status != payment.StatusFailed || up.FailureCode != "card_declined" || up.CardLast4 != "4242" {
		t.Fatalf("UpdateStatus(-> failed) = %+v, %v", up, err)
	}

	ep1 := webhook.Endpoint{ID: "we_a" + suffix, URL: "http://127.0.0.1:9/a", Secret: "whsec_a", EnabledEvents: []string{"*"}, CreatedAt: now}
	ep2 := webhook.Endpoint{ID: "we_b" + suffix, URL: "http://127.0.0.1:9/b", Secret: "whsec_b", EnabledEvents: []string{webhook.EventIntentSucceeded}, CreatedAt: now.Add(time.Second)}
	for _, ep := range []webhook.Endpoint{ep1, ep2} {
		if err := r.CreateEndpoint(ctx, ep); err != nil {
			t.Fatalf("CreateEndpoint() = %v", err)
		}
	}
	gotEp, err := r.GetEndpoint(ctx, ep2.ID)
	if err != nil || gotEp.URL != ep2.URL || gotEp.Secret != ep2.Secret || len(gotEp.EnabledEvents) != 1 || gotEp.EnabledEvents[0] != webhook.EventIntentSucceeded {
		t.Fatalf("GetEndpoint() = %+v, %v", gotEp, err)
	}
	if _, err := r.GetEndpoint(ctx, "we_missing"+suffix); !errors.Is(err, webhook.ErrEndpointNotFound) {
		t.Fatalf("GetEndpoint(missing) = %v, want ErrEndpointNotFound", err)
	}
	list, err := r.ListEndpoints(ctx)
	if err != nil {
		t.Fatalf("ListEndpoints() = %v", err)
	}
	idx := map[string]int{}
	for i, ep := range list {
		idx[ep.ID] = i
	}
	i1, ok1 := idx[ep1.ID]
	i2, ok2 := idx[ep2.ID]
	if !ok1 || !ok2 || i1 > i2 {
		t.Fatalf("ListEndpoints() misses or misorders the new endpoints: %v", idx)
	}

	next := now.Add(time.Minute)
	atts := []webhook.Attempt{
		{ID: "whatt_1" + suffix, EventID: "evt_" + suffix, EventType: webhook.EventIntentFailed, EndpointID: ep1.ID, IntentID: in.ID, Attempt: 1, StatusCode: 500, Error: "endpoint answered 500", DurationMS: 3, CreatedAt: now, NextRetryAt: &next},
		{ID: "whatt_2" + suffix, EventID: "evt_" + suffix, EventType: webhook.EventIntentFailed, EndpointID: ep1.ID, IntentID: in.ID, Attempt: 2, StatusCode: 200, Succeeded: true, DurationMS: 1, CreatedAt: now.Add(2 * time.Second)},
	}
	for _, a := range atts {
		if err := r.RecordAttempt(ctx, a); err != nil {
			t.Fatalf("RecordAttempt() = %v", err)
		}
	}
	gotAtts, err := r.ListAttempts(ctx, in.ID)
	if err != nil || len(gotAtts) != 2 {
		t.Fatalf("ListAttempts() = %+v, %v; want 2", gotAtts, err)
	}
	if a := gotAtts[0]; a.Attempt != 1 || a.StatusCode != http.StatusInternalServerError || a.Succeeded || a.NextRetryAt == nil || !a.NextRetryAt.Equal(next) || a.Error == "" {
		t.Fatalf("first attempt = %+v", a)
	}
	if a := gotAtts[1]; a.Attempt != 2 || !a.Succeeded || a.NextRetryAt != nil || a.EventType != webhook.EventIntentFailed {
		t.Fatalf("second attempt = %+v", a)
	}
	none, err := r.ListAttempts(ctx, "pi_none"+suffix)
	if err != nil || none == nil || len(none) != 0 {
		t.Fatalf("ListAttempts(none) = %#v, %v; want an empty, non-nil list", none, err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
}
