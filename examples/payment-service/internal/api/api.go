// Package api is the HTTP API of the payment service.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/examplepay/payment-service/internal/idempotency"
	"github.com/examplepay/payment-service/internal/metrics"
	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/webhook"
)

// Publisher sends events to webhook endpoints (webhook.Dispatcher).
type Publisher interface {
	Publish(ctx context.Context, ev webhook.Event) (int, error)
}

// Check is a readiness check of one dependency.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Deps are the server's collaborators.
type Deps struct {
	Repo        store.Repository
	Idempotency idempotency.Store
	Processor   payment.Processor
	Events      Publisher
	Metrics     *metrics.HTTP
	// Handler for GET /metrics; omitted when nil.
	MetricsHandler http.Handler
	Ready          []Check
	Log            *slog.Logger
	// Fault, when set, slows or fails requests on purpose (see Fault).
	Fault Fault
}

// Fault is injected into every API and /healthz request, never into
// /readyz or /metrics (so a faulty instance still becomes ready and is
// measured): a delay of Latency, then a 500 for the share ErrorRate of
// the requests, spread evenly.
// Such answers carry FaultHeader, so nobody mistakes them for real ones.
// It exists to rehearse a bad release: a blue/green rollout's analysis
// must abort it (FAULT_LATENCY, FAULT_ERROR_RATE in the README).
type Fault struct {
	Latency   time.Duration
	ErrorRate float64
}

// failNext says whether the n-th request (from 1) fails at rate: the
// failures are spread evenly, so any run of requests fails at the rate
// exactly (no randomness to seed or to flag).
func failNext(n uint64, rate float64) bool {
	return uint64(float64(n)*rate) > uint64(float64(n-1)*rate)
}

// FaultHeader names the fault injected into an answer.
const FaultHeader = "X-Fault-Injected"

func (f Fault) active() bool { return f.Latency > 0 || f.ErrorRate > 0 }

// inject wraps next with the fault.
func (f Fault) inject(next http.Handler) http.Handler {
	if !f.active() {
		return next
	}
	var served atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := []string{}
		if f.Latency > 0 {
			what = append(what, "latency="+f.Latency.String())
			t := time.NewTimer(f.Latency)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if f.ErrorRate > 0 && failNext(served.Add(1), f.ErrorRate) {
			w.Header().Set(FaultHeader, strings.Join(append(what, "error"), "; "))
			writeError(w, http.StatusInternalServerError, "api_error", "fault_injected", "", "fault injected (FAULT_ERROR_RATE)")
			return
		}
		if len(what) > 0 {
			w.Header().Set(FaultHeader, strings.Join(what, "; "))
		}
		next.ServeHTTP(w, r)
	})
}

// Server serves the API.
type Server struct {
	d   Deps
	now func() time.Time
}

// New returns a Server.
func New(d Deps) *Server {
	return &Server{d: d, now: time.Now}
}

// maxBody limits request bodies.
const maxBody = 64 << 10

// Handler returns the routed, instrumented handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		route := pattern[strings.IndexByte(pattern, ' ')+1:]
		var next http.Handler = h
		if route != "/readyz" {
			next = s.d.Fault.inject(next)
		}
		mux.Handle(pattern, s.d.Metrics.Instrument(route, s.accessLog(route, next)))
	}
	handle("POST /v1/payment_intents", s.idempotent(s.createIntent))
	handle("GET /v1/payment_intents/{id}", s.getIntent)
	handle("POST /v1/payment_intents/{id}/confirm", s.idempotent(s.confirmIntent))
	handle("GET /v1/payment_intents/{id}/delivery_attempts", s.listAttempts)
	handle("POST /v1/webhook_endpoints", s.idempotent(s.createEndpoint))
	// /healthz answers every method: it doubles as a webhook sink for
	// smoke tests (see tests/postman).
	mux.Handle("/healthz", s.d.Metrics.Instrument("/healthz", s.d.Fault.inject(http.HandlerFunc(s.healthz))))
	handle("GET /readyz", s.readyz)
	if s.d.MetricsHandler != nil {
		mux.Handle("GET /metrics", s.d.MetricsHandler)
	}
	return s.recoverer(mux)
}

// accessLog logs each API request (not probes or scrapes) with its route
// pattern, status and duration; bodies and headers are never logged.
func (s *Server) accessLog(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.d.Log.InfoContext(r.Context(), "request",
			"method", r.Method, "route", route, "path", r.URL.Path, "status", sw.status(),
			"duration_ms", time.Since(start).Milliseconds(), "idempotency_key", r.Header.Get(IdempotencyHeader) != "")
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value compared as net/http does
					panic(v)
				}
				s.d.Log.ErrorContext(ctx, "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "api_error", "internal_error", "", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type apiError struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return // the client went away: nothing left to tell it
	}
}

func writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Type: typ, Code: code, Param: param, Message: msg}})
}

// decode reads a JSON body strictly (unknown fields are errors).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "", "request body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "", "request body: more than one JSON value")
		return false
	}
	return true
}

func (s *Server) validationError(w http.ResponseWriter, err error) bool {
	if ve, ok := errors.AsType[*payment.ValidationError](err); ok {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", ve.Field, ve.Error())
		return true
	}
	return false
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.d.Log.ErrorContext(r.Context(), what, "err", err)
	writeError(w, http.StatusInternalServerError, "api_error", "internal_error", "", what)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	for _, c := range s.d.Ready {
		if err := c.Ping(ctx); err != nil {
			s.d.Log.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
			checks[c.Name] = "unavailable"
			status = http.StatusServiceUnavailable
			continue
		}
		checks[c.Name] = "ok"
	}
	overall := "ok"
	if status != http.StatusOK {
		overall = "unavailable"
	}
	writeJSON(w, status, map[string]any{"status": overall, "checks": checks})
}

// errorForStore maps repository errors to responses.
func (s *Server) errorForStore(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "id", "no such payment intent: "+r.PathValue("id"))
	case errors.Is(err, store.ErrStatusConflict):
		writeError(w, http.StatusConflict, "invalid_request_error", "payment_intent_unexpected_state", "", "the payment intent changed state concurrently; fetch it and retry")
	default:
		s.internalError(w, r, what, err)
	}
}
