package e2e

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testload"
)

// deployRepo copies testdata/deploysvc into the test's repository: a Go
// service with a Helm chart (a Deployment of 2 replicas with probes,
// limits, a read-only root and user 65532) and a pipeline that builds,
// pushes, signs, deploys to staging, load-tests it and rolls back on
// failure.
func deployRepo(t *testing.T, e *env) {
	t.Helper()
	copyTestdata(t, e, "deploysvc")
	t.Cleanup(func() { e.gantry("serve", "stop") })
}

// copyTestdata writes testdata/NAME into the test's repository: its
// pipeline.yaml as .gantry/pipeline.yaml for this machine's platform,
// every other file but main.go.tmpl (the caller writes main.go from it)
// as it is.
func copyTestdata(t *testing.T, e *env, name string) {
	t.Helper()
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch rel {
		case "main.go.tmpl":
			return nil
		case "pipeline.yaml":
			rel = filepath.Join(".gantry", "pipeline.yaml")
			b = []byte(strings.ReplaceAll(string(b), "PLATFORM", "linux/"+goruntime.GOARCH))
		}
		e.write(rel, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// version writes the service's main.go for a version: whether it ever
// becomes ready and the status its / answers, and commits it.
func (e *env) version(v string, ready bool, status int) {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "deploysvc", "main.go.tmpl"))
	if err != nil {
		e.t.Fatal(err)
	}
	s := strings.NewReplacer(`"VERSION"`, strconv.Quote(v), "READY", strconv.FormatBool(ready), "STATUS", strconv.Itoa(status)).Replace(string(b))
	e.write("main.go", s)
	e.commitAll("feat: version " + v)
}

type envJSON struct {
	Name          string `json:"name"`
	URL           string `json:"url"`
	SinkURL       string `json:"sinkURL"`
	PrometheusURL string `json:"prometheusURL"`
	Current       *struct {
		Number int    `json:"number"`
		Digest string `json:"digest"`
	} `json:"current"`
	Instances []struct {
		State     string `json:"state"`
		Isolation string `json:"isolation"`
	} `json:"instances"`
}

func (e *env) envs() []envJSON {
	e.t.Helper()
	r := e.gantry("env", "ls", "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("gantry env ls: exit %d: %s", r.code, r.stderr)
	}
	var out []envJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("gantry env ls -o json: %v\n%s", err, r.stdout)
	}
	return out
}

// TestDeployPipeline drives the whole delivery path through the gantry
// binary: build, push, sign and deploy to staging from `gantry run`,
// gantry serve started in the background, the URL answering, a second
// version under continuous load with no failed request, a version that
// never becomes ready failing the step with the probe's answer, a version
// failing its smoke test rolled back by on_failure, and after kill -9 of
// the serve process the environment back on the same port. Under runc
// when the test runs as root, as plain processes otherwise.
func TestDeployPipeline(t *testing.T) {
	testDeployPipeline(t, false)
}

// TestDeployPlainProcesses is the first deploy with GANTRY_ISOLATION=process.
func TestDeployPlainProcesses(t *testing.T) {
	testDeployPipeline(t, true)
}

func testDeployPipeline(t *testing.T, plain bool) {
	if plain {
		t.Setenv("GANTRY_ISOLATION", "process")
	} else {
		t.Setenv("GANTRY_ISOLATION", "")
	}
	e := newEnv(t)
	deployRepo(t, e)
	if plain {
		// The environment's Prometheus, scraping its instances.
		b, err := os.ReadFile(filepath.Join(e.repo, ".gantry", "pipeline.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		e.write(".gantry/pipeline.yaml", strings.Replace(string(b), "  staging: {}\n", "  staging: {prometheus: {rules: [alerts.yaml]}}\n", 1))
	}

	e.version("v1", true, 200)
	if r := e.gantry("run"); r.code != 0 {
		t.Fatalf("run v1: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Name != "staging" || envs[0].Current == nil || envs[0].Current.Number != 1 {
		t.Fatalf("gantry env ls: got %+v, want staging at revision 1", envs)
	}
	url := envs[0].URL
	if got := testload.Get(t, url+"/"); got != "v1" {
		t.Errorf("GET /: got %q, want v1", got)
	}
	if !strings.HasSuffix(envs[0].SinkURL, "/sink/staging") {
		t.Errorf("sink URL: got %q, want .../sink/staging", envs[0].SinkURL)
	}
	wantIso := "oci"
	if plain || os.Geteuid() != 0 {
		wantIso = "process"
	}
	for _, in := range envs[0].Instances {
		if in.Isolation != wantIso {
			t.Errorf("instance isolation: got %s, want %s", in.Isolation, wantIso)
		}
	}
	// The sink answers over TCP for the environment.
	testload.Get(t, envs[0].SinkURL+"/deliveries")
	if plain {
		checkPrometheus(t, envs[0])
		return
	}
	if envs[0].PrometheusURL != "" {
		t.Errorf("prometheus URL %q of an environment without alert rules, want none", envs[0].PrometheusURL)
	}
	v1 := envs[0].Current.Digest

	// v2 under continuous load: not one failed request.
	e.version("v2", true, 200)
	l := testload.Start(url+"/", 4)
	r := e.gantry("run")
	time.Sleep(200 * time.Millisecond) // some requests after the switch too
	l.Stop()
	if r.code != 0 {
		t.Fatalf("run v2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := l.Failed(); n != 0 {
		t.Errorf("under load during the deploy of v2: %d failed requests of %d (first: %v), want 0", n, n+l.OK(), l.First())
	}
	t.Logf("under load during the deploy of v2: %d requests answered, %d failed, by version %v", l.OK(), l.Failed(), l.Bodies())
	if l.Seen("v2") == 0 || l.Seen("v1") == 0 {
		t.Errorf("answers under load: %v, want both v1 and v2", l.Bodies())
	}
	v2 := e.envs()[0].Current.Digest

	// v3 never becomes ready: the step fails with the probe's answer and
	// v2 keeps serving.
	e.version("v3", false, 200)
	r = e.gantry("run")
	if r.code != 1 {
		t.Errorf("run v3: exit %d, want 1\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout+r.stderr, "503") || !strings.Contains(r.stdout+r.stderr, "did not become ready") {
		t.Errorf("run v3: want the probe's answer (503) and 'did not become ready' in its output:\n%s\n%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "rollback staging: nothing to roll back") {
		t.Errorf("run v3: want its on_failure to say there was nothing to roll back:\n%s", r.stdout)
	}
	if got := testload.Get(t, url+"/"); got != "v2" {
		t.Errorf("after v3 failed: GET / = %q, want v2", got)
	}

	// v4 is ready but its / fails the smoke test: on_failure rolls staging
	// back to v2's digest.
	e.version("v4", true, 500)
	r = e.gantry("run")
	if r.code != 1 {
		t.Errorf("run v4: exit %d, want 1\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "rollback staging:") || !strings.Contains(r.stdout, "-> "+v2) {
		t.Errorf("run v4: want the summary saying staging rolled back to %s:\n%s", v2, r.stdout)
	}
	if got := testload.Get(t, url+"/"); got != "v2" {
		t.Errorf("after the rollback: GET / = %q, want v2", got)
	}
	if v1 == v2 {
		t.Errorf("v1 and v2 have the same digest %s", v1)
	}

	// kill -9 of the serve process: a new one brings staging back on
	// the same port.
	st := e.gantry("serve", "status", "-o", "json")
	var h struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &h); err != nil || h.Pid == 0 {
		t.Fatalf("gantry serve status: %v %q", err, st.stdout)
	}
	if err := syscall.Kill(h.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; e.gantry("serve", "status").code == 0; i++ {
		if i > 200 {
			t.Fatal("gantry serve still answers after kill -9")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv, _ := e.startServe()
	t.Cleanup(func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() })
	envs = e.envs()
	if len(envs) != 1 || envs[0].URL != url {
		t.Fatalf("after kill -9: gantry env ls = %+v, want staging at %s", envs, url)
	}
	var body string
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = strings.TrimSpace(string(b)); resp.StatusCode == 200 {
				break
			}
		}
		if i > 600 {
			t.Fatalf("after kill -9: %s never answered (last: %v %q)", url, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body != "v2" {
		t.Errorf("after kill -9: GET / = %q, want v2", body)
	}
}

// TestDeployRefusedByPolicy: an unsigned image is refused by the
// environment's Kyverno policy before anything starts, and the refusal is
// in the environment's history.
func TestDeployRefusedByPolicy(t *testing.T) {
	t.Setenv("GANTRY_ISOLATION", "process")
	e := newEnv(t)
	deployRepo(t, e)
	b, err := os.ReadFile(filepath.Join(e.repo, ".gantry", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Replace(string(b), "  staging: {}\n", "  staging: {policy: [policy.yaml]}\n", 1)
	var kept []string
	for _, line := range strings.Split(p, "\n") {
		if !strings.Contains(line, "uses: sign") {
			kept = append(kept, line)
		}
	}
	e.write(".gantry/pipeline.yaml", strings.Join(kept, "\n"))
	e.version("v1", true, 200)
	r := e.gantry("run")
	if r.code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "admission refused") || !strings.Contains(r.stdout, "require-cosign-signature") {
		t.Errorf("run: want the refusal naming the rule:\n%s", r.stdout)
	}
	envs := e.envs()
	if len(envs) != 1 || envs[0].Current != nil || len(envs[0].Instances) != 0 {
		t.Errorf("gantry env ls: got %+v, want staging with nothing running", envs)
	}
	h := e.gantry("env", "history", "staging")
	if h.code != 0 || !strings.Contains(h.stdout, "refused") || !strings.Contains(h.stdout, "require-cosign-signature") {
		t.Errorf("gantry env history staging: exit %d, want the refusal and its rule:\n%s%s", h.code, h.stdout, h.stderr)
	}
}

// checkPrometheus: the environment's Prometheus has its rules and scrapes
// its ready instances.
func checkPrometheus(t *testing.T, e envJSON) {
	t.Helper()
	if e.PrometheusURL == "" {
		t.Fatal("no prometheus URL for an environment with alert rules")
	}
	if rules := testload.Get(t, e.PrometheusURL+"/api/v1/rules"); !strings.Contains(rules, "SvcDown") {
		t.Errorf("prometheus rules: got %s, want SvcDown", rules)
	}
	var body string
	for i := 0; i < 300; i++ {
		body = testload.Get(t, e.PrometheusURL+"/api/v1/targets")
		if strings.Count(body, `"health":"up"`) == 2 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("prometheus targets: got %s, want the 2 instances up", body)
}
