package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/examplepay/payment-service/internal/queue"
)

type fakeEndpoints struct {
	mu   sync.Mutex
	eps  []Endpoint
	fail error
}

func (f *fakeEndpoints) ListEndpoints(context.Context) ([]Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Endpoint(nil), f.eps...), f.fail
}

func (f *fakeEndpoints) GetEndpoint(_ context.Context, id string) (Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return Endpoint{}, f.fail
	}
	for _, e := range f.eps {
		if e.ID == id {
			return e, nil
		}
	}
	return Endpoint{}, ErrEndpointNotFound
}

type fakeAttempts struct {
	mu   sync.Mutex
	got  []Attempt
	fail error
}

func (f *fakeAttempts) RecordAttempt(_ context.Context, a Attempt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, a)
	return nil
}

func (f *fakeAttempts) all() []Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Attempt(nil), f.got...)
}

// receiver is an httptest endpoint that verifies signatures and answers
// with the status codes in plan (200 once the plan is used up).
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	plan   []int
	bodies []string
	badSig int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := Verify(r.secret, req.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.badSig++
	}
	r.bodies = append(r.bodies, string(body))
	code := http.StatusOK
	if len(r.plan) > 0 {
		code, r.plan = r.plan[0], r.plan[1:]
	}
	w.WriteHeader(code)
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDispatchAndDeliverWithRetries(t *testing.T) {
	ctx := context.Background()
	secret := NewSecret()
	rcv := &receiver{t: t, secret: secret, plan: []int{500, 503}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	eps := &fakeEndpoints{eps: []Endpoint{
		{ID: "we_1", URL: srv.URL, Secret: secret, EnabledEvents: []string{"*"}},
		{ID: "we_2", URL: srv.URL, Secret: secret, EnabledEvents: []string{EventIntentFailed}},
	}}
	q := queue.NewMemory(time.Minute)
	n, err := NewDispatcher(eps, q).Publish(ctx, Event{ID: "evt_1", Type: EventIntentSucceeded, IntentID: "pi_1", Data: json.RawMessage(`{"id":"pi_1"}`)})
	if err != nil || n != 1 {
		t.Fatalf("Publish() = %d, %v; want 1 job", n, err)
	}

	atts := &fakeAttempts{}
	w := NewWorker(q, eps, atts, testLogger(), WithMaxAttempts(5),
		WithBackoff(Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}), WithPollWait(50*time.Millisecond))
	for i := range 3 {
		msgs, err := q.Receive(ctx, 10, 10*time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("round %d: Receive() = %v, %v", i, msgs, err)
		}
		if err := w.Handle(ctx, msgs[0]); err != nil {
			t.Fatalf("round %d: Handle() = %v", i, err)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("queue holds %d jobs after success, want 0", q.Len())
	}
	got := atts.all()
	if len(got) != 3 {
		t.Fatalf("recorded %d attempts, want 3", len(got))
	}
	wantCodes := []int{500, 503, 200}
	for i, a := range got {
		if a.Attempt != i+1 || a.StatusCode != wantCodes[i] || a.Succeeded != (i == 2) || a.EventID != "evt_1" || a.IntentID != "pi_1" || a.EndpointID != "we_1" {
			t.Errorf("attempt %d = %+v, want attempt %d status %d", i, a, i+1, wantCodes[i])
		}
		if (a.NextRetryAt != nil) != (i < 2) {
			t.Errorf("attempt %d NextRetryAt = %v", i, a.NextRetryAt)
		}
	}
	if rcv.badSig != 0 {
		t.Fatalf("%d deliveries had an invalid signature", rcv.badSig)
	}
	var ev Event
	if err := json.Unmarshal([]byte(rcv.bodies[2]), &ev); err != nil || ev.ID != "evt_1" || ev.Type != EventIntentSucceeded {
		t.Fatalf("delivered body %q: %v", rcv.bodies[2], err)
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer srv.Close()
	eps := &fakeEndpoints{eps: []Endpoint{{ID: "we_1", URL: srv.URL, Secret: "s", EnabledEvents: []string{"*"}}}}
	q := queue.NewMemory(time.Minute)
	atts := &fakeAttempts{}
	w := NewWorker(q, eps, atts, testLogger(), WithMaxAttempts(2), WithBackoff(Backoff{Base: time.Millisecond, Max: time.Millisecond}),
		withClock(time.Now), WithHTTPClient(srv.Client()))
	if _, err := NewDispatcher(eps, q).Publish(ctx, Event{ID: "evt_9", Type: EventIntentCreated}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		msgs, err := q.Receive(ctx, 1, 10*time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive() = %v, %v", msgs, err)
		}
		if err := w.Handle(ctx, msgs[0]); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("queue len = %d after giving up, want 0", q.Len())
	}
	got := atts.all()
	if len(got) != 2 || got[1].Succeeded || got[1].NextRetryAt != nil || got[1].Error == "" {
		t.Fatalf("attempts = %+v, want 2 failures, the last without retry", got)
	}
}

func TestWorkerRunDeliversUntilCancelled(t *testing.T) {
	secret := NewSecret()
	rcv := &receiver{t: t, secret: secret}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	eps := &fakeEndpoints{eps: []Endpoint{{ID: "we_1", URL: srv.URL, Secret: secret, EnabledEvents: []string{"*"}}}}
	q := queue.NewMemory(time.Minute)
	atts := &fakeAttempts{}
	w := NewWorker(q, eps, atts, testLogger(), WithPollWait(20*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if _, err := NewDispatcher(eps, q).Publish(ctx, Event{ID: "evt_r", Type: EventIntentSucceeded}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(atts.all()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no delivery within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if a := atts.all()[0]; !a.Succeeded || a.StatusCode != http.StatusOK {
		t.Fatalf("attempt = %+v", a)
	}
}

type brokenQueue struct {
	queue.Queue
	calls int
	mu    sync.Mutex
}

func (b *brokenQueue) Receive(context.Context, int, time.Duration) ([]queue.Message, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	return nil, errors.New("queue down")
}

func TestWorkerRunSurvivesQueueErrors(t *testing.T) {
	bq := &brokenQueue{}
	w := NewWorker(bq, &fakeEndpoints{}, &fakeAttempts{}, testLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for {
		bq.mu.Lock()
		c := bq.calls
		bq.mu.Unlock()
		if c > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
}

func TestWorkerHandleEdgeCases(t *testing.T) {
	ctx := context.Background()
	downErr := errors.New("db down")
	tests := []struct {
		name       string
		body       string
		eps        *fakeEndpoints
		atts       *fakeAttempts
		wantErr    bool
		wantQueued int
	}{
		{name: "malformed body is dropped", body: `not json`, eps: &fakeEndpoints{}, atts: &fakeAttempts{}},
		{name: "missing endpoint id is dropped", body: `{"event_id":"e"}`, eps: &fakeEndpoints{}, atts: &fakeAttempts{}},
		{name: "deleted endpoint is dropped", body: `{"endpoint_id":"we_gone","payload":{}}`, eps: &fakeEndpoints{}, atts: &fakeAttempts{}},
		{name: "endpoint store down keeps the job", body: `{"endpoint_id":"we_1","payload":{}}`, eps: &fakeEndpoints{fail: downErr}, atts: &fakeAttempts{}, wantErr: true, wantQueued: 1},
		{name: "attempt store down keeps the job", body: `{"endpoint_id":"we_1","payload":{}}`,
			eps: &fakeEndpoints{eps: []Endpoint{{ID: "we_1", URL: "http://127.0.0.1:1/unreachable", Secret: "s"}}}, atts: &fakeAttempts{fail: downErr}, wantErr: true, wantQueued: 1},
		{name: "bad url is a failed attempt", body: `{"endpoint_id":"we_1","attempt":0,"payload":{}}`,
			eps: &fakeEndpoints{eps: []Endpoint{{ID: "we_1", URL: "http://bad host/", Secret: "s"}}}, atts: &fakeAttempts{}, wantQueued: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := queue.NewMemory(time.Hour)
			if err := q.Send(ctx, []byte(tt.body), 0); err != nil {
				t.Fatal(err)
			}
			msgs, _ := q.Receive(ctx, 1, 0)
			w := NewWorker(q, tt.eps, tt.atts, testLogger(), WithMaxAttempts(0), WithBackoff(Backoff{Base: time.Hour, Max: time.Hour}))
			err := w.Handle(ctx, msgs[0])
			if (err != nil) != tt.wantErr {
				t.Fatalf("Handle() = %v, wantErr %v", err, tt.wantErr)
			}
			if q.Len() != tt.wantQueued {
				t.Fatalf("queue len = %d, want %d", q.Len(), tt.wantQueued)
			}
		})
	}
}

func TestPublishErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := NewDispatcher(&fakeEndpoints{fail: errors.New("down")}, queue.NewMemory(0)).Publish(ctx, Event{ID: "e"}); err == nil {
		t.Fatal("Publish() with endpoint store down: want error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	eps := &fakeEndpoints{eps: []Endpoint{{ID: "we", EnabledEvents: []string{"*"}}}}
	if n, err := NewDispatcher(eps, queue.NewMemory(0)).Publish(cctx, Event{ID: "e"}); err == nil || n != 0 {
		t.Fatalf("Publish() with queue failing = %d, %v; want error", n, err)
	}
	if id := NewEndpointID(); len(id) != len("we_")+24 {
		t.Fatalf("NewEndpointID() = %q", id)
	}
	if id := NewEventID(); len(id) != len("evt_")+24 {
		t.Fatalf("NewEventID() = %q", id)
	}
}
