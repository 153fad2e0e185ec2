package serve

import (
	"context"
	"fmt"
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
