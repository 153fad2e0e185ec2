// Package notify posts failure notifications to webhooks. Messages are
// Slack Block Kit payloads (a text fallback plus blocks), which Slack
// incoming webhooks render and any other webhook receives as JSON.
package notify

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

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/mask"
)

// Webhook delivers notifications with retries.
type Webhook struct {
	client   *http.Client
	attempts int
	backoff  time.Duration
	runURL   func(runID int64) string
}

var _ engine.Notifier = (*Webhook)(nil)

// Option configures a Webhook.
type Option func(*Webhook)

// WithClient sets the HTTP client (default: 10 s timeout).
func WithClient(c *http.Client) Option { return func(w *Webhook) { w.client = c } }

// WithRetries sets how many attempts are made (default 4) and the first
// backoff, doubled after each attempt (default 1 s).
func WithRetries(attempts int, backoff time.Duration) Option {
	return func(w *Webhook) {
		if attempts > 0 {
			w.attempts = attempts
		}
		if backoff >= 0 {
			w.backoff = backoff
		}
	}
}

// WithRunURL links each message to the run (e.g. the web UI's page).
func WithRunURL(f func(runID int64) string) Option { return func(w *Webhook) { w.runURL = f } }

// NewWebhook returns a notifier.
func NewWebhook(opts ...Option) *Webhook {
	w := &Webhook{client: &http.Client{Timeout: 10 * time.Second}, attempts: 4, backoff: time.Second}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Notify implements engine.Notifier. Errors never include the webhook URL,
// which usually is a secret.
func (w *Webhook) Notify(ctx context.Context, webhook string, n engine.Notification) error {
	u, err := url.Parse(webhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL is not an http(s) URL")
	}
	m := hookMasker(webhook, u)
	body, err := json.Marshal(m.Value(w.payload(n)))
	if err != nil {
		return err
	}
	backoff := w.backoff
	var lastErr error
	for attempt := 1; attempt <= w.attempts; attempt++ {
		retry, err := w.post(ctx, webhook, body)
		if err == nil {
			return nil
		}
		lastErr = errors.New(m.Mask(err.Error()))
		if !retry || attempt == w.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("notify %s: %w (last error: %v)", u.Host, ctx.Err(), lastErr)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return fmt.Errorf("notify %s: %w", u.Host, lastErr)
}

// hookMasker hides the parts of a webhook URL that carry its secret: the
// URL itself, its path and each longer path segment, its query values and
// its password, wherever a receiver's answer or a message repeats them.
func hookMasker(webhook string, u *url.URL) *mask.Masker {
	m := mask.New(webhook, u.Path, u.RawQuery)
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= minSecretSegment {
			m.Add(seg)
		}
	}
	for _, vals := range u.Query() {
		for _, v := range vals {
			m.Add(v)
		}
	}
	if p, ok := u.User.Password(); ok {
		m.Add(p)
	}
	return m
}

// minSecretSegment is the shortest path segment of a webhook URL taken to
// be (part of) its secret; shorter ones ("services", "hooks") are common
// words, longer ones are tokens.
const minSecretSegment = 9

func (w *Webhook) post(ctx context.Context, webhook string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build request")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// Drop the URL from transport errors.
		var ue *url.Error
		if errors.As(err, &ue) {
			return true, fmt.Errorf("post: %v", ue.Err)
		}
		return true, fmt.Errorf("post failed")
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}

// payload renders the Block Kit message.
func (w *Webhook) payload(n engine.Notification) map[string]any {
	short := n.SHA
	if len(short) > 12 {
		short = short[:12]
	}
	title := fmt.Sprintf("%s: stage %s failed", n.Pipeline, n.Stage)
	fields := []map[string]any{
		{"type": "mrkdwn", "text": "*Pipeline*\n" + n.Pipeline},
		{"type": "mrkdwn", "text": "*Stage*\n" + n.Stage},
		{"type": "mrkdwn", "text": "*Commit*\n`" + orNone(short) + "`"},
		{"type": "mrkdwn", "text": "*Branch*\n" + orNone(n.Branch)},
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": title}},
		{"type": "section", "fields": fields},
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*Why*\n" + n.Message}},
	}
	if len(n.FailedSteps) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{
			"type": "mrkdwn", "text": "*Failed steps*\n• " + strings.Join(n.FailedSteps, "\n• "),
		}})
	}
	run := fmt.Sprintf("run %d", n.RunID)
	if w.runURL != nil {
		run = fmt.Sprintf("<%s|run %d>", w.runURL(n.RunID), n.RunID)
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{
		{"type": "mrkdwn", "text": "gantry " + run},
	}})
	return map[string]any{"text": title + ": " + n.Message, "blocks": blocks}
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
