package notify

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
)

// TestErrorsNeverHoldTheWebhookToken: the webhook URL is a secret; a
// receiver that echoes it back (plain, base64 or URL-encoded) in an error
// answer does not get it into gantry's error messages.
func TestErrorsNeverHoldTheWebhookToken(t *testing.T) {
	const token = "XXsEcReTtOkEn1234567890"
	forms := map[string]func(string) string{
		"plain":  func(s string) string { return s },
		"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"url":    url.QueryEscape,
	}
	for name, enc := range forms {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(w, "no such hook "+enc(r.URL.Path)+" "+enc(r.URL.Query().Get("k")), http.StatusNotFound)
			}))
			defer srv.Close()
			hook := srv.URL + "/services/T0/B0/" + token + "?k=" + token
			err := NewWebhook(WithRetries(1, 0)).Notify(context.Background(), hook, engine.Notification{Pipeline: "p", Stage: "s", Message: "m"})
			if err == nil {
				t.Fatal("Notify to a 404 hook: want an error")
			}
			for form, f := range forms {
				if strings.Contains(err.Error(), f(token)) {
					t.Errorf("error %q holds the %s form of the webhook token", err, form)
				}
			}
			if !strings.Contains(err.Error(), "404") {
				t.Errorf("error %q: want the status in it", err)
			}
		})
	}
}

// TestPayloadIsMasked: text that reaches the message (a message quoting
// the hook's URL) is masked with the hook's secret parts.
func TestPayloadIsMasked(t *testing.T) {
	const token = "XXsEcReTtOkEn1234567890"
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
	}))
	defer srv.Close()
	hook := srv.URL + "/services/T0/B0/" + token
	n := engine.Notification{Pipeline: "p", Stage: "s", Message: "curl " + hook + " failed", Branch: token}
	if err := NewWebhook(WithRetries(1, 0)).Notify(context.Background(), hook, n); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, token) {
		t.Errorf("payload holds the webhook token:\n%s", body)
	}
	if !strings.Contains(body, "***") {
		t.Errorf("payload: want masked text in\n%s", body)
	}
}
