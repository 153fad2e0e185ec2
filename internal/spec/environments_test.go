package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
	"github.com/gantry-ci/gantry/schema"
)

// envRepo makes a repository with a chart, a values file and a policy.
func envRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"deploy/chart/Chart.yaml":        "apiVersion: v2\nname: x\nversion: 0.1.0\n",
		"deploy/chart/values-local.yaml": "replicaCount: 1\n",
		"deploy/policy.yaml":             "kind: ClusterPolicy\n",
		"deploy/alerts.yaml":             "groups: []\n",
		"cosign.pub":                     "key\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const envStages = "stages:\n  - name: s\n    steps: [{name: a, run: 'true'}]\n"

func TestParseEnvironmentsGood(t *testing.T) {
	repo := envRepo(t)
	src := `name: p
env: {TEAM: payments}
environments:
  staging:
    values: [deploy/chart/values-local.yaml]
    set: {replicaCount: 2, image.pullPolicy: Never, config.LOG_LEVEL: debug, 'podAnnotations.prometheus\.io/scrape': "false"}
    services: [postgres, redis]
    env: {WEBHOOK_SINK: "http://sink/${git.short_sha}", OWNER: "${env.TEAM}"}
    policy: [deploy/policy.yaml]
    require: [tests, vuln-scan]
    key: cosign.pub
    prometheus: {rules: [deploy/alerts.yaml]}
  prod:
    chart: deploy/chart
    prometheus: {url: "http://prometheus:9090"}
    port_env: HTTP_PORT
` + envStages + "    on_failure: [{rollback: staging}]\n"
	reg := NewRegistry(nil, []string{"postgres", "redis", "sqs"})
	reg.Gates = []string{"tests", "vuln-scan"}
	p, err := Parse("pipeline.yaml", []byte(src), reg, WithRepository(repo))
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.FindEnvironment("staging")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"chart default", st.Chart, DefaultChart},
		{"runtime default", st.Runtime, RuntimeLocal},
		{"port_env default", st.PortEnv, "PORT"},
		{"values", Files(st.Values), []string{"deploy/chart/values-local.yaml"}},
		{"services", Files(st.Services), []string{"postgres", "redis"}},
		{"require", Files(st.Require), []string{"tests", "vuln-scan"}},
		{"rules", Files(st.Prometheus.Rules), []string{"deploy/alerts.yaml"}},
		{"prod port_env", p.Environments["prod"].PortEnv, "HTTP_PORT"},
		{"prod url", p.Environments["prod"].Prometheus.URL, "http://prometheus:9090"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
	set, err := st.SetValues()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"replicaCount": 2, "image.pullPolicy": "Never", "config.LOG_LEVEL": "debug", `podAnnotations.prometheus\.io/scrape`: "false"}; !reflect.DeepEqual(set, want) {
		t.Errorf("set: got %v, want %v", set, want)
	}
	env, err := st.ResolveEnv(EnvironmentExprEnv(step.Git{SHA: "0123456789abcdef0123"}, "7", "p", map[string]string{"TEAM": "payments"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"OWNER=payments", "WEBHOOK_SINK=http://sink/0123456789ab"}; !slices.Equal(env, want) {
		t.Errorf("env: got %v, want %v", env, want)
	}
	if _, err := p.FindEnvironment("qa"); !errors.Is(err, ErrEnvironmentNotFound) || !strings.Contains(err.Error(), "prod, staging") {
		t.Errorf("FindEnvironment(qa): got %v, want ErrEnvironmentNotFound naming prod, staging", err)
	}
}

func TestParseEnvironmentsErrors(t *testing.T) {
	repo := envRepo(t)
	tests := []struct {
		name    string
		envs    string
		wantErr string
		is      error
	}{
		{"bad name", "  Staging: {}\n", `pipeline.yaml:3:12: environment name "Staging" must start with a lower-case letter`, nil},
		{"unknown runtime", "  prod: {runtime: nomad}\n", `unknown runtime "nomad" (known: local, kubernetes)`, nil},
		{"kubernetes block on local", "  prod:\n    kubernetes: {namespace: pay}\n", "pipeline.yaml:4:17: environment prod: kubernetes: is read only by runtime: kubernetes (this environment runs on the local runtime)", nil},
		{"services on kubernetes", "  prod:\n    runtime: kubernetes\n    services: [redis]\n", "pipeline.yaml:5:15: environment prod: services: is read only by the local runtime and would do nothing on runtime: kubernetes", nil},
		{"port_env on kubernetes", "  prod: {runtime: kubernetes, port_env: HTTP_PORT}\n", "pipeline.yaml:3:41: environment prod: port_env: is read only by the local runtime", nil},
		{"env on kubernetes", "  prod:\n    runtime: kubernetes\n    env: {A: b}\n", "pipeline.yaml:5:10: environment prod: env: is read only by the local runtime", nil},
		{"prometheus rules on kubernetes", "  prod:\n    runtime: kubernetes\n    prometheus: {rules: [deploy/alerts.yaml]}\n", "pipeline.yaml:5:25: environment prod: prometheus.rules: are loaded into a Prometheus the local runtime runs", nil},
		{"bad namespace", "  prod:\n    runtime: kubernetes\n    kubernetes: {namespace: Pay_Ments}\n", `pipeline.yaml:5:29: environment prod: kubernetes.namespace "Pay_Ments" is not a namespace name`, nil},
		{"bad release", "  prod:\n    runtime: kubernetes\n    kubernetes: {release: \"pay ments\"}\n", `pipeline.yaml:5:27: environment prod: kubernetes.release "pay ments" is not a Helm release name`, nil},
		{"long release", "  prod:\n    runtime: kubernetes\n    kubernetes: {release: " + strings.Repeat("a", 54) + "}\n", `is not a Helm release name (lower-case letters, digits, - and ., at most 53)`, nil},
		{"negative timeout", "  prod:\n    runtime: kubernetes\n    kubernetes: {timeout: -1m}\n", `pipeline.yaml:5:27: duration "-1m" must not be negative`, nil},
		{"bad image value path", "  prod:\n    runtime: kubernetes\n    kubernetes: {image_values: {digest: \"image..digest\"}}\n", `pipeline.yaml:5:41: environment prod: kubernetes.image_values.digest "image..digest" must be a dotted values path`, nil},
		{"same image values", "  prod:\n    runtime: kubernetes\n    kubernetes: {image_values: {repository: image.ref, digest: image.ref}}\n", `kubernetes.image_values: repository and digest name the same value "image.ref"`, nil},
		{"templated kubeconfig", "  prod:\n    runtime: kubernetes\n    kubernetes: {kubeconfig: \"${env.X}\"}\n", `kubernetes.kubeconfig may not hold ${...}`, nil},
		{"unknown kubernetes field", "  prod:\n    runtime: kubernetes\n    kubernetes: {cluster: x}\n", `pipeline.yaml:5:18: unknown field "cluster"`, nil},
		{"unknown field", "  prod: {replicas: 2}\n", `pipeline.yaml:3:10: unknown field "replicas"`, nil},
		{"missing values", "  prod: {values: [deploy/chart/values-locl.yaml]}\n", "pipeline.yaml:3:19: environment prod: values: deploy/chart/values-locl.yaml does not exist in the repository (did you mean deploy/chart/values-local.yaml?)", ErrPathNotFound},
		{"values escape", "  prod: {values: [../secret.yaml]}\n", `leaves the repository`, ErrPathOutside},
		{"absolute policy", "  prod: {policy: [/etc/passwd]}\n", `must be a path inside the repository`, ErrPathOutside},
		{"chart not a chart", "  prod: {chart: deploy}\n", "pipeline.yaml:3:17: environment prod: chart: deploy is not a Helm chart (no Chart.yaml)", ErrPathType},
		{"unknown service", "  prod: {services: [mysql]}\n", `pipeline.yaml:3:21: environment prod: unknown service "mysql" (known: postgres, redis, sqs)`, nil},
		{"service twice", "  prod: {services: [redis, redis]}\n", `service "redis" is listed twice`, nil},
		{"bad set key", "  prod:\n    set: {\"image..tag\": x}\n", `set key "image..tag" must be a dotted values path`, nil},
		{"set key lone backslash", "  prod:\n    set: {'a\\b': x}\n", `set key "a\\b" must be a dotted values path`, nil},
		{"unknown gate", "  prod: {require: [tets]}\n", `pipeline.yaml:3:20: environment prod: require names unknown gate "tets" (gates: tests, vuln-scan)`, nil},
		{"env reads secrets", "  prod:\n    env: {T: \"${secrets.X}\"}\n", `pipeline.yaml:4:14: environment prod: env may not read secrets`, nil},
		{"env reads steps", "  prod:\n    env: {T: \"${stages.s.steps.a.outputs.x}\"}\n", `env may read only git, sha, branch, event, base, run, pipeline, env, not stages.s.steps.a.outputs.x`, nil},
		{"env reads unset env", "  prod:\n    env: {T: \"${env.NOPE}\"}\n", `env.NOPE is not set`, nil},
		{"bad env name", "  prod:\n    env: {\"1X\": y}\n", `env name "1X" is not a valid variable name`, nil},
		{"bad port_env", "  prod: {port_env: \"my port\"}\n", `port_env "my port" is not a valid variable name`, nil},
		{"prometheus both", "  prod: {prometheus: {rules: [deploy/alerts.yaml], url: \"http://p:9090\"}}\n", `prometheus takes rules`, nil},
		{"prometheus none", "  prod: {prometheus: {}}\n", `prometheus needs rules or url`, nil},
		{"prometheus bad url", "  prod: {prometheus: {url: \"ftp://p\"}}\n", `prometheus.url must be an http(s) URL`, nil},
		{"key missing", "  prod: {key: nokey.pub}\n", `environment prod: key: nokey.pub does not exist`, ErrPathNotFound},
		{"templated path", "  prod: {values: [\"${env.X}.yaml\"]}\n", `values may not hold ${...}`, nil},
		{"rollback to undeclared", "  prod: {}\n", `no rollback handler is registered for environment "staging" (none is registered; declare it in the pipeline's environments: block)`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: p\nenvironments:\n" + tc.envs + envStages + "    on_failure: [{rollback: staging}]\n"
			if tc.name != "rollback to undeclared" {
				src = strings.Replace(src, "    on_failure: [{rollback: staging}]\n", "", 1)
			}
			reg := NewRegistry(nil, []string{"postgres", "redis", "sqs"})
			reg.Gates = []string{"tests", "vuln-scan"}
			_, err := Parse("pipeline.yaml", []byte(src), reg, WithRepository(repo))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error: got %v, want %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v): false for %v", tc.is, err)
			}
		})
	}
}

func TestParseKubernetesEnvironment(t *testing.T) {
	repo := envRepo(t)
	src := `name: p
environments:
  staging:
    runtime: kubernetes
    set: {replicaCount: 2}
    policy: [deploy/policy.yaml]
    require: [tests]
    prometheus: {url: "http://prometheus.monitoring:9090"}
  prod:
    runtime: kubernetes
    kubernetes:
      kubeconfig: ~/.kube/prod
      context: prod-eks
      namespace: payments
      release: payment-service
      timeout: 10m
      image_values: {repository: app.image.repo, digest: app.image.sha}
` + envStages
	reg := NewRegistry(nil, []string{"postgres", "redis", "sqs"})
	reg.Gates = []string{"tests"}
	p, err := Parse("pipeline.yaml", []byte(src), reg, WithRepository(repo))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  Kubernetes
		want Kubernetes
	}{
		{"defaults", *p.Environments["staging"].Kubernetes, Kubernetes{
			Release: "staging", Timeout: DefaultKubernetesTimeout,
			ImageValues: &ImageValues{Repository: "image.repository", Digest: "image.digest"},
		}},
		{"given", *p.Environments["prod"].Kubernetes, Kubernetes{
			Kubeconfig: "~/.kube/prod", Context: "prod-eks", Namespace: "payments", Release: "payment-service", Timeout: 10 * time.Minute,
			ImageValues: &ImageValues{Repository: "app.image.repo", Digest: "app.image.sha"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tc.got, tc.want
			got.Pos, got.At = yamlx.Pos{}, nil
			iv := *got.ImageValues
			iv.Pos, iv.At = yamlx.Pos{}, nil
			got.ImageValues = &iv
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v (image values %+v), want %+v (image values %+v)", got, *got.ImageValues, want, *want.ImageValues)
			}
		})
	}
	if got := p.Environments["prod"].PortEnv; got != "" {
		t.Errorf("port_env of a kubernetes environment: got %q, want none", got)
	}
	if got := p.Environments["staging"].Runtime; got != RuntimeKubernetes {
		t.Errorf("runtime: got %q, want kubernetes", got)
	}
}

// TestEnvironmentChartDefaultMissing: without deploy/chart and without
// chart:, the environment cannot render anything.
func TestEnvironmentChartDefaultMissing(t *testing.T) {
	src := "name: p\nenvironments:\n  prod: {}\n" + envStages
	_, err := Parse("pipeline.yaml", []byte(src), NewRegistry(nil, nil), WithRepository(t.TempDir()))
	if want := "pipeline.yaml:3:9: environment prod names no chart and deploy/chart does not exist"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error: got %v, want %q", err, want)
	}
}

func TestParseEnvironmentsAlone(t *testing.T) {
	repo := envRepo(t)
	src := "name: p\nenv: {A: b}\nenvironments:\n  staging: {env: {X: \"${env.A}\"}}\nstages: [{name: s, steps: [{name: a, uses: not-known-here}]}]\n"
	p, err := ParseEnvironments("pipeline.yaml", []byte(src), nil, repo)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Environments["staging"]; got == nil || got.Chart != DefaultChart || got.Name != "staging" {
		t.Fatalf("staging: got %+v", got)
	}
	if p.Name != "p" || p.Env["A"] != "b" {
		t.Errorf("name %q, env %v: want p and A=b", p.Name, p.Env)
	}
	_, err = ParseEnvironments("pipeline.yaml", []byte("name: p\nenvironments:\n  staging: {chart: nowhere}\n"), nil, repo)
	if want := "pipeline.yaml:3:20: environment staging: chart: nowhere does not exist"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error: got %v, want %q", err, want)
	}
}

func TestSchemaEnvironment(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(schema.Pipeline, &s); err != nil {
		t.Fatal(err)
	}
	defs := s["$defs"].(map[string]any)
	env := defs["environment"].(map[string]any)
	var got []string
	for k := range env["properties"].(map[string]any) {
		got = append(got, k)
	}
	if want := yamlFields(reflect.TypeFor[Environment]()); !reflect.DeepEqual(sorted(got), want) {
		t.Errorf("schema properties %v, Go fields %v", sorted(got), want)
	}
	var pgot []string
	for k := range env["properties"].(map[string]any)["prometheus"].(map[string]any)["properties"].(map[string]any) {
		pgot = append(pgot, k)
	}
	if want := yamlFields(reflect.TypeFor[Prometheus]()); !reflect.DeepEqual(sorted(pgot), want) {
		t.Errorf("prometheus schema properties %v, Go fields %v", sorted(pgot), want)
	}
}
