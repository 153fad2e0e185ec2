package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// historyLine is one revision of `gantry env history -o json`.
type historyLine struct {
	Number  int    `json:"number"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (e *env) history(name string) []historyLine {
	e.t.Helper()
	r := e.gantry("env", "history", name, "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("gantry env history %s: exit %d: %s", name, r.code, r.stderr)
	}
	var out []historyLine
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("gantry env history -o json: %v\n%s", err, r.stdout)
	}
	return out
}

// edit replaces old by new in the repository's file name, failing when
// old is not there.
func (e *env) edit(name, old, new string) {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.repo, name))
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		e.t.Fatalf("%s has no %q", name, old)
	}
	e.write(name, strings.Replace(string(b), old, new, 1))
}

// TestDeployFaultsKeepPreviousServing drives the bad inputs and
// faults through `gantry deploy` against a staging that serves v1: a
// probe path that answers 404, a chart that does not render, a policy
// file that does not parse, and a deploy while another deploy of staging
// is in progress. Each fails with an error naming the file and field or
// the instance, v1 keeps serving on the same URL, and every revision
// recorded before is still in the history.
func TestDeployFaultsKeepPreviousServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and deploys a service")
	}
	t.Setenv("GANTRY_ISOLATION", "process")
	e := newEnv(t)
	deployRepo(t, e)
	e.version("v1", true, 200)
	if r := e.gantry("run", "--progress", "plain"); r.code != 0 {
		t.Fatalf("run v1: exit %d\n%s\n%s", r.code, tail(r.stdout, 40), r.stderr)
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Current == nil {
		t.Fatalf("gantry env ls: got %+v, want staging serving", envs)
	}
	url, served := envs[0].URL, *envs[0].Current
	_, push, _ := e.show(1).step("build", "push")
	image, _ := push["image"].(string)
	if !strings.Contains(image, "@"+served.Digest) {
		t.Fatalf("pushed image %q, want it by the serving digest %s", image, served.Digest)
	}
	const chart = "deploy/chart/templates/deployment.yaml"
	pristine, err := os.ReadFile(filepath.Join(e.repo, chart))
	if err != nil {
		t.Fatal(err)
	}
	pipeline, err := os.ReadFile(filepath.Join(e.repo, ".gantry", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		e.write(chart, string(pristine))
		e.write(".gantry/pipeline.yaml", string(pipeline))
	}
	stillV1 := func(after string, wantRevisions int) {
		t.Helper()
		if got := strings.TrimSpace(waitAnswers(t, url+"/", 10*time.Second)); got != "v1" {
			t.Errorf("after %s: GET / = %q, want v1", after, got)
		}
		envs := e.envs()
		if len(envs) != 1 || envs[0].URL != url || envs[0].Current == nil || envs[0].Current.Number != served.Number {
			t.Errorf("after %s: gantry env ls = %+v, want staging at %s serving revision %d", after, envs, url, served.Number)
		}
		if h := e.history("staging"); len(h) != wantRevisions || h[0].Number != 1 || h[0].Status != "serving" {
			t.Errorf("after %s: history = %+v, want %d revisions, revision 1 serving", after, h, wantRevisions)
		}
	}
	deploy := func() result {
		t.Helper()
		r := e.gantry("deploy", image, "--env", "staging")
		t.Logf("gantry deploy: exit %d: %s", r.code, strings.TrimSpace(r.stdout+r.stderr))
		return r
	}

	t.Run("probe path answers 404", func(t *testing.T) {
		defer restore()
		e.edit(chart, "httpGet: {path: /readyz, port: http}", "httpGet: {path: /nope, port: http}")
		r := deploy()
		if r.code != 1 {
			t.Errorf("deploy: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"did not become ready", "staging-r2-", "GET /nope: 404"} {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("deploy output lacks %q:\n%s%s", want, r.stdout, r.stderr)
			}
		}
		stillV1("a probe path that answers 404", 2)
		if h := e.history("staging"); len(h) == 2 && (h[1].Status != "failed" || !strings.Contains(h[1].Message, "GET /nope: 404")) {
			t.Errorf("revision 2: got %+v, want failed with the probe's answer", h[1])
		}
	})

	t.Run("chart does not render", func(t *testing.T) {
		defer restore()
		e.edit(chart, "replicas: {{ .Values.replicaCount }}", "replicas: {{ required \"replicaCount is required\" .Values.replicas }}")
		r := deploy()
		if r.code == 0 {
			t.Errorf("deploy: exit 0, want a failure\n%s", r.stdout)
		}
		for _, want := range []string{chart, "replicaCount is required"} {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("deploy output lacks %q:\n%s%s", want, r.stdout, r.stderr)
			}
		}
		stillV1("a chart that does not render", 2)
	})

	t.Run("policy does not parse", func(t *testing.T) {
		defer restore()
		e.edit(".gantry/pipeline.yaml", "  staging: {}\n", "  staging: {policy: [policy.yaml]}\n")
		b, err := os.ReadFile(filepath.Join(e.repo, "policy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		defer e.write("policy.yaml", string(b))
		e.edit("policy.yaml", "validationFailureAction: Enforce", "validationFailureAction: Enforce\n  rules: [")
		r := deploy()
		if r.code != 1 {
			t.Errorf("deploy: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"admission refused", "policy does not parse", "policy.yaml:"} {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("deploy output lacks %q:\n%s%s", want, r.stdout, r.stderr)
			}
		}
		stillV1("a policy that does not parse", 3)
		if h := e.history("staging"); len(h) == 3 && (h[2].Status != "refused" || !strings.Contains(h[2].Message, "policy does not parse")) {
			t.Errorf("revision 3: got %+v, want refused, saying the policy does not parse", h[2])
		}
	})

	t.Run("deploy while another is in progress", func(t *testing.T) {
		defer restore()
		// The first deploy's instances take a few seconds to be ready.
		e.edit(chart, "periodSeconds: 1\n", "periodSeconds: 1\n            initialDelaySeconds: 5\n")
		first := make(chan result, 1)
		go func() { first <- e.gantry("deploy", image, "--env", "staging") }() // waited for below
		for i := 0; ; i++ {
			h := e.history("staging")
			if len(h) == 4 && h[3].Status == "deploying" {
				break
			}
			if i > 300 {
				t.Fatalf("the first deploy never showed as deploying: %+v", h)
			}
			time.Sleep(50 * time.Millisecond)
		}
		second := deploy()
		r := <-first
		if r.code != 0 {
			t.Errorf("first deploy: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
		}
		if second.code != 1 || !strings.Contains(second.stdout+second.stderr, "another deploy of this environment is in progress") {
			t.Errorf("second deploy: exit %d, want 1 saying another deploy is in progress\n%s%s", second.code, second.stdout, second.stderr)
		}
		h := e.history("staging")
		if len(h) != 4 || h[0].Number != 1 || h[3].Status != "serving" {
			t.Errorf("history = %+v, want the 3 earlier revisions and revision 4 serving", h)
		}
		if got := strings.TrimSpace(waitAnswers(t, url+"/", 10*time.Second)); got != "v1" {
			t.Errorf("after the deploys: GET / = %q, want v1", got)
		}
	})
}
