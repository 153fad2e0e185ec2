package engine_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/step"
)

// leakKind hands the secret it is given to every channel a step has:
// its logger, and outputs of many types.
type leakKind struct{}

type leakReport struct {
	Token string   `json:"token"`
	Tags  []string `json:"tags"`
}

func (leakKind) kind() step.Kind {
	return step.Kind{
		Name: "leak", AnyOutputs: true,
		New: func(step.Inputs) (step.Step, error) { return leakStep{}, nil },
	}
}

type leakStep struct{}

func (leakStep) Run(_ context.Context, env *step.Env) (*step.Result, error) {
	var token string
	for _, kv := range env.Vars {
		if v, ok := strings.CutPrefix(kv, "TOKEN="); ok {
			token = v
		}
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(token))
	esc := url.QueryEscape(token)
	env.Log.Info("logging "+token, "plain", token, "b64", b64, "url", esc,
		"nested", map[string]any{"k": []any{token}}, "err", &url.Error{Op: "Get", URL: "https://x.example/?t=" + esc, Err: context.Canceled})
	env.Log.With("preset", token).Warn("with attrs")
	return &step.Result{Summary: "leaked", Outputs: map[string]any{
		"strings":    map[string]string{"k": token},
		"list":       []any{b64, []string{esc}},
		"maps":       []map[string]any{{"k": token}},
		"struct":     leakReport{Token: token, Tags: []string{b64}},
		"bytes":      []byte(token),
		"deep":       map[string]any{"a": map[string]any{"b": []any{map[string]string{"c": esc}}}},
		"string":     token,
		"stringlist": []string{token},
	}}, nil
}

// TestStepLoggerAndOutputsAreMasked: what a step writes to its logger and
// every output type it returns are masked, in the plain, base64 and
// URL-encoded forms of the secret.
func TestStepLoggerAndOutputsAreMasked(t *testing.T) {
	const secret = "hunter2/very+secret&token"
	t.Setenv("TEST_LEAK_SECRET", secret)
	var mu sync.Mutex
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, engine.WithKinds([]step.Kind{leakKind{}.kind()}), engine.WithLogger(logger))
	p := f.pipeline(`name: demo
secrets:
  TOKEN: {env: TEST_LEAK_SECRET}
stages:
  - name: s
    steps:
      - {name: leak, uses: leak, secrets: [TOKEN]}
`)
	res := f.run(context.Background(), p, engine.Request{})
	forms := map[string]string{
		"plain":  secret,
		"base64": base64.StdEncoding.EncodeToString([]byte(secret)),
		"url":    url.QueryEscape(secret),
	}
	mu.Lock()
	logged := logBuf.String()
	mu.Unlock()
	outs, err := json.Marshal(f.steps(res.RunID)["s/leak"].Outputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range []struct{ name, text string }{{"step logger", logged}, {"stored outputs", string(outs)}} {
		for form, v := range forms {
			if strings.Contains(where.text, v) {
				t.Errorf("%s leak the %s form of the secret:\n%s", where.name, form, where.text)
			}
		}
		if !strings.Contains(where.text, "***") {
			t.Errorf("%s: want masked values in\n%s", where.name, where.text)
		}
	}
	if !strings.Contains(logged, "logging ***") {
		t.Errorf("step logger: want the masked message, got\n%s", logged)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestArtifactsAreMasked: the files a step declares as artifacts are
// stored with the run's secrets hidden, in every form the logs hide
// them, so that no download or report of the run holds a secret; a
// file without a secret is stored as it is.
func TestArtifactsAreMasked(t *testing.T) {
	const secret = "artifact-secret/value+42"
	t.Setenv("TEST_SECRET_VALUE", secret)
	f := newFixture(t)
	p := f.pipeline(`name: demo
secrets:
  TOKEN: {env: TEST_SECRET_VALUE}
stages:
  - name: s
    steps:
      - name: leak
        secrets: [TOKEN]
        artifacts: [out/*]
        run: |
          mkdir -p out
          printf 'token=%s\n' "$TOKEN" > out/plain.txt
          printf '%s' "$TOKEN" | base64 > out/b64.txt
          printf '{"t": "%s"}' "$TOKEN" > out/report.json
          printf 'nothing secret here\n' > out/clean.txt
`)
	res := f.run(context.Background(), p, engine.Request{})
	arts, err := f.store.StepArtifacts(context.Background(), res.RunID, "s", "leak")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"out/plain.txt":   "token=***\n",
		"out/b64.txt":     "***\n",
		"out/report.json": `{"t": "***"}`,
		"out/clean.txt":   "nothing secret here\n",
	}
	if len(arts) != len(want) {
		t.Fatalf("artifacts: got %d, want %d: %v", len(arts), len(want), arts)
	}
	for _, a := range arts {
		rc, err := f.arts.Open(a.Digest)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := b.String(); got != want[a.Name] {
			t.Errorf("artifact %s: got %q, want %q", a.Name, got, want[a.Name])
		}
		if a.Size != int64(b.Len()) {
			t.Errorf("artifact %s: recorded size %d, stored %d bytes", a.Name, a.Size, b.Len())
		}
	}
	logs := f.allLogs(res.RunID)
	for _, name := range []string{"out/plain.txt", "out/b64.txt", "out/report.json"} {
		if want := "artifact " + name + " held a secret"; !strings.Contains(logs, want) {
			t.Errorf("the step's log does not say %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "out/clean.txt") {
		t.Errorf("the step's log names the artifact without a secret:\n%s", logs)
	}
}
