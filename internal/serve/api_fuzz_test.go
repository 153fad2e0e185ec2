package serve

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/store"
)

// TestUnreadableReport: an artifact that is not what its name says is a
// 422 naming it, not a 500 or a panic.
func TestUnreadableReport(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	r := &store.Run{Pipeline: "p", Event: "push"}
	must(t, e.st.CreateRun(ctx, r))
	for _, a := range []struct{ name, media, data string }{
		{"junit.xml", "application/xml", "<html><body>not junit</body></html>"},
		{"sast.sarif", "application/sarif+json", "{not json"},
	} {
		d, n, err := e.arts.Put(ctx, strings.NewReader(a.data))
		must(t, err)
		must(t, e.st.AddArtifact(ctx, &store.Artifact{RunID: r.ID, Stage: "s", Step: "x", Name: a.name, Digest: d, Size: n, MediaType: a.media}))
	}
	for _, report := range []string{"tests", "sarif"} {
		resp, body := e.call(t, viewer, "GET", fmt.Sprintf("/api/v1/runs/%d/%s", r.ID, report), "")
		if resp.StatusCode != 422 || !strings.Contains(string(body), "of s/x") {
			t.Errorf("%s: got %s %s, want 422 naming the artifact", report, resp.Status, body)
		}
	}
}

func FuzzParseJUnit(f *testing.F) {
	f.Add([]byte(`<testsuites><testsuite name="a"><testcase name="b"><failure message="m"/></testcase></testsuite></testsuites>`))
	f.Add([]byte(`<testsuite><testsuite><testcase/></testsuite></testsuite>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var rep TestReport
		if err := parseJUnit(b, &rep); err != nil {
			return
		}
		if rep.Failures+rep.Errors+rep.Skipped > rep.Tests || len(rep.Failed) != rep.Failures+rep.Errors {
			t.Errorf("counts do not add up: %+v", rep)
		}
	})
}

func FuzzReadEvents(f *testing.F) {
	f.Add("id: 3\nevent: line\ndata: {\"text\":\"x\"}\n\n: keep-alive\n\nevent: end\ndata: {}\n\n")
	f.Add("data: a\ndata: b\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = readEvents(strings.NewReader(s), func(ev sseEvent) bool {
			if ev.name == "" {
				t.Errorf("event without a name: %+v", ev)
			}
			return true
		})
	})
}

// TestExceptionsOfTheRunsCommit: the exceptions file is read at the
// run's commit, not from the working tree, with each expiry.
func TestExceptionsOfTheRunsCommit(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	repo := gatedRepo(t)
	commit(t, repo, ".gantry/exceptions.yaml", `exceptions:
  - id: GO-2022-1059
    package: golang.org/x/text
    justification: the decoder never sees user input
    owner: alice@example.com
    expires: 2099-12-31
  - id: CVE-2020-0001
    justification: old
    owner: bob@example.com
    expires: 2020-01-31
`, "exceptions")
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	must(t, err)
	sha := strings.TrimSpace(string(out))
	// The working tree moves on after the run.
	commit(t, repo, ".gantry/exceptions.yaml", "exceptions: []\n", "drop them")
	r := &store.Run{Pipeline: "p", Event: "push", Dir: repo, SHA: sha}
	must(t, e.st.CreateRun(ctx, r))
	noFile := &store.Run{Pipeline: "p", Event: "push", Dir: repo, SHA: strings.Repeat("0", 40)}
	must(t, e.st.CreateRun(ctx, noFile))

	resp, body := e.call(t, viewer, "GET", fmt.Sprintf("/api/v1/runs/%d/exceptions", r.ID), "")
	for _, want := range []string{`"id":"GO-2022-1059","package":"golang.org/x/text"`, `"expires":"2099-12-31","expired":false`, `"expires":"2020-01-31","expired":true`, `"line":2`} {
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("got %s %s, want 200 with %s", resp.Status, body, want)
		}
	}
	resp, body = e.call(t, viewer, "GET", fmt.Sprintf("/api/v1/runs/%d/exceptions", noFile.ID), "")
	if resp.StatusCode != 404 {
		t.Errorf("unknown commit: got %s %s, want 404", resp.Status, body)
	}
}
