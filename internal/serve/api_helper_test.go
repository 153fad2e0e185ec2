package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/docs"
	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// openAPI is the embedded document, parsed once, with its schemas
// compiled on first use.
type openAPI struct {
	once     sync.Once
	err      error
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema
}

const openAPIURL = "https://gantry.invalid/openapi.json"

var theDoc openAPI

func loadOpenAPI(t testing.TB) *openAPI {
	t.Helper()
	d := &theDoc
	d.once.Do(func() {
		var raw any
		if d.err = yaml.Unmarshal(docs.OpenAPI, &raw); d.err != nil {
			return
		}
		b, err := json.Marshal(raw)
		if d.err = err; err != nil {
			return
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if d.err = err; err != nil {
			return
		}
		d.doc, _ = v.(map[string]any)
		d.compiler = jsonschema.NewCompiler()
		d.compiler.DefaultDraft(jsonschema.Draft2020)
		d.compiler.AssertFormat()
		d.err = d.compiler.AddResource(openAPIURL, v)
		d.schemas = map[string]*jsonschema.Schema{}
	})
	if d.err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", d.err)
	}
	return d
}

// pointerEscape escapes one JSON pointer token.
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (d *openAPI) schema(t testing.TB, pointer string) *jsonschema.Schema {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[pointer]; ok {
		return s
	}
	s, err := d.compiler.Compile(openAPIURL + "#" + pointer)
	if err != nil {
		t.Fatalf("compile the schema at %s: %v", pointer, err)
	}
	d.schemas[pointer] = s
	return s
}

// check fails t unless the document describes the response: its status
// (or default) for the operation, its content type, and its JSON body.
func (d *openAPI) check(t testing.TB, pattern string, resp *http.Response, body []byte) {
	t.Helper()
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		// No route matched: the API's 404/405 answer is an Error.
		d.checkBody(t, "/components/schemas/Error", resp, body)
		return
	}
	paths, _ := d.doc["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	if op == nil {
		t.Errorf("openapi.yaml has no operation %s %s", method, path)
		return
	}
	responses, _ := op["responses"].(map[string]any)
	status := resp.Status[:3]
	key := status
	if responses[key] == nil {
		key = "default"
	}
	r, _ := responses[key].(map[string]any)
	base := "/paths/" + pointerEscape(path) + "/" + strings.ToLower(method) + "/responses/" + key
	if ref, ok := r["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/responses/")
		r, _ = d.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
		base = "/components/responses/" + pointerEscape(name)
	}
	if r == nil {
		t.Errorf("%s answered %s, which openapi.yaml does not document", pattern, resp.Status)
		return
	}
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if _, ok := content[ct]; !ok {
		if _, any := content["application/octet-stream"]; !any {
			t.Errorf("%s answered %s with Content-Type %q; openapi.yaml documents %v", pattern, resp.Status, ct, keys(content))
		}
		return
	}
	if ct == "application/json" {
		d.checkBody(t, base+"/content/"+pointerEscape(ct)+"/schema", resp, body)
	}
}

func (d *openAPI) checkBody(t testing.TB, pointer string, resp *http.Response, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: body is not JSON: %v\n%s", resp.Request.URL, err, body)
		return
	}
	if err := d.schema(t, pointer).Validate(v); err != nil {
		t.Errorf("%s %s: the answer (%s) does not match openapi.yaml %s: %v\n%s", resp.Request.Method, resp.Request.URL, resp.Status, pointer, err, body)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// fakeQueue records the runs it was asked to resume.
type fakeQueue struct {
	mu      sync.Mutex
	resumed []string
}

func (q *fakeQueue) Resume(_ context.Context, runID string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.resumed = append(q.resumed, runID)
	return nil
}

func (q *fakeQueue) Cancel(context.Context, string) error { return nil }

// apiEnv is the API over a real store and artifact store in a temp dir.
type apiEnv struct {
	dir   string
	st    *store.Store
	arts  *artifact.Store
	api   *API
	queue *fakeQueue
	doc   *openAPI
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, arts, dir)
	if err != nil {
		t.Fatal(err)
	}
	stopping, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	a := NewAPI(newRecorder(), func() Health { return Health{Pid: 1, Version: "test", StateDir: dir, Started: time.Now().UTC()} },
		func() {}, stopping, slog.New(slog.DiscardHandler))
	q := &fakeQueue{}
	a.SetRuns(Runs{Store: st, Artifacts: arts, StateDir: dir, Decider: eng, Queue: q})
	return &apiEnv{dir: dir, st: st, arts: arts, api: a, queue: q, doc: loadOpenAPI(t)}
}

// caller is who a test request comes from; the zero caller has no
// identity.
type caller struct {
	name string
	role auth.Role
	// location binds the caller's token to a probe location.
	location string
}

func as(name string, role auth.Role) caller { return caller{name: name, role: role} }

// agentAt is a probe agent's caller: a token bound to location.
func agentAt(name string, role auth.Role, location string) caller {
	return caller{name: name, role: role, location: location}
}

var (
	nobody = caller{}
	viewer = as("vic", auth.RoleViewer)
	admin  = as("ada", auth.RoleAdmin)
)

// withIdentity serves h with the caller's identity in the request's
// context, as the auth middleware will.
func withIdentity(c caller, h http.Handler) http.Handler {
	return withMethod(c, auth.MethodToken, h)
}

func withMethod(c caller, m auth.Method, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.role != "" {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Name: c.name, Role: c.role, Method: m, Remote: "192.0.2.1", Location: c.location}))
		}
		h.ServeHTTP(w, r)
	})
}

// call sends one request as c and checks the answer against the
// OpenAPI document.
func (e *apiEnv) call(t *testing.T, c caller, method, target, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return e.callAs(t, c, false, method, target, body, header...)
}

// callAs is call, as the socket's peer when socket is set.
func (e *apiEnv) callAs(t *testing.T, c caller, socket bool, method, target, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	m := auth.MethodToken
	if socket {
		m = auth.MethodSocket
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	withMethod(c, m, e.api.Handler()).ServeHTTP(w, req)
	resp := w.Result()
	resp.Request = req
	b, _ := io.ReadAll(resp.Body)
	_, pattern := e.api.mux().Handler(req)
	e.doc.check(t, pattern, resp, b)
	return resp, b
}

// errorCode returns the code of an error answer.
func errorCode(t *testing.T, body []byte) (code, msg string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error answer %s: %v", body, err)
	}
	return e.Error.Code, e.Error.Message
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func commit(t *testing.T, repo, name, content, msg string) {
	t.Helper()
	p := filepath.Join(repo, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "add", name)
	gitIn(t, repo, "commit", "-q", "-m", msg)
}

// gatedRepo is a repository whose main branch names alice oncall-lead,
// checked out on a branch that adds mallory.
func gatedRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	gitIn(t, repo, "init", "-q", "-b", "main")
	commit(t, repo, ".gantry/approvers.yaml", "oncall-lead: [alice]\n", "approvers")
	gitIn(t, repo, "checkout", "-q", "-b", "feature")
	commit(t, repo, ".gantry/approvers.yaml", "oncall-lead: [alice, mallory]\n", "grant myself")
	return repo
}

// seeded is what seed recorded.
type seeded struct {
	passed, waiting int64
	blob, html      string // artifact digests of the passed run
	blobData        string
}

// seed records a passed run with a step, log lines and artifacts, and a
// run on branch feature of repo waiting for approval of stage prod.
func (e *apiEnv) seed(t *testing.T, repo string) seeded {
	t.Helper()
	ctx := context.Background()
	st := e.st
	var s seeded
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := &store.Run{Pipeline: "payments", Dir: repo, Event: "push", Branch: "main", SHA: "0123456789abcdef", Trigger: "cli", Started: t0}
	must(t, st.CreateRun(ctx, r))
	s.passed = r.ID
	yes := true
	must(t, st.PutStage(ctx, &store.Stage{RunID: r.ID, Name: "build", Index: 0, Status: store.StatusPassed, Gate: "steps.unit.outputs.coverage >= 80", GateResult: &yes, Started: t0, Finished: t0.Add(time.Minute)}))
	must(t, st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "build", Name: "unit", Kind: "go-test", Status: store.StatusPassed, Summary: "12 passed", Outputs: map[string]any{"coverage": 91.5}, Started: t0, Finished: t0.Add(30 * time.Second)}))
	must(t, st.AppendLogs(ctx, r.ID, "build", "unit", []store.LogLine{{Text: "=== RUN TestA"}, {Text: "--- PASS: TestA"}, {Text: "ok", Stream: "sys"}}))
	s.blobData = `<testsuites><testsuite name="pay/api" tests="3"><testcase name="TestA" time="0.5"/>` +
		`<testcase name="TestB" time="0.25"><failure message="want 200, got 500">trace</failure></testcase>` +
		`<testcase name="TestC"><skipped/></testcase></testsuite></testsuites>`
	d, n, err := e.arts.Put(ctx, strings.NewReader(s.blobData))
	must(t, err)
	s.blob = d
	must(t, st.AddArtifact(ctx, &store.Artifact{RunID: r.ID, Stage: "build", Step: "unit", Name: "junit.xml", Digest: d, Size: n, MediaType: "application/xml"}))
	h, hn, err := e.arts.Put(ctx, strings.NewReader("<script>alert(1)</script>"))
	must(t, err)
	s.html = h
	must(t, st.AddArtifact(ctx, &store.Artifact{RunID: r.ID, Stage: "build", Step: "unit", Name: "../../coverage.html", Digest: h, Size: hn, MediaType: "text/html"}))
	for _, a := range []struct{ step, name, media, data string }{
		{"sast", "sast.sarif", "application/sarif+json", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"gantry-sast"}},"results":[` +
			`{"ruleId":"G101","level":"error","message":{"text":"hard-coded credential"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"cmd/pay/main.go"},"region":{"startLine":42}}}]}]}]}`},
		{"sbom", "sbom.cdx.json", "application/vnd.cyclonedx+json", `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[` +
			`{"type":"library","name":"golang.org/x/net","version":"v0.30.0","purl":"pkg:golang/golang.org/x/net@v0.30.0","licenses":[{"license":{"id":"BSD-3-Clause"}}]}]}`},
		{"trivy", "vuln-report.json", "application/json", `{"scanner":"gantry","target":"image","kind":"image","passed":true,"findings":[` +
			`{"id":"GO-2025-0001","ecosystem":"Go","package":"golang.org/x/net","version":"v0.30.0","location":"app","severity":{"level":"HIGH"},` +
			`"status":"excepted","fails":false,"exception":{"file":".gantry/exceptions.yaml","line":3,"owner":"alice","justification":"not reachable","expires":"2026-12-31"}}],` +
			`"failing":0,"excepted":1,"counts":{"HIGH":1}}`},
	} {
		must(t, st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "build", Name: a.step, Kind: a.step, Status: store.StatusPassed}))
		d, n, err := e.arts.Put(ctx, strings.NewReader(a.data))
		must(t, err)
		must(t, st.AddArtifact(ctx, &store.Artifact{RunID: r.ID, Stage: "build", Step: a.step, Name: a.name, Digest: d, Size: n, MediaType: a.media}))
	}
	must(t, st.FinishRun(ctx, r.ID, store.StatusPassed, "", t0.Add(time.Minute)))

	w := &store.Run{Pipeline: "payments", Dir: repo, Event: "push", Branch: "feature", SHA: "fedcba9876543210", Trigger: "webhook", Started: t0.Add(time.Hour)}
	must(t, st.CreateRun(ctx, w))
	s.waiting = w.ID
	must(t, st.PutStage(ctx, &store.Stage{RunID: w.ID, Name: "build", Index: 0, Status: store.StatusPassed, Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour + time.Minute)}))
	must(t, st.PutStep(ctx, &store.Step{RunID: w.ID, Stage: "build", Name: "image", Kind: "image-build", Status: store.StatusPassed, Outputs: map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)}}))
	must(t, st.PutStep(ctx, &store.Step{RunID: w.ID, Stage: "build", Name: "sign", Kind: "sign", Status: store.StatusPassed, Finished: t0.Add(time.Hour + time.Minute),
		Outputs: map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32), "image": "reg/pay@sha256:" + strings.Repeat("ab", 32), "key": "awskms:///alias/pay",
			"key_id": "k1", "signature": "sha256-abab.sig", "attestations": []any{"https://slsa.dev/provenance/v1"}, "evidence": map[string]any{"tests": "pass", "vuln-scan": "pass"}}}))
	must(t, st.PutStage(ctx, &store.Stage{RunID: w.ID, Name: "prod", Index: 1, Status: store.StatusWaiting}))
	must(t, st.RequestApproval(ctx, &store.Approval{RunID: w.ID, Stage: "prod", RequestedRoles: "oncall-lead"}))
	must(t, st.FinishRun(ctx, w.ID, store.StatusWaiting, "waiting for approval of prod", time.Time{}))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newTestServer serves h over real HTTP for the test.
func newTestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// readSSE sends each event of the stream at target to events, closing
// it when the stream ends.
func readSSE(ctx context.Context, target, lastID string, events chan<- sseEvent) error {
	defer close(events)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s: %s", target, resp.Status, ct, b)
	}
	return readEvents(resp.Body, func(ev sseEvent) bool {
		events <- ev
		return true
	})
}
