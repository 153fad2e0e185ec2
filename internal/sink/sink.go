// Package sink is the webhook sink of an environment: an http.Handler
// that the serve process mounts, to which an environment's deployed
// services deliver their webhooks. It verifies each delivery's HMAC
// signature against the environment's secret (or a secret registered for
// the endpoint), keeps the last deliveries in a bounded ring, and answers
// queries for them, so a Postman collection can assert that a webhook was
// delivered and signed.
//
//	POST /sink/{env}/{name...}        receive a delivery
//	PUT  /sink/{env}/{name...}        register the endpoint's own secret (once)
//	GET  /sink/{env}/deliveries?...   list deliveries (name, event, since, verified)
//
// Bodies are never logged; the signature header is never stored.
package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the options.
const (
	DefaultHeader      = "Payment-Signature"
	DefaultEventHeader = "Payment-Event-Type"
	DefaultMaxBody     = 1 << 20
	DefaultKeep        = 100
	// MaxRegistered bounds the endpoint secrets registered per environment.
	MaxRegistered = 1000
)

// Sink receives webhooks for environments.
type Sink struct {
	secrets     Secrets
	header      string
	format      Format
	eventHeader string
	maxBody     int64
	keep        int
	log         *slog.Logger
	now         func() time.Time
	mux         *http.ServeMux

	mu   sync.Mutex
	envs map[string]*envState
}

type envState struct {
	ring       []Delivery // oldest first, at most keep
	next       int64
	registered map[string]string // endpoint name → secret
}

var _ http.Handler = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink) error

// WithSignature sets the header carrying the signature and its format;
// default Payment-Signature with Timestamped{Tolerance: 5m}, as the
// example payment service sends.
func WithSignature(header string, f Format) Option {
	return func(s *Sink) error {
		if header == "" || f == nil {
			return errors.New("sink: WithSignature needs a header name and a format")
		}
		s.header, s.format = http.CanonicalHeaderKey(header), f
		return nil
	}
}

// WithEventHeader sets the header naming a delivery's event type (default
// Payment-Event-Type); without it, the sink reads the JSON body's "type".
func WithEventHeader(header string) Option {
	return func(s *Sink) error {
		if header == "" {
			return errors.New("sink: WithEventHeader needs a header name")
		}
		s.eventHeader = http.CanonicalHeaderKey(header)
		return nil
	}
}

// WithMaxBody bounds a delivery's body (default 1 MiB); a larger one is
// refused with 413 and not kept.
func WithMaxBody(n int64) Option {
	return func(s *Sink) error {
		if n <= 0 {
			return fmt.Errorf("sink: WithMaxBody(%d): want > 0", n)
		}
		s.maxBody = n
		return nil
	}
}

// WithKeep sets how many deliveries each environment keeps (default 100);
// older ones are dropped.
func WithKeep(n int) Option {
	return func(s *Sink) error {
		if n <= 0 {
			return fmt.Errorf("sink: WithKeep(%d): want > 0", n)
		}
		s.keep = n
		return nil
	}
}

// WithLogger sets the logger (default discards). Bodies are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Sink) error {
		if l == nil {
			return errors.New("sink: WithLogger(nil)")
		}
		s.log = l
		return nil
	}
}

// New returns a sink verifying against secrets.
func New(secrets Secrets, opts ...Option) (*Sink, error) {
	if secrets == nil {
		return nil, errors.New("sink: no secrets")
	}
	s := &Sink{
		secrets: secrets, header: DefaultHeader, format: Timestamped{Tolerance: DefaultTolerance},
		eventHeader: DefaultEventHeader, maxBody: DefaultMaxBody, keep: DefaultKeep,
		log: slog.New(slog.DiscardHandler), now: time.Now, envs: map[string]*envState{},
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /sink/{env}/deliveries", s.list)
	s.mux.HandleFunc("POST /sink/{env}/{name...}", s.receive)
	s.mux.HandleFunc("PUT /sink/{env}/{name...}", s.register)
	return s, nil
}

// ServeHTTP serves the /sink/ routes.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// URL is where a service of env delivers webhooks for the endpoint name,
// given the base URL the sink is mounted at (http://127.0.0.1:PORT).
func URL(base, env, name string) string {
	return strings.TrimRight(base, "/") + "/sink/" + url.PathEscape(env) + "/" + url.PathEscape(name)
}

// Env variables handed to an environment's instances: where to deliver
// webhooks and the secret to sign them with.
const (
	EnvURL    = "GANTRY_SINK_URL"
	EnvSecret = "GANTRY_SINK_SECRET"
)

// InstanceEnv returns the variables (KEY=VALUE) that tell env's instances
// about its sink: GANTRY_SINK_URL (the base of the environment's sink,
// base/sink/ENV) and GANTRY_SINK_SECRET.
func InstanceEnv(ctx context.Context, secrets Secrets, base, env string) ([]string, error) {
	secret, err := secrets.Secret(ctx, env)
	if err != nil {
		return nil, err
	}
	return []string{EnvURL + "=" + strings.TrimRight(base, "/") + "/sink/" + url.PathEscape(env), EnvSecret + "=" + secret}, nil
}

// Delivery is one received webhook as the deliveries query returns it.
type Delivery struct {
	ID       int64     `json:"id"`
	Name     string    `json:"name"`
	Event    string    `json:"event,omitempty"`
	Received time.Time `json:"received"`
	// Verified says the signature matched the environment's secret or the
	// endpoint's registered one; Reason says why not.
	Verified bool   `json:"verified"`
	Reason   string `json:"reason,omitempty"`
	// Headers are the request's, without the signature and credentials.
	Headers map[string]string `json:"headers"`
	// Body is the body itself when it is JSON, else a JSON string of it.
	Body json.RawMessage `json:"body"`
}

// dropped headers: the signature (kept nowhere) and credentials.
var credentialHeaders = map[string]bool{"Authorization": true, "Cookie": true, "Proxy-Authorization": true}

func (s *Sink) env(name string) *envState {
	st := s.envs[name]
	if st == nil {
		st = &envState{registered: map[string]string{}}
		s.envs[name] = st
	}
	return st
}

func (s *Sink) secret(ctx context.Context, w http.ResponseWriter, env string) (string, bool) {
	secret, err := s.secrets.Secret(ctx, env)
	switch {
	case errors.Is(err, ErrUnknownEnvironment):
		http.Error(w, "unknown environment", http.StatusNotFound)
		return "", false
	case err != nil:
		s.log.ErrorContext(ctx, "sink secret", "env", env, "err", err)
		http.Error(w, "sink secret unavailable", http.StatusInternalServerError)
		return "", false
	}
	return secret, true
}

func validName(name string) bool {
	return name != "" && name != "deliveries" && len(name) <= 200 && !strings.ContainsAny(name, "?#")
}

func (s *Sink) receive(w http.ResponseWriter, r *http.Request) {
	env, name := r.PathValue("env"), r.PathValue("name")
	if !validName(name) {
		http.Error(w, "bad endpoint name", http.StatusBadRequest)
		return
	}
	secret, ok := s.secret(r.Context(), w, env)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.log.WarnContext(r.Context(), "sink delivery refused: body too large", "env", env, "name", name, "limit", s.maxBody)
		http.Error(w, fmt.Sprintf("body larger than %d bytes", s.maxBody), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	now := s.now()
	d := Delivery{Name: name, Received: now.UTC(), Headers: map[string]string{}, Body: bodyJSON(body)}
	for k, v := range r.Header {
		if k == s.header || credentialHeaders[k] {
			continue
		}
		d.Headers[k] = strings.Join(v, ", ")
	}
	d.Event = r.Header.Get(s.eventHeader)
	if d.Event == "" {
		var typed struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &typed) == nil {
			d.Event = typed.Type
		}
	}
	s.mu.Lock()
	registered := s.env(env).registered[name]
	s.mu.Unlock()
	sig := r.Header.Get(s.header)
	var verr error
	if sig == "" {
		verr = ErrNoSignature
	} else {
		verr = s.format.Verify([]byte(secret), sig, body, now)
		if errors.Is(verr, ErrSignatureMismatch) && registered != "" {
			verr = s.format.Verify([]byte(registered), sig, body, now)
		}
	}
	d.Verified = verr == nil
	if verr != nil {
		d.Reason = verr.Error()
	}
	s.mu.Lock()
	st := s.env(env)
	st.next++
	d.ID = st.next
	st.ring = append(st.ring, d)
	if over := len(st.ring) - s.keep; over > 0 {
		st.ring = append(st.ring[:0:0], st.ring[over:]...)
	}
	s.mu.Unlock()
	s.log.InfoContext(r.Context(), "sink delivery", "env", env, "name", name, "event", d.Event, "verified", d.Verified, "bytes", len(body))
	if !d.Verified {
		http.Error(w, "signature not verified: "+d.Reason, http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bodyJSON keeps a JSON body as is and quotes anything else.
func bodyJSON(body []byte) json.RawMessage {
	if json.Valid(body) && len(body) > 0 {
		return json.RawMessage(append([]byte(nil), body...))
	}
	b, _ := json.Marshal(string(body)) // a string always marshals
	return b
}

// register records the endpoint's own signing secret, for a service that
// generates one per endpoint (the example's does). A name's secret is set
// once: the same secret again is accepted, another one is refused (409),
// so a delivery that verified cannot be made to verify with a secret
// somebody set later.
func (s *Sink) register(w http.ResponseWriter, r *http.Request) {
	env, name := r.PathValue("env"), r.PathValue("name")
	if !validName(name) {
		http.Error(w, "bad endpoint name", http.StatusBadRequest)
		return
	}
	if _, ok := s.secret(r.Context(), w, env); !ok {
		return
	}
	var req struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.Secret == "" {
		http.Error(w, `want {"secret": "..."}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.env(env)
	switch old, ok := st.registered[name]; {
	case ok && old == req.Secret:
		w.WriteHeader(http.StatusNoContent)
	case ok:
		http.Error(w, "endpoint already has another secret", http.StatusConflict)
	case len(st.registered) >= MaxRegistered:
		http.Error(w, "too many registered endpoints", http.StatusInsufficientStorage)
	default:
		st.registered[name] = req.Secret
		w.WriteHeader(http.StatusCreated)
	}
}

// Deliveries returns env's kept deliveries matching q, oldest first.
func (s *Sink) Deliveries(env string, q Query) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Delivery{}
	st := s.envs[env]
	if st == nil {
		return out
	}
	for _, d := range st.ring {
		if q.match(d) {
			out = append(out, d)
		}
	}
	return out
}

// Query selects deliveries; zero fields match everything.
type Query struct {
	Name     string
	Event    string
	Since    time.Time // received at or after
	Verified *bool
}

func (q Query) match(d Delivery) bool {
	return (q.Name == "" || d.Name == q.Name) && (q.Event == "" || d.Event == q.Event) &&
		(q.Since.IsZero() || !d.Received.Before(q.Since)) && (q.Verified == nil || d.Verified == *q.Verified)
}

// parseSince reads RFC 3339 or Unix milliseconds (JavaScript's Date.now()).
func parseSince(v string) (time.Time, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

func (s *Sink) list(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	if _, ok := s.secret(r.Context(), w, env); !ok {
		return
	}
	v := r.URL.Query()
	q := Query{Name: v.Get("name"), Event: v.Get("event")}
	if since := v.Get("since"); since != "" {
		t, err := parseSince(since)
		if err != nil {
			http.Error(w, "since: want RFC 3339 or Unix milliseconds", http.StatusBadRequest)
			return
		}
		q.Since = t
	}
	if ver := v.Get("verified"); ver != "" {
		b, err := strconv.ParseBool(ver)
		if err != nil {
			http.Error(w, "verified: want true or false", http.StatusBadRequest)
			return
		}
		q.Verified = &b
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"deliveries": s.Deliveries(env, q)})
}
