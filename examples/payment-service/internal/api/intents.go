package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/webhook"
)

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return prefix + "_" + hex.EncodeToString(b)
}

type createIntentRequest struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func (s *Server) createIntent(w http.ResponseWriter, r *http.Request) {
	var req createIntentRequest
	if !decode(w, r, &req) {
		return
	}
	if s.validationError(w, payment.Validate(req.Amount, req.Currency)) {
		return
	}
	now := s.now().UTC()
	in := payment.Intent{ID: newID("pi"), Amount: req.Amount, Currency: req.Currency, Status: payment.StatusRequiresConfirmation, CreatedAt: now, UpdatedAt: now}
	if err := s.d.Repo.CreateIntent(r.Context(), in); err != nil {
		s.internalError(w, r, "create payment intent", err)
		return
	}
	s.publish(r.Context(), webhook.EventIntentCreated, in)
	writeJSON(w, http.StatusCreated, in)
}

func (s *Server) getIntent(w http.ResponseWriter, r *http.Request) {
	in, err := s.d.Repo.GetIntent(r.Context(), r.PathValue("id"))
	if err != nil {
		s.errorForStore(w, r, "get payment intent", err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

type confirmRequest struct {
	Card payment.Card `json:"card"`
}

// confirmIntent runs requires_confirmation -> processing -> succeeded or
// failed. A processor that cannot decide puts the intent back to
// requires_confirmation and answers 502, so the client may retry.
func (s *Server) confirmIntent(w http.ResponseWriter, r *http.Request) {
	var req confirmRequest
	if !decode(w, r, &req) {
		return
	}
	if s.validationError(w, payment.ValidateCard(req.Card)) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	in, err := s.d.Repo.GetIntent(ctx, id)
	if err != nil {
		s.errorForStore(w, r, "get payment intent", err)
		return
	}
	if in.Status != payment.StatusRequiresConfirmation {
		writeError(w, http.StatusConflict, "invalid_request_error", "payment_intent_unexpected_state", "",
			"payment intent "+id+" is "+string(in.Status)+"; only an intent that requires_confirmation can be confirmed")
		return
	}
	in, err = s.d.Repo.UpdateStatus(ctx, id, payment.StatusRequiresConfirmation, payment.StatusProcessing, store.StatusChange{CardLast4: req.Card.Last4()})
	if err != nil {
		s.errorForStore(w, r, "mark payment intent processing", err)
		return
	}
	outcome, perr := s.d.Processor.Process(ctx, in, req.Card)
	// From here on, finish the state change even if the client goes away.
	ctx = context.WithoutCancel(ctx)
	if perr != nil {
		if _, err := s.d.Repo.UpdateStatus(ctx, id, payment.StatusProcessing, payment.StatusRequiresConfirmation, store.StatusChange{}); err != nil {
			s.d.Log.ErrorContext(ctx, "revert payment intent after processor error", "payment_intent_id", id, "err", err)
		}
		s.d.Log.WarnContext(ctx, "payment processor unavailable", "payment_intent_id", id, "err", perr)
		code := "processor_unavailable"
		if !errors.Is(perr, payment.ErrProcessorUnavailable) {
			code = "processor_error"
		}
		writeError(w, http.StatusBadGateway, "api_error", code, "", "the payment processor did not answer; the intent was not charged, retry later")
		return
	}
	to, event := payment.StatusSucceeded, webhook.EventIntentSucceeded
	if !outcome.Succeeded {
		to, event = payment.StatusFailed, webhook.EventIntentFailed
	}
	in, err = s.d.Repo.UpdateStatus(ctx, id, payment.StatusProcessing, to, store.StatusChange{FailureCode: outcome.FailureCode})
	if err != nil {
		s.errorForStore(w, r, "record payment outcome", err)
		return
	}
	s.publish(ctx, event, in)
	writeJSON(w, http.StatusOK, in)
}

// publish queues an event about in. A failure is logged: the intent's
// state is already committed (a transactional outbox would close this gap).
func (s *Server) publish(ctx context.Context, typ string, in payment.Intent) {
	data, err := json.Marshal(in)
	if err != nil {
		s.d.Log.ErrorContext(ctx, "encode event data", "event_type", typ, "err", err)
		return
	}
	ev := webhook.Event{ID: webhook.NewEventID(), Type: typ, CreatedAt: s.now().UTC(), Data: data, IntentID: in.ID}
	if _, err := s.d.Events.Publish(ctx, ev); err != nil {
		s.d.Log.ErrorContext(ctx, "publish webhook event", "event_id", ev.ID, "event_type", typ, "payment_intent_id", in.ID, "err", err)
	}
}

func (s *Server) listAttempts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.d.Repo.GetIntent(r.Context(), id); err != nil {
		s.errorForStore(w, r, "get payment intent", err)
		return
	}
	atts, err := s.d.Repo.ListAttempts(r.Context(), id)
	if err != nil {
		s.internalError(w, r, "list delivery attempts", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": atts})
}
