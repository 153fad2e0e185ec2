package vulnscan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/vuln"
	"github.com/gantry-ci/gantry/internal/vuln/trivy/trivytest"
	"github.com/gantry-ci/gantry/internal/vulndb"
)

func goVulnDB(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GANTRY_TEST_DATA")
	if dir == "" {
		dir = "/work/shared/data"
	}
	p := filepath.Join(dir, "go-vulndb-osv.tar.gz")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "shared data go-vulndb-osv.tar.gz", err.Error()+"; set GANTRY_TEST_DATA")
	}
	return p
}

// buildImage builds internal/vuln/testdata/vulnapp (golang.org/x/text
// v0.3.0) into an OCI layout with gantry's image builder and returns
// LAYOUT@DIGEST, as image-build outputs it.
func buildImage(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	src, err := filepath.Abs("../../vuln/testdata/vulnapp")
	if err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(t.TempDir(), "layout")
	res, err := oci.Build(t.Context(), oci.Options{
		Dir: src, Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}},
		SourceDateEpoch: 1700000000, Layout: lay,
		Env: append(os.Environ(), "GOFLAGS=-mod=readonly"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return lay + "@" + res.Digest.String()
}

func TestNewRejects(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"fail_on: [SEVERE]\n", "with.fail_on"},
		{"no_fix_older_than: soon\n", "with.no_fix_older_than"},
		{"unscored: maybe\n", "with.unscored"},
		{"fial_on: [HIGH]\n", "pipeline.yaml:1:1"},
	} {
		if _, err := New(steptest.Inputs{YAML: c.yaml}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q) = %v, want error mentioning %q", c.yaml, err, c.want)
		}
	}
}

func TestScanImage(t *testing.T) {
	db := goVulnDB(t)
	image := buildImage(t)
	repo := t.TempDir()
	write := func(exc string) {
		os.MkdirAll(filepath.Join(repo, ".gantry"), 0o755)
		if err := os.WriteFile(filepath.Join(repo, ".gantry", "exceptions.yaml"), []byte(exc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, with string, now time.Time) (map[string]any, string, string, error) {
		s, err := New(steptest.Inputs{YAML: "db: " + db + "\n" + with})
		if err != nil {
			t.Fatal(err)
		}
		s.(*scanStep).now = func() time.Time { return now }
		env, log, art := steptest.NewEnv(t, repo, "security", "trivy")
		env.Outputs = func(stage, name string) (map[string]any, bool) {
			if stage == "build-test" && name == "image" {
				return map[string]any{"image": image}, true
			}
			return nil, false
		}
		res, err := s.Run(context.Background(), env)
		if res == nil {
			return nil, log.String(), art, err
		}
		return res.Outputs, log.String(), art, err
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

	t.Run("default gate fails on unscored", func(t *testing.T) {
		write("")
		out, log, art, err := run(t, "", now)
		if !errors.Is(err, ErrGate) {
			t.Fatalf("err = %v, want the gate to fail\n%s", err, log)
		}
		if out["findings"] != 4 || out["unscored"] != 4 || out["failing"] != 4 || out["passed"] != false {
			t.Errorf("outputs = %v", out)
		}
		for _, id := range []string{"GO-2020-0015", "GO-2021-0113", "GO-2022-1059", "GO-2026-5970"} {
			if !strings.Contains(log, id) {
				t.Errorf("log lacks %s:\n%s", id, log)
			}
		}
		var rep vuln.Report
		data, err := os.ReadFile(filepath.Join(art, "vuln-report.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Binaries != 1 || len(rep.Findings) != 4 || rep.Findings[0].Location != "/app/vulnapp" {
			t.Errorf("report: %d binaries, findings %+v", rep.Binaries, rep.Findings)
		}
		sarif, err := os.ReadFile(filepath.Join(art, "vuln-scan.sarif"))
		if err != nil {
			t.Fatal(err)
		}
		back, err := findings.ReadSARIF(sarif)
		if err != nil || len(back) != 1 || back[0].Count(findings.Error) != 4 {
			t.Errorf("SARIF: %+v %v", back, err)
		}
	})
	t.Run("exceptions and unscored warn", func(t *testing.T) {
		write(`exceptions:
  - {id: GO-2022-1059, package: golang.org/x/text, justification: no user input, owner: alice, expires: 2026-12-01}
  - {id: CVE-2020-14040, justification: accepted, owner: bob, expires: 2026-11-01}
`)
		out, log, _, err := run(t, "unscored: warn\n", now)
		if err != nil {
			t.Fatalf("err = %v\n%s", err, log)
		}
		if out["excepted"] != 1 || out["failing"] != 0 {
			t.Errorf("outputs = %v", out)
		}
		if got := fmt.Sprint(out["exceptions"]); got != "[GO-2022-1059 golang.org/x/text]" {
			t.Errorf("exceptions output = %s", got)
		}
		for _, want := range []string{"expired on 2026-11-01", "expires on 2026-12-01", "unscored: warn"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
	})
	t.Run("expired exception fails", func(t *testing.T) {
		write(`exceptions:
  - {id: GO-2020-0015, justification: j, owner: o, expires: 2026-11-01}
  - {id: GO-2021-0113, justification: j, owner: o, expires: 2027-01-01}
  - {id: GO-2022-1059, justification: j, owner: o, expires: 2027-01-01}
  - {id: GO-2026-5970, justification: j, owner: o, expires: 2027-01-01}
`)
		out, log, _, err := run(t, "", now)
		if !errors.Is(err, ErrGate) || !strings.Contains(log, "expired on 2026-11-01") || out["failing"] != 1 || out["excepted"] != 3 {
			t.Errorf("err = %v outputs %v\n%s", err, out, log)
		}
		// The day before expiry, the same file passes.
		if _, log, _, err := run(t, "", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)); err != nil {
			t.Errorf("before expiry: %v\n%s", err, log)
		}
	})
	t.Run("bad exceptions file", func(t *testing.T) {
		write("exceptions:\n  - {id: X, owner: o}\n")
		_, _, _, err := run(t, "", now)
		if err == nil || !strings.Contains(err.Error(), ".gantry/exceptions.yaml:2:5: exceptions[0]: justification is required") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestScanPushedImage scans the image by digest in the embedded registry
// (from: build-test/push), served in-process.
func TestScanPushedImage(t *testing.T) {
	db := goVulnDB(t)
	image := buildImage(t)
	lay, dig, _ := strings.Cut(image, "@")
	h, err := v1.NewHash(dig)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := oci.ReadLayout(lay, h)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	srv, err := registry.Serve(t.Context(), registry.Root(state), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()
	repo, err := oci.Repository(srv.Addr()+"/examplepay/vulnapp", true)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.PushIndex(t.Context(), idx, repo, nil, oci.PushOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(steptest.Inputs{YAML: "db: " + db + "\nfrom: build-test/push\nunscored: warn\n"})
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, t.TempDir(), "security", "trivy")
	env.StateDir = state
	env.Vars = append(env.Vars, registry.EnvAddr+"="+srv.Addr())
	env.Outputs = func(stage, name string) (map[string]any, bool) {
		if stage == "build-test" && name == "push" {
			return map[string]any{"image": ref.String()}, true
		}
		return nil, false
	}
	res, err := s.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res.Outputs["findings"] != 4 || !strings.Contains(log.String(), "Target: "+ref.String()) {
		t.Errorf("outputs %v\n%s", res.Outputs, log)
	}
}

// trivyEnv returns the process environment with PATH replaced by the fake
// trivy's (see trivytest: the real trivy needs its database from the
// network, which tests do not have).
// trivyEnv is the test's environment with fake's PATH and without
// GANTRY_VULN_DB (which scripts/env.sh sets), so that gantry's own scanner
// has no database unless a test gives one; offline, so it fetches none.
func trivyEnv(fake []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "GANTRY_VULN_DB=") {
			out = append(out, kv)
		}
	}
	return append(append(out, vulndb.OfflineEnv+"=1"), fake...)
}

// randomLayout writes a two-platform index of small random images to an
// OCI layout and returns LAYOUT@DIGEST.
func randomLayout(t *testing.T) string {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	lay := filepath.Join(t.TempDir(), "layout")
	if err := oci.WriteLayout(lay, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return lay + "@" + d.String()
}

func TestTrivyScanner(t *testing.T) {
	report, err := filepath.Abs("../../vuln/testdata/trivy/image.json")
	if err != nil {
		t.Fatal(err)
	}
	image := randomLayout(t)
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, ".gantry"), 0o755)
	os.WriteFile(filepath.Join(repo, ".gantry", "exceptions.yaml"), []byte(`exceptions:
  - {id: GO-2022-1059, package: golang.org/x/text, justification: proxy parses the header, owner: alice, expires: 2027-01-31}
  - {id: GHSA-5rcv-m4m3-hfh7, justification: j, owner: bob, expires: 2026-11-01}
`), 0o644)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	run := func(t *testing.T, with string, vars []string) (*step.Result, string, string, error) {
		t.Helper()
		s, err := New(steptest.Inputs{YAML: with})
		if err != nil {
			t.Fatal(err)
		}
		s.(*scanStep).now = func() time.Time { return now }
		env, log, art := steptest.NewEnv(t, repo, "security", "trivy")
		env.Vars = vars
		env.Outputs = func(stage, name string) (map[string]any, bool) {
			if stage == "build-test" && name == "image" {
				return map[string]any{"image": image}, true
			}
			return nil, false
		}
		res, err := s.Run(context.Background(), env)
		return res, log.String(), art, err
	}

	t.Run("trivy scans the built image", func(t *testing.T) {
		dir, fake := trivytest.Install(t, report)
		res, log, art, err := run(t, "scanner: trivy\ntrivy_cache: /var/cache/trivy\n", trivyEnv(fake))
		if !errors.Is(err, ErrGate) {
			t.Fatalf("err = %v, want the gate to fail\n%s", err, log)
		}
		o := res.Outputs
		if o["scanner"] != "trivy" || o["findings"] != 7 || o["failing"] != 5 || o["excepted"] != 1 || o["critical"] != 2 || o["unscored"] != 1 {
			t.Errorf("outputs %v", o)
		}
		for _, want := range []string{"scanning " + image + " with trivy", "CVE-2022-32149: excepted until 2027-01-31 by alice",
			"CVE-2020-14040: exception .gantry/exceptions.yaml:3 (owner bob) expired on 2026-11-01", "FAILED (5 failing)"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		calls := trivytest.Calls(t, dir)
		if len(calls) != 1 || calls[0][0] != "image" || !slices.Contains(calls[0], "--skip-db-update") || !slices.Contains(calls[0], "/var/cache/trivy") {
			t.Errorf("trivy calls %v", calls)
		}
		raw, err := os.ReadFile(filepath.Join(art, "trivy-report.json"))
		want, _ := os.ReadFile(report)
		if err != nil || string(raw) != string(want) {
			t.Errorf("trivy-report.json artifact: %v", err)
		}
		var rep vuln.Report
		data, _ := os.ReadFile(filepath.Join(art, "vuln-report.json"))
		if err := json.Unmarshal(data, &rep); err != nil || rep.Scanner != "trivy" || rep.Digest != strings.SplitN(image, "@", 2)[1] || rep.Findings[0].Platform != "linux/amd64" {
			t.Errorf("vuln-report.json: %v %+v", err, rep)
		}
		sarif, _ := os.ReadFile(filepath.Join(art, "vuln-scan.sarif"))
		if back, err := findings.ReadSARIF(sarif); err != nil || back[0].Count(findings.Error) != 5 {
			t.Errorf("SARIF: %v", err)
		}
	})
	t.Run("existing report with a narrower gate", func(t *testing.T) {
		rel, _ := filepath.Rel(repo, report)
		res, log, art, err := run(t, "trivy_report: "+rel+"\nfail_on: [CRITICAL]\nfixed_only: true\nunscored: ignore\n", trivyEnv(nil))
		// CVE-2024-24790 (CRITICAL, fixed) still fails; zlib1g has no fix.
		if !errors.Is(err, ErrGate) || res.Outputs["failing"] != 1 || !strings.Contains(log, "gating the Trivy report") {
			t.Fatalf("err = %v outputs %v\n%s", err, res.Outputs, log)
		}
		if _, err := os.Stat(filepath.Join(art, "trivy-report.json")); err != nil {
			t.Error(err)
		}
	})
	t.Run("auto without trivy uses gantry", func(t *testing.T) {
		_, log, _, err := run(t, "scanner: auto\n", trivyEnv([]string{"PATH=" + t.TempDir()}))
		if err == nil || !strings.Contains(err.Error(), "no vulnerability database") || !strings.Contains(log, "trivy is not on PATH, using gantry's scanner") {
			t.Errorf("err = %v, want gantry's scanner asking for its database\n%s", err, log)
		}
	})
	t.Run("trivy missing", func(t *testing.T) {
		_, _, _, err := run(t, "scanner: trivy\n", trivyEnv([]string{"PATH=" + t.TempDir()}))
		if err == nil || !strings.Contains(err.Error(), "trivy is not installed") || !strings.Contains(err.Error(), "install it from") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad report", func(t *testing.T) {
		bad := filepath.Join(repo, "bad.json")
		os.WriteFile(bad, []byte(`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": 7}]}]}`), 0o644)
		_, _, _, err := run(t, "trivy_report: bad.json\n", trivyEnv(nil))
		if err == nil || !strings.Contains(err.Error(), "bad.json:1:") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("not cached", func(t *testing.T) {
		s, _ := New(steptest.Inputs{YAML: "scanner: trivy\ntarget: x@sha256:00\n"})
		env, _, _ := steptest.NewEnv(t, repo, "security", "trivy")
		if _, err := s.(step.Cacheable).CacheKey(context.Background(), env); !errors.Is(err, step.ErrNotCacheable) {
			t.Errorf("CacheKey err = %v", err)
		}
	})
}

func TestNewRejectsTrivy(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"scanner: grype\n", `with.scanner: scanner: "grype" is not gantry, trivy or auto`},
		{"scanner: gantry\ntrivy_cache: /c\n", "with.trivy_cache: trivy_cache: only used with scanner: trivy or auto"},
		{"scanner: gantry\ntrivy_report: r.json\n", "with.trivy_report"},
		{"scanner: trivy\ndb: osv.tar.gz\n", "with.db: db: is gantry's OSV database"},
		{"trivy_report: r.json\ntarget: img@sha256:00\n", "with.trivy_report: trivy_report: gates an existing report"},
		{"trivy_downlaod: true\n", "pipeline.yaml:1:1"},
	} {
		if _, err := New(steptest.Inputs{YAML: c.yaml}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q) = %v, want error mentioning %q", c.yaml, err, c.want)
		}
	}
}
