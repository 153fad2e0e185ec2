package monitor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// fakeServer stands for gantry serve's agent endpoints (the real ones are
// tested in internal/serve and internal/envctl): it assigns one monitor
// of prod, revision 2, and keeps what is reported; down makes it fail
// as an unreachable server does.
type fakeServer struct {
	url  string
	down atomic.Bool
	mu   sync.Mutex
	got  []runtime.MonitorResult
	asks int
}

var errDown = errors.New("connection refused")

func (f *fakeServer) MonitorAssignments(_ context.Context, location string) ([]runtime.MonitorAssignment, error) {
	f.mu.Lock()
	f.asks++
	f.mu.Unlock()
	if f.down.Load() {
		return nil, errDown
	}
	return []runtime.MonitorAssignment{{Environment: "prod", Revision: 2, URL: f.url, Until: time.Now().Add(time.Hour),
		Monitors: []runtime.Monitor{{Name: "health", Path: "/healthz", Interval: 50 * time.Millisecond, Locations: []string{"local", location}}}}}, nil
}

func (f *fakeServer) ReportMonitors(_ context.Context, location string, reports []runtime.MonitorReport) (runtime.MonitorReportResult, error) {
	if f.down.Load() {
		return runtime.MonitorReportResult{}, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int
	for _, rep := range reports {
		if rep.Environment != "prod" || rep.Revision != 2 {
			return runtime.MonitorReportResult{}, fmt.Errorf("%w: %s revision %d", runtime.ErrInvalidRequest, rep.Environment, rep.Revision)
		}
		for _, r := range rep.Results {
			if r.Location != location {
				return runtime.MonitorReportResult{}, fmt.Errorf("%w: result from %s in a report of %s", runtime.ErrInvalidRequest, r.Location, location)
			}
			f.got = append(f.got, r)
			n++
		}
	}
	return runtime.MonitorReportResult{Recorded: n}, nil
}

// results returns what was reported so far.
func (f *fakeServer) results() []runtime.MonitorResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]runtime.MonitorResult(nil), f.got...)
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startAgent runs an agent at eu-west against f until the test ends (or
// stop is called); stop returns Run's error.
func startAgent(t *testing.T, f *fakeServer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	a := &Agent{Server: f, Location: "eu-west", Poll: 50 * time.Millisecond, Flush: 50 * time.Millisecond}
	go func() { errc <- a.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestAgentChecksAndReports(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer svc.Close()
	f := &fakeServer{url: svc.URL}
	startAgent(t, f)
	waitUntil(t, "a passing result", func() bool {
		rs := f.results()
		return len(rs) > 0 && rs[0].OK
	})
	r := f.results()[0]
	if r.Monitor != "health" || r.Location != "eu-west" || r.Status != 200 || r.At.IsZero() {
		t.Errorf("result %+v, want health from eu-west, status 200, a time", r)
	}
	healthy.Store(false)
	waitUntil(t, "a failing result", func() bool {
		rs := f.results()
		return !rs[len(rs)-1].OK
	})
	rs := f.results()
	if last := rs[len(rs)-1]; last.Status != 503 || !strings.Contains(last.Message, "GET /healthz: status 503, want 200") {
		t.Errorf("failing result %+v, want status 503 and why", last)
	}
}

// TestAgentSurvivesTheServerGoing: while the server does not answer, the
// agent keeps asking (with a backoff) and keeps its results; once the
// server is back they arrive.
func TestAgentSurvivesTheServerGoing(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer svc.Close()
	f := &fakeServer{url: svc.URL}
	stop := startAgent(t, f)
	waitUntil(t, "a first result", func() bool { return len(f.results()) > 0 })
	f.down.Store(true)
	f.mu.Lock()
	asks, before := f.asks, len(f.got)
	f.mu.Unlock()
	waitUntil(t, "the agent to ask the server that is down", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.asks > asks+1
	})
	f.down.Store(false)
	waitUntil(t, "results after the server came back", func() bool { return len(f.results()) > before })
	if err := stop(); err != nil {
		t.Errorf("Run: %v, want nil after its context ended", err)
	}
}

// TestAgentSendsWhatItHoldsAtTheEnd: results held when the agent stops
// are reported before Run returns.
func TestAgentSendsWhatItHoldsAtTheEnd(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer svc.Close()
	f := &fakeServer{url: svc.URL}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{Server: f, Location: "eu-west", Poll: 50 * time.Millisecond, Flush: time.Hour}
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	waitUntil(t, "a held result", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.pending[assignKey{"prod", 2}]) > 0
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(f.results()) == 0 {
		t.Error("the held results were not reported when the agent stopped")
	}
}

func TestAgentConfig(t *testing.T) {
	tests := []struct {
		name     string
		location string
		want     string
	}{
		{"local", "local", `location "local" is the gantry server itself`},
		{"bad name", "EU", `invalid location name "EU"`},
		{"empty", "", `invalid location name ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Agent{Server: &fakeServer{}, Location: tt.location}).Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// refusingServer assigns like fakeServer but refuses every report as
// the server refuses one for an environment that is gone.
type refusingServer struct {
	fakeServer
	refused atomic.Int64
}

func (f *refusingServer) ReportMonitors(context.Context, string, []runtime.MonitorReport) (runtime.MonitorReportResult, error) {
	f.refused.Add(1)
	return runtime.MonitorReportResult{}, fmt.Errorf("environment prod: %w", runtime.ErrNoRollout)
}

// TestAgentDropsRefusedResults: results the server refuses for good are
// dropped, not held and sent again.
func TestAgentDropsRefusedResults(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer svc.Close()
	f := &refusingServer{fakeServer: fakeServer{url: svc.URL}}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{Server: f, Location: "eu-west", Poll: time.Hour, Flush: 50 * time.Millisecond}
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	waitUntil(t, "a refused report", func() bool { return f.refused.Load() > 0 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	held := len(a.pending[assignKey{"prod", 2}])
	a.mu.Unlock()
	if held != 0 {
		t.Errorf("%d refused results held, want them dropped", held)
	}
}

// deniedServer refuses the agent's credential, as a server does for a
// token not bound to the agent's location.
type deniedServer struct{ fakeServer }

var errDenied = errors.New("refused by gantry serve")

func (d *deniedServer) MonitorAssignments(context.Context, string) ([]runtime.MonitorAssignment, error) {
	return nil, errDenied
}

// TestAgentStopsWhenRefused: a refusal of the agent's credential ends
// Run with it, on its own (asking again cannot help); without Refused it
// is asked again until the context ends.
func TestAgentStopsWhenRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := &Agent{Server: &deniedServer{}, Location: "eu-west", Poll: 50 * time.Millisecond,
		Refused: func(err error) bool { return errors.Is(err, errDenied) }}
	err := a.Run(ctx)
	if !errors.Is(err, errDenied) || ctx.Err() != nil {
		t.Fatalf("Run: %v (context %v), want the refusal before the context ended", err, ctx.Err())
	}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if err := (&Agent{Server: &deniedServer{}, Location: "eu-west", Poll: 50 * time.Millisecond}).Run(short); err != nil {
		t.Errorf("Run without Refused: %v, want nil once the context ends", err)
	}
}
