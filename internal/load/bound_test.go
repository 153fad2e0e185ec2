package load

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDurationIsAHardBound: however many arrivals are due, the generator
// stops at the end of the duration. The test's context is only a
// watchdog; the run must end on its own deadline, long before it.
func TestDurationIsAHardBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"constant", Config{Requests: []Request{{URL: srv.URL}}, Rate: 10, Duration: 100 * time.Millisecond}},
		{"ramping", Config{Requests: []Request{{URL: srv.URL}}, Stages: []Stage{{Duration: 100 * time.Millisecond, Target: 10}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lt, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Past the ceiling New enforces: an absurd schedule that would
			// take hours to hand out.
			lt.cfg.Rate, lt.cfg.StartRate = 1e12, 1e12
			for i := range lt.cfg.Stages {
				lt.cfg.Stages[i].Target = 1e12
			}
			watchdog, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := lt.Run(watchdog)
			if err != nil {
				t.Fatal(err)
			}
			if watchdog.Err() != nil {
				t.Fatalf("the test ran until the watchdog stopped it (%s); want it to stop on its %s duration", res.End.Sub(res.Start), tc.cfg.TotalDuration())
			}
		})
	}
}

func TestRateCeiling(t *testing.T) {
	url := []Request{{URL: "http://x"}}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"rate", Config{Requests: url, Rate: 1e12, Duration: time.Second}},
		{"just past", Config{Requests: url, Rate: MaxRate + 1, Duration: time.Second}},
		{"start rate", Config{Requests: url, StartRate: 1e9, Stages: []Stage{{Duration: time.Second, Target: 1}}}},
		{"stage target", Config{Requests: url, Stages: []Stage{{Duration: time.Second, Target: 1e9}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, ErrRateTooHigh) {
				t.Fatalf("New: got %v, want %v", err, ErrRateTooHigh)
			}
			if !strings.Contains(err.Error(), "100000") {
				t.Errorf("error %q does not give the ceiling", err)
			}
		})
	}
	if _, err := New(Config{Requests: url, Rate: MaxRate, Duration: time.Second}); err != nil {
		t.Errorf("New at the ceiling: %v", err)
	}
}
