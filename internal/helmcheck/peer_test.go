package helmcheck

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// helmBin is the helm peer: the helm of gantry's SDK version, which
// scripts/test.sh builds from tools/helm.
func helmBin(t *testing.T) string {
	bin, err := exec.LookPath("helm")
	if err != nil {
		testenv.Missing(t, "helm", "go -C tools/helm build -o \"$(go env GOPATH)/bin/helm\" helm.sh/helm/v3/cmd/helm (scripts/test.sh does)")
	}
	out, err := exec.Command(bin, "version", "--template", "{{.Version}}").Output()
	if err != nil {
		t.Fatalf("helm version: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != SDKVersion {
		t.Fatalf("the helm peer at %s is %s, want the SDK's %s: scripts/test.sh builds it from tools/helm", bin, got, SDKVersion)
	}
	return bin
}

// TestSDKVersionIsGoMod: SDKVersion, which step caches key on, is the
// helm.sh/helm/v3 that go.mod requires.
func TestSDKVersionIsGoMod(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == "helm.sh/helm/v3" {
			if r.Mod.Version != SDKVersion {
				t.Errorf("SDKVersion = %s, go.mod requires helm.sh/helm/v3 %s", SDKVersion, r.Mod.Version)
			}
			return
		}
	}
	t.Error("go.mod does not require helm.sh/helm/v3")
}

func runHelm(t *testing.T, args ...string) (string, error) {
	cmd := proc.Command(context.Background(), helmBin(t), args...)
	cmd.Dir = "testdata"
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	return out.String(), err
}

func docs(s string) []string {
	var out []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(s, -1) {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// TestSameAsHelm compares rendering and lint verdicts with the helm
// binary of the same version as the SDK.
func TestSameAsHelm(t *testing.T) {
	helmBin(t)
	for _, chart := range []string{"good", "schemabad"} {
		want, err := runHelm(t, "template", chart)
		if err != nil {
			t.Fatalf("helm template %s: %v", chart, err)
		}
		got, r, err := Template(context.Background(), "testdata", chart, Options{})
		if err != nil || len(r.Findings) > 0 {
			t.Fatalf("Template(%s): %v %v", chart, err, r.Findings)
		}
		if !slices.Equal(docs(string(got)), docs(want)) {
			t.Errorf("%s: gantry rendered\n%s\nhelm rendered\n%s", chart, got, want)
		}
	}
	lintLine := regexp.MustCompile(`(?m)^\[(ERROR|WARNING|INFO)\] ([^:]*): (.*)$`)
	for _, chart := range []string{"good", "lintbad", "renderbad"} {
		out, err := runHelm(t, "lint", chart)
		r, lerr := Lint(context.Background(), "testdata", chart, Options{})
		if lerr != nil {
			t.Fatal(lerr)
		}
		if got, want := r.Count(findings.Error) > 0, err != nil; got != want {
			t.Errorf("%s: gantry fails = %v, helm fails = %v", chart, got, want)
		}
		var want, got []string
		for _, m := range lintLine.FindAllStringSubmatch(out, -1) {
			want = append(want, m[1]+" "+m[3])
		}
		sev := map[findings.Severity]string{findings.Error: "ERROR", findings.Warning: "WARNING", findings.Note: "INFO"}
		for _, f := range r.Findings {
			first, _, _ := strings.Cut(f.Message, "\n")
			got = append(got, sev[f.Severity]+" "+first)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s lint:\ngantry %q\nhelm   %q", chart, got, want)
		}
	}
}
