package promenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Alert is one alert of Prometheus' /api/v1/alerts.
type Alert struct {
	Name   string            `json:"name"`
	State  string            `json:"state"` // pending or firing
	Labels map[string]string `json:"labels"`
	// ActiveAt is when the alert's expression first held.
	ActiveAt time.Time `json:"activeAt"`
	Value    string    `json:"value,omitempty"`
}

// Alert states.
const (
	StatePending = "pending"
	StateFiring  = "firing"
)

// String names the alert with its labels (alertname left out), sorted:
// PaymentServiceHighErrorRate{namespace="staging", severity="critical"}.
func (a Alert) String() string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		if k != "alertname" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, a.Labels[k]))
	}
	return a.Name + "{" + strings.Join(parts, ", ") + "}"
}

// Client reads alerts from any Prometheus (the environment's, or an
// existing one named by URL).
type Client struct {
	URL string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
}

// APIError is an answer of the Prometheus API that is not a success.
type APIError struct {
	URL    string
	Status int
	Msg    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("prometheus %s: HTTP %d: %s", e.URL, e.Status, e.Msg)
}

// Alerts returns the pending and firing alerts, firing first, then by name.
func (c Client) Alerts(ctx context.Context) ([]Alert, error) {
	u, err := url.Parse(strings.TrimRight(c.URL, "/") + "/api/v1/alerts")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://host:port", c.URL)
	}
	shown := redact(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", shown, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", shown, err) // net/http strips the password from its errors
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", shown, err)
	}
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Alerts []struct {
				Labels   map[string]string `json:"labels"`
				State    string            `json:"state"`
				ActiveAt time.Time         `json:"activeAt"`
				Value    string            `json:"value"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != http.StatusOK || doc.Status != "success" {
		msg := doc.Error
		if msg == "" {
			msg = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		return nil, &APIError{URL: shown, Status: resp.StatusCode, Msg: msg}
	}
	out := make([]Alert, 0, len(doc.Data.Alerts))
	for _, a := range doc.Data.Alerts {
		out = append(out, Alert{Name: a.Labels["alertname"], State: a.State, Labels: a.Labels, ActiveAt: a.ActiveAt, Value: a.Value})
	}
	slices.SortStableFunc(out, func(a, b Alert) int {
		if (a.State == StateFiring) != (b.State == StateFiring) {
			if a.State == StateFiring {
				return -1
			}
			return 1
		}
		return strings.Compare(a.String(), b.String())
	})
	return out, nil
}

// redact hides a password in the URL (basic auth of a real Prometheus).
func redact(u *url.URL) string {
	return u.Redacted()
}

// WaitScraped waits until Prometheus has scraped each of its targets at
// least once (none is in health "unknown"), so that rules evaluate real
// samples; it returns the targets that are down, by address.
func (s *Server) WaitScraped(ctx context.Context, want int) (down []string, err error) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		down, done, err := s.targetsScraped(ctx, want)
		if err == nil && done {
			return down, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not every target was scraped")
			}
			return nil, fmt.Errorf("wait for the first scrape of %s: %w (%w)", s.cfg.Environment, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (s *Server) targetsScraped(ctx context.Context, want int) (down []string, done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/api/v1/targets?state=active", nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	var doc struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Labels    struct {
					Instance string `json:"instance"`
				} `json:"labels"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&doc); err != nil {
		return nil, false, fmt.Errorf("read targets: %w", err)
	}
	ts := doc.Data.ActiveTargets
	if len(ts) < want {
		return nil, false, fmt.Errorf("%d of %d targets known", len(ts), want)
	}
	for _, t := range ts {
		switch t.Health {
		case "unknown", "":
			return nil, false, fmt.Errorf("%s not scraped yet", t.Labels.Instance)
		case "down":
			down = append(down, t.Labels.Instance+": "+t.LastError)
		}
	}
	return down, true, nil
}
