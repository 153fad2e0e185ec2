package newman

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// secretBody is what the test server puts in every response body: it must
// never reach the step's error.
const secretBody = "sk_live_do_not_print"

// requireNewman points the tool cache at $GANTRY_TEST_TOOLCACHE, where
// scripts/deps.sh installed the pinned newman (or the step installs it on
// first use).
func requireNewman(t *testing.T) {
	t.Helper()
	cache := os.Getenv("GANTRY_TEST_TOOLCACHE")
	if cache == "" {
		testenv.Missing(t, "GANTRY_TEST_TOOLCACHE", "set it to a tool cache directory holding newman "+toolcache.NewmanVersion+" (scripts/env.sh does)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node", "apt-get install nodejs")
	}
	if !toolcache.New(cache).Installed(toolcache.Newman) {
		if _, err := exec.LookPath("npm"); err != nil {
			testenv.Missing(t, "npm", "apt-get install npm, or run scripts/deps.sh")
		}
	}
	t.Setenv(toolcache.DirEnv, cache)
}

// server answers /ok with 200 when X-Token is "s3cret", /things with 201,
// and everything else with 500; every body carries secretBody.
func server(t *testing.T, thingStatus int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Header.Get("X-Token") != "s3cret":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"state":"unauthorized","secret":"` + secretBody + `"}`))
		case r.URL.Path == "/ok":
			_, _ = w.Write([]byte(`{"state":"ok","secret":"` + secretBody + `"}`))
		case r.URL.Path == "/things" && r.Method == http.MethodPost:
			w.WriteHeader(thingStatus)
			_, _ = w.Write([]byte(`{"secret":"` + secretBody + `"}`))
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func run(t *testing.T, with string) (res *step.Result, log, art string, err error) {
	t.Helper()
	s, err := Kind.New(steptest.Inputs{YAML: with})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env, buf, art := steptest.NewEnv(t, "testdata", "staging", "flow")
	res, err = s.Run(t.Context(), env)
	return res, buf.String(), art, err
}

func TestRunRealNewman(t *testing.T) {
	requireNewman(t)
	ok := server(t, http.StatusCreated)
	broken := server(t, http.StatusInternalServerError)
	for _, tc := range []struct {
		name string
		with string
		// failures wanted, as Failure.String() texts; nil for a pass.
		failures []string
		outputs  map[string]any
	}{
		{
			name:    "pass",
			with:    "{collection: flow.json, base_url: " + ok.URL + ", vars: {token: s3cret}}",
			outputs: map[string]any{"requests": 2, "failed_requests": 0, "assertions": 3, "failed_assertions": 0, "failures": 0},
		},
		{
			name:    "vars win over the environment file",
			with:    "{collection: flow.json, environment: env.json, base_url: " + ok.URL + ", vars: {token: s3cret}}",
			outputs: map[string]any{"requests": 2, "failed_requests": 0, "assertions": 3, "failed_assertions": 0, "failures": 0},
		},
		{
			name:     "folder runs one request",
			with:     "{collection: flow.json, base_url: " + ok.URL + ", vars: {token: s3cret}, folder: Get ok}",
			outputs:  map[string]any{"requests": 1, "failed_requests": 0, "assertions": 2, "failed_assertions": 0, "failures": 0},
			failures: nil,
		},
		{
			name:     "assertion failure",
			with:     "{collection: flow.json, base_url: " + broken.URL + ", vars: {token: s3cret}}",
			failures: []string{`"Create thing": assertion "status is 201" failed`},
			outputs:  map[string]any{"requests": 2, "failed_requests": 0, "assertions": 3, "failed_assertions": 1, "failures": 1},
		},
		{
			name: "environment file's token is wrong",
			with: "{collection: flow.json, environment: env.json, base_url: " + ok.URL + "}",
			failures: []string{`"Get ok": assertion "status is 200" failed`, `"Get ok": assertion "body says ok" failed`,
				`"Create thing": assertion "status is 201" failed`},
		},
		{
			name:     "unreachable URL",
			with:     "{collection: flow.json, base_url: 'http://127.0.0.1:1', folder: Get ok, timeout_request: 5s}",
			failures: []string{`"Get ok": request failed (ECONNREFUSED)`, `"Get ok": assertion "status is 200" failed`, `"Get ok": assertion "body says ok" failed`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, log, art, err := run(t, tc.with)
			var fe *FailedError
			switch {
			case tc.failures == nil && err != nil:
				t.Fatalf("Run: %v\n%s", err, log)
			case tc.failures != nil && !errors.As(err, &fe):
				t.Fatalf("Run: got %v, want a *FailedError\n%s", err, log)
			}
			if fe != nil {
				var got []string
				for _, f := range fe.Failures {
					got = append(got, f.String())
				}
				if strings.Join(got, "\n") != strings.Join(tc.failures, "\n") {
					t.Errorf("failures:\ngot  %q\nwant %q", got, tc.failures)
				}
				if strings.Contains(err.Error(), secretBody) || strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error shows a response body or a variable: %v", err)
				}
			}
			if res == nil {
				t.Fatal("no result")
			}
			for k, want := range tc.outputs {
				if got := res.Outputs[k]; got != want {
					t.Errorf("output %s: got %v, want %v", k, got, want)
				}
			}
			junit, err := os.ReadFile(filepath.Join(art, "junit.xml"))
			if err != nil || !strings.Contains(string(junit), "<testsuites") || !strings.Contains(string(junit), `<testcase name="status is 200"`) {
				t.Errorf("junit.xml artifact: %v %.300s", err, junit)
			}
			if bytes.Contains(junit, []byte(secretBody)) || bytes.Contains(junit, []byte("s3cret")) || bytes.Contains(junit, []byte("expected")) {
				t.Errorf("junit.xml holds an assertion message or a response value:\n%s", junit)
			}
			if tc.failures != nil && !bytes.Contains(junit, []byte("<failure")) {
				t.Errorf("junit.xml has no failure:\n%s", junit)
			}
			var results []Result
			data, err := os.ReadFile(filepath.Join(art, "newman-results.json"))
			if err != nil {
				t.Fatalf("newman-results.json artifact: %v", err)
			}
			if err := json.Unmarshal(data, &results); err != nil || len(results) == 0 {
				t.Fatalf("newman-results.json: %v %s", err, data)
			}
			if strings.Contains(string(data), secretBody) {
				t.Errorf("results artifact holds a response body: %s", data)
			}
			if results[0].Request != "Get ok" {
				t.Errorf("first result: got %+v, want request Get ok", results[0])
			}
		})
	}
}

// TestResultsArtifact checks the per-request results of a passing run.
func TestResultsArtifact(t *testing.T) {
	requireNewman(t)
	ok := server(t, http.StatusCreated)
	_, log, art, err := run(t, "{collection: flow.json, base_url: "+ok.URL+", vars: {token: s3cret}, iterations: 2}")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	data, err := os.ReadFile(filepath.Join(art, "newman-results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got []Result
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		req       string
		iteration int
		status    int
	}{{"Get ok", 1, 200}, {"Create thing", 1, 201}, {"Get ok", 2, 200}, {"Create thing", 2, 201}}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d: %s", len(got), len(want), data)
	}
	for i, w := range want {
		g := got[i]
		if g.Request != w.req || g.Iteration != w.iteration || g.Status != w.status || g.Error != "" {
			t.Errorf("result %d: got %+v, want %s iteration %d status %d", i, g, w.req, w.iteration, w.status)
		}
		for _, a := range g.Assertions {
			if !a.Passed {
				t.Errorf("result %d: assertion %q did not pass", i, a.Name)
			}
		}
	}
}

// TestBadCollection: a collection newman cannot run gets an error naming
// the file (and the position of a JSON syntax error), before newman runs.
func TestBadCollection(t *testing.T) {
	for _, tc := range []struct {
		name, with, want string
	}{
		{"malformed JSON", "{collection: malformed.json, base_url: 'http://127.0.0.1:1'}", "malformed.json:4:18: not valid JSON"},
		{"no item list", "{collection: noitems.json}", "noitems.json: not a Postman collection: no item list"},
		{"environment not JSON", "{collection: flow.json, environment: malformed.json}", "malformed.json:4:18: not valid JSON"},
		{"missing", "{collection: nothere.json}", "nothere.json: read:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := run(t, tc.with)
			var ce *CollectionError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CollectionError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q, want it to start with %q", err, tc.want)
			}
		})
	}
}

func TestNewChecksInputs(t *testing.T) {
	for _, tc := range []struct {
		name, with, want string
	}{
		{"no collection", "{base_url: 'http://x'}", "with.collection: newman needs a collection"},
		{"relative base_url", "{collection: c.json, base_url: localhost:8080}", "with.base_url: base_url must be an absolute http or https URL"},
		{"bad timeout", "{collection: c.json, timeout_request: soon}", "with.timeout_request: timeout_request must be a positive duration"},
		{"negative iterations", "{collection: c.json, iterations: -1}", "with.iterations: iterations must be 1 or more"},
		{"bad var name", "{collection: c.json, vars: {'a=b': x}}", "with.vars: variable name"},
		{"unknown field", "{collection: c.json, reporters: [html]}", "reporters"},
		{"expression left for run time", "{collection: c.json, base_url: '${stages.deploy.steps.staging.outputs.url}'}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Kind.New(steptest.Inputs{YAML: tc.with})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	s, err := Kind.New(steptest.Inputs{YAML: "{collection: tests/c.json, environment: tests/e.json}"})
	if err != nil {
		t.Fatal(err)
	}
	got := s.(step.PathInputs).Paths()
	want := []step.PathRef{{Field: "collection", Value: "tests/c.json", Type: step.PathFile}, {Field: "environment", Value: "tests/e.json", Type: step.PathFile}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Paths: got %+v, want %+v", got, want)
	}
}

// FuzzParseReport: newman's report is outside input; no panic.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"run":{"stats":{"requests":{"total":1,"failed":1}},"failures":[{"error":{"name":"AssertionError","test":"x"},"at":"assertion:0 in test-script","source":{"name":"r"}}],"executions":[{"item":{"name":"r"},"response":{"code":200},"assertions":[{"assertion":"x","error":{"name":"AssertionError"}}]}]}}`))
	f.Add([]byte(`{"run":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseReport(data)
		if err == nil && rep == nil {
			t.Fatal("nil report without an error")
		}
	})
}

// FuzzCheckCollection: collection files are outside input; whatever they
// hold, the check answers nil or a *CollectionError naming the file.
func FuzzCheckCollection(f *testing.F) {
	for _, name := range []string{"testdata/flow.json", "testdata/malformed.json", "testdata/noitems.json", "testdata/env.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\n\n{\"info\": 1, \"item\": {}}"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		err := checkJSONFile(path, "tests/c.json", true)
		var ce *CollectionError
		if err != nil && (!errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "tests/c.json")) {
			t.Fatalf("got %v, want a *CollectionError naming tests/c.json", err)
		}
		if ce != nil && ce.Line > 0 && ce.Line > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("line %d is past the end of the file", ce.Line)
		}
	})
}

// TestUnknownFolder: newman's own refusal (no report written) reaches the
// error.
func TestUnknownFolder(t *testing.T) {
	requireNewman(t)
	_, _, _, err := run(t, "{collection: flow.json, base_url: 'http://127.0.0.1:1', folder: nope}")
	if err == nil || !strings.Contains(err.Error(), `newman run flow.json: exit status 1:`) || !strings.Contains(err.Error(), `Unable to find a folder or request: "nope"`) {
		t.Fatalf("got %v, want newman's refusal of the folder", err)
	}
}
