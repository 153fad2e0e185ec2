package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// copyTree copies the example into dst, leaving out what git would not
// track in a fresh clone.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "bin" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExamplePipeline is the end-to-end test of the seed pipeline: gantry
// runs examples/payment-service's own .gantry/pipeline.yaml on a git copy
// of it, through every stage that exists, with embedded defaults (local
// PostgreSQL, Redis and SQS services, the embedded registry, the offline
// vulnerability database of $GANTRY_VULN_DB), then reads
// the run back with `gantry show --output json`.
func TestExamplePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("the example pipeline takes minutes")
	}
	if os.Getenv("GANTRY_VULN_DB") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("GANTRY_VULN_DB is not set in CI: run the tests through scripts/test.sh")
		}
		testenv.Missing(t, "GANTRY_VULN_DB", "scripts/env.sh sets it to the shared Go vulnerability database")
	}
	e := newEnv(t)
	copyTree(t, "../examples/payment-service", e.repo)
	e.commitAll("feat: payment service")
	sha := e.git("rev-parse", "HEAD")

	// Stages 1-3; stage 4 (deploy staging, with the seed's 30-minute soak)
	// is not this test's.
	r := e.gantry("run", "--dir", e.repo, "--progress", "plain", "--until", "security")
	if r.code != 0 {
		t.Fatalf("gantry run on the example: exit %d\n%s\n%s", r.code, tail(r.stdout, 80), r.stderr)
	}
	v := e.show(1)
	if v.Status != "passed" || v.SHA != sha {
		t.Fatalf("run: got %s at %s, want passed at %s", v.Status, v.SHA, sha)
	}
	var names []string
	for _, st := range v.Stages {
		names = append(names, st.Name+"="+st.Status)
	}
	if got, want := strings.Join(names, " "), "commit=passed build-test=passed security=passed"; got != want {
		t.Errorf("stages: got %s, want %s", got, want)
	}
	for _, s := range []string{"go-lint", "tf-fmt", "tflint", "manifests", "chart-lint", "chart-render", "commits", "version"} {
		if status, _, _ := v.step("commit", s); status != "passed" {
			t.Errorf("commit/%s: got %q, want passed", s, status)
		}
	}
	_, version, _ := v.step("commit", "version")
	if version["version"] == "" || version["version"] == nil {
		t.Errorf("next-version set no version: %v", version)
	}
	_, unit, _ := v.step("build-test", "unit")
	_, integration, _ := v.step("build-test", "integration")
	cov, _ := integration["coverage"].(float64)
	if cov < 80 {
		t.Errorf("merged coverage: got %v, want >= 80 (the stage gate)", integration["coverage"])
	}
	if n, _ := unit["tests"].(float64); n < 20 {
		t.Errorf("unit tests: got %v, want the example's suite", unit["tests"])
	}
	_, push, _ := v.step("build-test", "push")
	digest, _ := push["digest"].(string)
	if !strings.HasPrefix(digest, "sha256:") || !strings.Contains(push["image"].(string), "@"+digest) {
		t.Errorf("push outputs: got %v, want the image by digest", push)
	}
	for _, s := range []string{"trivy", "sast", "sbom", "licenses", "sign"} {
		if status, _, _ := v.step("security", s); status != "passed" {
			t.Errorf("security/%s: got %q, want passed", s, status)
		}
	}
	// The image is signed and carries every gate's verdict: gantry verify
	// checks them after the run (restarting the embedded registry).
	_, signed, _ := v.step("security", "sign")
	if signed["digest"] != digest {
		t.Errorf("signed %v, want the pushed digest %s", signed["digest"], digest)
	}
	verify := e.gantry("verify", signed["image"].(string), "--require", "lint,commit-messages,tests,vuln-scan,sast,licenses,sbom", "--attestations")
	if verify.code != 0 {
		t.Errorf("gantry verify: exit %d\n%s\n%s", verify.code, verify.stdout, verify.stderr)
	}
	for _, want := range []string{"https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom", "tests: pass"} {
		if !strings.Contains(verify.stdout, want) {
			t.Errorf("gantry verify output lacks %q:\n%s", want, verify.stdout)
		}
	}
	if _, lic, _ := v.step("security", "licenses"); lic["violations"] != 0.0 || lic["modules"].(float64) < 10 {
		t.Errorf("licence outputs: got %v", lic)
	}
	arts := map[string]bool{}
	for _, st := range v.Stages {
		for _, s := range st.Steps {
			for _, a := range s.Artifacts {
				arts[st.Name+"/"+s.Name+"/"+a.Name] = true
			}
		}
	}
	for _, want := range []string{"build-test/unit/junit.xml", "build-test/integration/coverage.html", "commit/go-lint/golangci-lint.sarif", "security/sbom/sbom.cdx.json", "security/trivy/vuln-report.json", "security/sign/cosign.pub"} {
		if !arts[want] {
			t.Errorf("artifact %s missing; have %v", want, arts)
		}
	}

	// Nothing changed: a re-run takes every cacheable step from run 1.
	if r := e.gantry("run", "--dir", e.repo, "--progress", "plain", "--until", "security"); r.code != 0 {
		t.Fatalf("re-run: exit %d\n%s", r.code, tail(r.stdout, 40))
	}
	v2 := e.show(2)
	for _, s := range []string{"commit/go-lint", "commit/tf-fmt", "commit/manifests", "commit/chart-lint", "build-test/unit", "build-test/integration", "security/trivy", "security/sast", "security/sbom", "security/licenses"} {
		stage, name, _ := strings.Cut(s, "/")
		if status, _, from := v2.step(stage, name); status != "cached" || from != 1 {
			t.Errorf("re-run %s: got %s from run %d, want cached from run 1", s, status, from)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
