package load

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func soak(t *testing.T, mode string, watch ...string) *Result {
	t.Helper()
	base := startServer(t, mode)
	return run(t, Config{
		Requests: []Request{{URL: base + "/pay"}},
		Rate:     200, Duration: 3 * time.Second,
		Watch: &WatchConfig{URL: base + "/metrics", Interval: 100 * time.Millisecond, Watch: watch},
	})
}

func verdicts(r *Result) map[string]Verdict {
	out := map[string]Verdict{}
	for _, v := range r.Watch.Verdicts {
		out[v.Watch] = v
	}
	return out
}

func TestWatchFlagsPlantedLeak(t *testing.T) {
	res := soak(t, "leak", WatchMemory, WatchGoroutines)
	v := verdicts(res)
	for _, w := range []string{WatchMemory, WatchGoroutines} {
		t.Logf("%s: %s", w, v[w].Reason)
		if v[w].OK {
			t.Errorf("%s verdict ok on a leaking server: %s", w, v[w].Reason)
		}
	}
	var le *LeakError
	if err := res.Err(); !errors.As(err, &le) || !strings.Contains(err.Error(), "leak: ") {
		t.Errorf("Err() = %v, want a LeakError", err)
	}
}

func TestWatchPassesSteadyServer(t *testing.T) {
	if raceEnabled {
		// A few seconds of an instrumented process's heap is no steady
		// state to judge; the plain test run judges it.
		t.Skip("steady-state verdicts are judged without the race detector")
	}
	// A well-behaved server in a separate process; payment_test.go runs
	// the same watch against the payment-service example.
	res := soak(t, "steady", WatchMemory, WatchGoroutines, WatchConnections)
	for w, v := range verdicts(res) {
		t.Logf("%s: %s", w, v.Reason)
		if !v.OK {
			t.Errorf("%s verdict failed on a steady server: %s", w, v.Reason)
		}
	}
	if res.Watch.Samples < 20 {
		t.Errorf("samples = %d, want about 30", res.Watch.Samples)
	}
}

func TestWatchPoolExhaustion(t *testing.T) {
	tests := []struct {
		mode string
		ok   bool
	}{{"pool", false}, {"bigpool", true}}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			v := verdicts(soak(t, tt.mode, WatchDBPool))[WatchDBPool]
			t.Logf("db_pool: %s", v.Reason)
			if v.OK != tt.ok {
				t.Errorf("db_pool ok = %v, want %v: %s", v.OK, tt.ok, v.Reason)
			}
		})
	}
}

func TestFitTrend(t *testing.T) {
	var ts, up, flat []float64
	for i := range 60 {
		x := float64(i)
		ts = append(ts, x)
		up = append(up, 100+2*x+5*math.Sin(x))     // trend with sawtooth-like noise
		flat = append(flat, 100+5*math.Sin(x*1.7)) // no trend
	}
	tests := []struct {
		name      string
		vs        []float64
		slopeLo   float64
		slopeHi   float64
		wantTrend bool
	}{
		{"rising", up, 1.5, 2.5, true},
		{"flat", flat, -0.3, 0.3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fitTrend(ts, tt.vs)
			if f.Slope < tt.slopeLo || f.Slope > tt.slopeHi {
				t.Errorf("slope = %v, want in [%v, %v]", f.Slope, tt.slopeLo, tt.slopeHi)
			}
			if got := f.P < 0.01; got != tt.wantTrend {
				t.Errorf("significant = %v (p=%v), want %v", got, f.P, tt.wantTrend)
			}
		})
	}
}
