// Package githubstatus posts commit statuses through GitHub's statuses
// API (POST /repos/{owner}/{repo}/statuses/{sha}), which GitHub
// Enterprise and Gitea serve too, so that a pull request cannot merge
// until gantry's stages are green. One context per stage
// ("gantry/commit", "gantry/build-test", ...).
package githubstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is github.com's API.
const DefaultBaseURL = "https://api.github.com"

// State is a commit status state.
type State string

// States GitHub accepts.
const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
	Error   State = "error"
)

// Status is one commit status.
type Status struct {
	State State
	// Context names the check, e.g. "gantry/commit".
	Context     string
	Description string
	// TargetURL links to the run, if any.
	TargetURL string
}

// Client posts statuses.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Option configures a Client.
type Option func(*Client) error

// WithBaseURL sets the API base: https://api.github.com (default),
// https://HOST/api/v3 for GitHub Enterprise, https://HOST/api/v1 for
// Gitea.
func WithBaseURL(raw string) Option {
	return func(c *Client) error {
		u, err := url.Parse(strings.TrimRight(raw, "/"))
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("status API base URL %q: want an absolute http(s) URL", raw)
		}
		c.base = u
		return nil
	}
}

// WithHTTPClient sets the HTTP client (default: 30 s timeout).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error {
		if h == nil {
			return errors.New("nil HTTP client")
		}
		c.http = h
		return nil
	}
}

// New returns a client authenticating with token.
func New(token string, opts ...Option) (*Client, error) {
	if token == "" {
		return nil, errors.New("commit statuses need a token")
	}
	base, _ := url.Parse(DefaultBaseURL)
	c := &Client{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// APIError is a non-2xx answer from the API.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("status API answered %d: %s", e.StatusCode, e.Message)
}

// Temporary reports whether retrying may help (5xx, 429).
func (e *APIError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// StageContext is the status context of a pipeline stage.
func StageContext(stage string) string { return "gantry/" + stage }

// Post sets the status of commit sha in repo ("owner/name").
func (c *Client) Post(ctx context.Context, repo, sha string, s Status) error {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("post commit status: repository %q is not owner/name", repo)
	}
	if sha == "" {
		return errors.New("post commit status: no commit SHA")
	}
	switch s.State {
	case Pending, Success, Failure, Error:
	default:
		return fmt.Errorf("post commit status: unknown state %q", s.State)
	}
	desc := s.Description
	if r := []rune(desc); len(r) > 140 { // GitHub's limit
		desc = string(r[:139]) + "…"
	}
	body, err := json.Marshal(map[string]string{
		"state": string(s.State), "context": s.Context, "description": desc, "target_url": s.TargetURL,
	})
	if err != nil {
		return err
	}
	u := c.base.JoinPath("repos", owner, name, "statuses", sha)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post commit status: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gantry")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post commit status %s for %s@%s: %w", s.Context, repo, short(sha), redact(err, c.token))
	}
	defer func() { _ = resp.Body.Close() }() // read fully below; nothing to report
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		return fmt.Errorf("post commit status %s for %s@%s: %w", s.Context, repo, short(sha),
			&APIError{StatusCode: resp.StatusCode, Message: strings.ReplaceAll(msg, c.token, "***")})
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// redact keeps the token out of transport errors.
func redact(err error, token string) error {
	if !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "***"))
}
