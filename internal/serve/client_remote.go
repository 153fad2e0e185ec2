package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/runview"
)

// ErrInsecureServer is returned by NewRemote for a plain-HTTP URL of a
// host that is not the loopback: the token would cross the network in
// clear.
var ErrInsecureServer = errors.New("the server URL must be https:// (plain http:// only for the loopback)")

// NewRemote returns a client of the gantry server at serverURL (https://,
// or http:// on the loopback) that authenticates with the API token.
func NewRemote(serverURL, token string) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: want scheme://host[:port][/path] without user, query or fragment", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("server URL %s: %w", u.Redacted(), ErrInsecureServer)
		}
	default:
		return nil, fmt.Errorf("server URL %s: %w", u.Redacted(), ErrInsecureServer)
	}
	if token == "" {
		return nil, errors.New("no API token (set GANTRY_TOKEN or --token-file; gantry token create makes one)")
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("the API token contains white space; check the token file")
	}
	root := strings.TrimSuffix(u.String(), "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	return &Client{
		stateDir: "",
		hc:       &http.Client{Transport: &bearer{next: tr, token: token, scheme: u.Scheme, host: u.Host}},
		base:     root + "/api/v1",
		remote:   root,
	}, nil
}

// loopback reports whether host names the loopback interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer adds the token to requests to the server only (never to a host
// a redirect points at).
type bearer struct {
	next         http.RoundTripper
	token        string
	scheme, host string
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == b.scheme && r.URL.Host == b.host {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

// Server is the URL of the remote server ("" for the socket).
func (c *Client) Server() string { return c.remote }

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	Status, Branch, Pipeline string
	Since                    time.Time
	// Limit is how many runs to return at most (0: all).
	Limit int
}

// ListRuns returns the runs the filter selects, newest first, reading
// as many pages as it needs.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) ([]runview.Run, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "branch": f.Branch, "pipeline": f.Pipeline} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	out := []runview.Run{}
	for {
		limit := maxLimit
		if f.Limit > 0 && f.Limit-len(out) < limit {
			limit = f.Limit - len(out)
		}
		q.Set("limit", strconv.Itoa(limit))
		var page Page[runview.Run]
		if err := c.do(ctx, http.MethodGet, "/runs?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" || (f.Limit > 0 && len(out) >= f.Limit) {
			return out, nil
		}
		q.Set("cursor", page.Next)
	}
}

// Run returns run id with its stages, steps and approvals.
func (c *Client) Run(ctx context.Context, id int64) (*runview.Show, error) {
	var v runview.Show
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/runs/%d", id), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func logQuery(stage, step string) url.Values {
	q := url.Values{}
	if stage != "" {
		q.Set("stage", stage)
		q.Set("step", step)
	}
	return q
}

// RunLogs returns run id's log, or one step's when stage and step are
// set.
func (c *Client) RunLogs(ctx context.Context, id int64, stage, step string) ([]runview.LogLine, error) {
	q := logQuery(stage, step)
	var out []runview.LogLine
	for {
		var page Page[runview.LogLine]
		if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/runs/%d/logs?%s", id, q.Encode()), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		q.Set("after", page.Next)
	}
}

// followRetries bounds how many times FollowLogs reconnects after the
// connection drops without the stream's end.
const followRetries = 5

// FollowLogs calls f with each line of run id's log (one step's, when
// stage and step are set) as the server streams it, from the start,
// until the run ends or waits (the step ends), reconnecting with
// Last-Event-ID when the connection drops. It returns the status the
// stream ended with; nil error when ctx ends.
func (c *Client) FollowLogs(ctx context.Context, id int64, stage, step string, f func(runview.LogLine)) (string, error) {
	target := fmt.Sprintf("%s/runs/%d/logs/stream?%s", c.base, id, logQuery(stage, step).Encode())
	lastID := ""
	var lastErr error
	for attempt := 0; attempt <= followRetries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", nil
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		status, ended, err := c.followOnce(ctx, target, &lastID, f)
		if ctx.Err() != nil {
			return "", nil
		}
		if ended || err != nil && !errors.Is(err, errDropped) {
			return status, err
		}
		lastErr = err
	}
	return "", fmt.Errorf("follow the log of run %d: %w", id, lastErr)
}

// errDropped: the stream ended without its end event.
var errDropped = errors.New("the log stream ended early")

func (c *Client) followOnce(ctx context.Context, target string, lastID *string, f func(runview.LogLine)) (string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", errDropped, c.transportErr(ctx, "follow logs", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", false, decodeError(resp)
	}
	var status string
	var ended bool
	var ferr error
	err = readEvents(resp.Body, func(ev sseEvent) bool {
		switch ev.name {
		case "line":
			var l runview.LogLine
			if ferr = json.Unmarshal([]byte(ev.data), &l); ferr != nil {
				ferr = fmt.Errorf("decode a log line: %w", ferr)
				return false
			}
			f(l)
			if ev.id != "" {
				*lastID = ev.id
			}
		case "end":
			var e LogEnd
			_ = json.Unmarshal([]byte(ev.data), &e)
			status, ended = string(e.Status), true
			return false
		case "error":
			var body errorBody
			if json.Unmarshal([]byte(ev.data), &body) != nil {
				body = errorBody{Code: CodeInternal, Message: "the log stream failed"}
			}
			ferr = newAPIError(http.StatusInternalServerError, body)
			return false
		}
		return true
	})
	if ferr != nil {
		return "", false, ferr
	}
	if ended {
		return status, true, nil
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	return "", false, fmt.Errorf("%w: %w", errDropped, err)
}

// Decide records a decision on run id's approval of stage.
func (c *Client) Decide(ctx context.Context, id int64, stage string, req DecisionRequest) (DecisionResponse, error) {
	var resp DecisionResponse
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/runs/%d/approvals/%s", id, url.PathEscape(stage)), req, &resp)
	return resp, err
}
