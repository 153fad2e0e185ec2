package analysis

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestSecretsAreMaskedInEveryForm: a secret argument that comes back in a
// measurement (plain, base64 or URL-encoded) is masked in the recorded
// values, messages and the debug log.
func TestSecretsAreMaskedInEveryForm(t *testing.T) {
	const secret = "tok3n/with+odd&chars"
	forms := map[string]string{
		"plain":  secret,
		"base64": base64.StdEncoding.EncodeToString([]byte(secret)),
		"url":    url.QueryEscape(secret),
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]any{"echo": "seen " + form})
			}))
			defer srv.Close()
			src := "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  args:\n  - name: tok\n    valueFrom: {secretKeyRef: {name: web, key: tok}}\n  metrics:\n" +
				"  - {name: m, successCondition: \"result.echo == 'x'\", provider: {web: {url: '" + srv.URL + "/?t={{args.tok}}'}}}\n"
			tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
			if err != nil {
				t.Fatal(err)
			}
			var logBuf bytes.Buffer
			env := []string{SecretEnvName("web", "tok") + "=" + secret}
			run, err := Execute(context.Background(), tmpl, Options{
				Secret: SecretsFromEnv(env),
				Log:    slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Metrics[0].Measurements) == 0 {
				t.Fatalf("no measurement: %+v", run)
			}
			got, _ := json.Marshal(run)
			text := string(got) + logBuf.String()
			for f, v := range forms {
				if strings.Contains(text, v) {
					t.Errorf("the %s form of the secret leaked:\n%s", f, text)
				}
			}
			if !strings.Contains(text, "seen ***") {
				t.Errorf("want the masked value recorded, got\n%s", text)
			}
		})
	}
}

// TestJobEnvSecretsAreMasked: a secret a job provider receives through its
// env (not an argument) is masked in what the job prints.
func TestJobEnvSecretsAreMasked(t *testing.T) {
	const secret = "j0b-secret-value"
	src := "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  metrics:\n" +
		"  - {name: j, provider: {job: {spec: {template: {spec: {containers: [{name: c, image: x, command: [sh, -c], args: ['echo got $TOK; exit 3'], " +
		"env: [{name: TOK, valueFrom: {secretKeyRef: {name: job, key: tok}}}]}]}}}}}}\n"
	tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{SecretEnvName("job", "tok") + "=" + secret}
	run, err := Execute(context.Background(), tmpl, Options{Secret: SecretsFromEnv(env)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(run)
	if strings.Contains(string(got), secret) {
		t.Errorf("job env secret leaked:\n%s", got)
	}
	if !strings.Contains(string(got), "got ***") {
		t.Errorf("want the job's masked output recorded, got\n%s", got)
	}
}
