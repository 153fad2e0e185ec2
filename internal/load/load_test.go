package load

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stallServer answers at once, except that every request that is being
// served between stallAt and stallAt+stall after start waits until the
// stall ends — a GC pause or a lock convoy.
func stallServer(t *testing.T, stallAt, stall time.Duration) *httptest.Server {
	t.Helper()
	var start atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := start.Load()
		if s == 0 {
			start.CompareAndSwap(0, time.Now().UnixNano())
			s = start.Load()
		}
		from := time.Unix(0, s).Add(stallAt)
		if now := time.Now(); now.After(from) && now.Before(from.Add(stall)) {
			select {
			case <-time.After(from.Add(stall).Sub(now)):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	lt, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res, err := lt.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// TestCoordinatedOmission shows the stall in the open model's tail and
// how a closed model hides it.
func TestCoordinatedOmission(t *testing.T) {
	const stall = 500 * time.Millisecond
	open := run(t, Config{
		Requests: []Request{{URL: stallServer(t, time.Second, stall).URL}},
		Rate:     200, Duration: 3 * time.Second,
	})
	closed := run(t, Config{
		Requests: []Request{{URL: stallServer(t, time.Second, stall).URL}},
		VUs:      2, Duration: 3 * time.Second,
	})
	op99, cp99 := open.Metrics.Percentile(99), closed.Metrics.Percentile(99)
	t.Logf("open model: %d reqs p99=%.1fms dropped=%d; closed model: %d reqs p99=%.1fms",
		open.Metrics.Reqs, op99, open.Metrics.Dropped, closed.Metrics.Reqs, cp99)
	if open.Model != "constant-arrival-rate" || closed.Model != "constant-vus" {
		t.Fatalf("models = %s, %s", open.Model, closed.Model)
	}
	// About 100 of 600 requests arrive during the stall and wait up to
	// 500 ms; the top 1% waited most of it.
	if op99 < float64(stall/time.Millisecond)/2 {
		t.Errorf("open model p99 = %.1fms, want >= %dms: the stall must show in the tail", op99, stall/time.Millisecond/2)
	}
	if got, want := open.Metrics.Reqs+open.Metrics.Dropped, int64(600); got < want-5 || got > want+1 {
		t.Errorf("open model started+dropped = %d, want about %d", got, want)
	}
	if cp99*4 > op99 {
		t.Errorf("closed model p99 = %.1fms, want well below the open model's %.1fms (coordinated omission)", cp99, op99)
	}
}

func TestDroppedWhenNoVUFree(t *testing.T) {
	srv := stallServer(t, 0, time.Hour) // every request hangs
	res := run(t, Config{
		Requests: []Request{{URL: srv.URL}},
		Rate:     100, Duration: time.Second, MaxVUs: 10, Timeout: 1500 * time.Millisecond,
	})
	// 100 arrivals: 10 taken by the VUs, queueLen wait in the queue, the
	// rest find neither.
	if got, want := res.Metrics.Dropped, int64(100-10-queueLen); got < want-3 || got > want+3 {
		t.Errorf("dropped = %d, want about %d", got, want)
	}
	if res.Metrics.MaxVUs != 10 {
		t.Errorf("vus_max = %d, want 10", res.Metrics.MaxVUs)
	}
}

func TestThresholdsBothSides(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok","n":1}`))
	}))
	defer srv.Close()
	ths := func(pairs ...string) []Threshold {
		var out []Threshold
		for _, p := range pairs {
			th, err := ParseThreshold(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, th)
		}
		return out
	}
	res := run(t, Config{
		Requests: []Request{{URL: srv.URL, Checks: []Check{{Status: 200}, {JSON: "{.status}", Equals: "ok"}}}},
		Rate:     100, Duration: 2 * time.Second,
		Thresholds: ths(
			"http_req_duration:p(99)<500", "http_req_duration:p(99)<5", "http_req_duration:avg>=15",
			"http_req_failed:rate<0.2", "http_req_failed:rate<0.001",
			"checks:rate>0.8", "checks:rate>0.95", "http_reqs:count>=150",
		),
	})
	want := map[string]bool{
		"http_req_duration p(99)<500": true, "http_req_duration p(99)<5": false, "http_req_duration avg>=15": true,
		"http_req_failed rate<0.2": true, "http_req_failed rate<0.001": false,
		"checks rate>0.8": true, "checks rate>0.95": false, "http_reqs count>=150": true,
	}
	for _, r := range res.Thresholds {
		key := r.Metric + " " + r.Source
		if got := r.OK; got != want[key] {
			t.Errorf("%s: ok = %v, want %v (observed %v)", key, got, want[key], r.Observed)
		}
	}
	var te *ThresholdsError
	if err := res.Err(); !errors.As(err, &te) || len(te.Failed) != 3 {
		t.Fatalf("Err() = %v, want 3 failed thresholds", err)
	}
	if !strings.Contains(res.Err().Error(), `http_req_failed "rate<0.001" failed (observed 10.`) {
		t.Errorf("error does not say the observed value: %v", res.Err())
	}
	s := res.Summary()
	if got := s.Metrics["http_req_failed"].Thresholds()["rate<0.001"]; !got {
		t.Errorf("summary export: failed threshold marked %v, want true (k6 marks failures)", got)
	}
	if got := s.Stat("http_reqs", "count"); got < 190 {
		t.Errorf("summary http_reqs.count = %v, want about 200", got)
	}
	var txt bytes.Buffer
	if err := s.WriteText(&txt); err != nil || !strings.Contains(txt.String(), "✗ 'rate<0.001'") {
		t.Errorf("text summary lacks the failed threshold:\n%s", txt.String())
	}
	var html bytes.Buffer
	if err := res.WriteHTML(&html); err != nil || !strings.Contains(html.String(), "<svg") {
		t.Errorf("WriteHTML: %v", err)
	}
}

func TestAbortOnFail(t *testing.T) {
	srv := stallServer(t, 0, time.Hour)
	th, err := NewThreshold(MetricDuration, "p(99)<10")
	if err != nil {
		t.Fatal(err)
	}
	th.AbortOnFail = true
	th.DelayAbortEval = 500 * time.Millisecond
	res := run(t, Config{
		Requests: []Request{{URL: stallServer(t, 0, 0).URL}, {URL: srv.URL}},
		Rate:     50, Duration: 20 * time.Second, Timeout: 300 * time.Millisecond, Thresholds: []Threshold{th},
	})
	if res.AbortedBy == "" {
		t.Fatal("test was not aborted")
	}
	if el := res.End.Sub(res.Start); el > 10*time.Second {
		t.Errorf("aborted test ran %v, want it stopped early", el)
	}
	if res.Err() == nil {
		t.Error("Err() = nil after an abort")
	}
}

func TestRampingSchedule(t *testing.T) {
	s := newSchedule(0, []Stage{{Duration: 2 * time.Second, Target: 100}, {Duration: time.Second, Target: 100}})
	var n int
	var last time.Duration
	for {
		off, ok := s.next()
		if !ok {
			break
		}
		if off < last {
			t.Fatalf("arrival %d at %v before previous %v", n, off, last)
		}
		last = off
		n++
	}
	// 0→100/s over 2 s is 100 arrivals, then 100 more.
	if n < 199 || n > 201 {
		t.Errorf("arrivals = %d, want 200", n)
	}
	if last > 3*time.Second {
		t.Errorf("last arrival %v after the end", last)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := map[string]Config{
		"no requests":   {Rate: 1, Duration: time.Second},
		"zero rate":     {Requests: []Request{{URL: "http://x"}}, Duration: time.Second},
		"no duration":   {Requests: []Request{{URL: "http://x"}}, Rate: 1},
		"relative url":  {Requests: []Request{{URL: "/x"}}, Rate: 1, Duration: time.Second},
		"unknown var":   {Requests: []Request{{URL: "http://x/{{nope}}"}}, Rate: 1, Duration: time.Second},
		"bad stage":     {Requests: []Request{{URL: "http://x"}}, Stages: []Stage{{Target: 5}}},
		"bad json path": {Requests: []Request{{URL: "http://x", Checks: []Check{{JSON: "{.a["}}}}, Rate: 1, Duration: time.Second},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); err == nil {
				t.Errorf("New(%s) = nil error", name)
			}
		})
	}
}
