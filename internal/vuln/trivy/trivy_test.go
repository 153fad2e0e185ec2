package trivy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/vuln"
	"github.com/gantry-ci/gantry/internal/vuln/trivy/trivytest"
)

const fixture = "../testdata/trivy/image.json"

// twoPlatformIndex returns an index of two small random images.
func twoPlatformIndex(t *testing.T) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	digests := map[string]v1.Hash{}
	for _, arch := range []string{"arm64", "amd64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests["linux/"+arch] = d
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return idx, digests
}

func TestRunLayout(t *testing.T) {
	idx, digests := twoPlatformIndex(t)
	lay := filepath.Join(t.TempDir(), "layout")
	if err := oci.WriteLayout(lay, idx); err != nil {
		t.Fatal(err)
	}
	// A second image in the same layout, listed first: trivy --input on
	// the layout itself would scan it.
	other, _ := twoPlatformIndex(t)
	if err := oci.WriteLayout(lay, other); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	target := lay + "@" + idxDigest.String()

	t.Run("default platform", func(t *testing.T) {
		dir, env := trivytest.Install(t, fixture)
		s, err := Run(context.Background(), Options{Target: target, Env: env, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cs := trivytest.Calls(t, dir)
		if len(cs) != 1 {
			t.Fatalf("trivy ran %d times, want 1", len(cs))
		}
		want := []string{"image", "--format", "json", "--quiet", "--scanners", "vuln", "--output"}
		if !slices.Equal(cs[0][:len(want)], want) {
			t.Errorf("args %v, want prefix %v", cs[0], want)
		}
		for _, f := range []string{"--skip-db-update", "--skip-java-db-update", "--offline-scan", "--input"} {
			if !slices.Contains(cs[0], f) {
				t.Errorf("args %v lack %s", cs[0], f)
			}
		}
		var m v1.IndexManifest
		data, err := os.ReadFile(filepath.Join(dir, "index-0.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Manifests) != 1 || m.Manifests[0].Digest != digests["linux/amd64"] {
			t.Errorf("trivy was given %+v, want only the linux/amd64 image %s", m.Manifests, digests["linux/amd64"])
		}
		if s.Digest != idxDigest.String() || len(s.Parts) != 1 || s.Parts[0].Platform != "linux/amd64" {
			t.Errorf("scan: digest %s, parts %+v", s.Digest, s.Parts)
		}
		fs := s.Findings()
		if len(fs) != 7 || fs[0].Platform != "linux/amd64" {
			t.Errorf("findings: %d, first %+v", len(fs), fs[0])
		}
	})
	t.Run("all platforms", func(t *testing.T) {
		dir, env := trivytest.Install(t, fixture)
		s, err := Run(context.Background(), Options{Target: target, Platform: "all", Env: env, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(trivytest.Calls(t, dir)); n != 2 {
			t.Errorf("trivy ran %d times, want 2", n)
		}
		plats := map[string]int{}
		for _, f := range s.Findings() {
			plats[f.Platform]++
		}
		if plats["linux/amd64"] != 7 || plats["linux/arm64"] != 7 {
			t.Errorf("findings by platform %v", plats)
		}
	})
	t.Run("missing platform", func(t *testing.T) {
		_, env := trivytest.Install(t, fixture)
		_, err := Run(context.Background(), Options{Target: target, Platform: "linux/s390x", Env: env, TempDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestRunRegistry(t *testing.T) {
	idx, digests := twoPlatformIndex(t)
	srv, err := registry.Serve(t.Context(), registry.Root(t.TempDir()), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()
	repo, err := oci.Repository(srv.Addr()+"/examplepay/api", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.PushIndex(t.Context(), idx, repo, []string{"v1"}, oci.PushOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	dir, env := trivytest.Install(t, fixture)
	cache := t.TempDir()
	os.MkdirAll(filepath.Join(cache, "db"), 0o755)
	os.WriteFile(filepath.Join(cache, "db", "metadata.json"), []byte(`{"Version":2,"NextUpdate":"2026-11-20T12:00:00Z","UpdatedAt":"2026-11-20T06:00:00Z","DownloadedAt":"2026-11-20T07:00:00Z"}`), 0o644)
	s, err := Run(context.Background(), Options{Target: srv.Addr() + "/examplepay/api:v1", Insecure: true, Env: env,
		CacheDir: cache, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cs := trivytest.Calls(t, dir)
	if len(cs) != 1 {
		t.Fatalf("trivy ran %d times", len(cs))
	}
	args := strings.Join(cs[0], " ")
	for _, want := range []string{
		"image --format json --quiet --scanners vuln --output ",
		" --cache-dir " + cache + " --skip-db-update --skip-java-db-update --offline-scan --image-src remote --insecure " +
			srv.Addr() + "/examplepay/api@" + digests["linux/amd64"].String(),
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	idxDigest, _ := idx.Digest()
	if s.Digest != idxDigest.String() {
		t.Errorf("digest %s, want the index's %s", s.Digest, idxDigest)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	rep := s.NewReport(vuln.Gate{}.Apply(s.Findings(), now), now)
	if rep.Database != "trivy, database of 2026-11-20 06:00 UTC" || rep.Digest != idxDigest.String() {
		t.Errorf("report database %q digest %s", rep.Database, rep.Digest)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "the Trivy database is 8 days old") }) {
		t.Errorf("no staleness warning: %v", rep.Warnings)
	}
	fresh := s.NewReport(vuln.Gate{}.Apply(s.Findings(), now), s.DBUpdatedAt.Add(time.Hour))
	if slices.ContainsFunc(fresh.Warnings, func(w string) bool { return strings.Contains(w, "Trivy database") }) {
		t.Errorf("fresh database warned: %v", fresh.Warnings)
	}
}

func TestRunFilesAndErrors(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "api")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	gomod := filepath.Join(src, "go.mod")
	os.WriteFile(gomod, []byte("module example.com/api\n"), 0o644)
	archive := filepath.Join(src, "image.tar")
	os.WriteFile(archive, []byte("not really"), 0o644)
	for _, tc := range []struct {
		name, target string
		want         []string
	}{
		{"binary as rootfs", bin, []string{"rootfs", bin}},
		{"source tree", src, []string{"fs", src}},
		{"go.mod", gomod, []string{"fs", gomod}},
		{"image archive", archive, []string{"image", archive}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, env := trivytest.Install(t, fixture)
			if _, err := Run(context.Background(), Options{Target: tc.target, Env: env, TempDir: t.TempDir(), AllowDownload: true}); err != nil {
				t.Fatal(err)
			}
			cs := trivytest.Calls(t, dir)
			if len(cs) != 1 || cs[0][0] != tc.want[0] || cs[0][len(cs[0])-1] != tc.want[1] || slices.Contains(cs[0], "--skip-db-update") {
				t.Errorf("args %v, want %s ... %s and no --skip-db-update (downloads allowed)", cs, tc.want[0], tc.want[1])
			}
		})
	}
	t.Run("not installed", func(t *testing.T) {
		_, err := Run(context.Background(), Options{Target: bin, Env: []string{"PATH=" + t.TempDir()}})
		if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "trivy.dev") {
			t.Errorf("err = %v", err)
		}
		if Available([]string{"PATH=" + t.TempDir()}) {
			t.Error("Available with an empty PATH")
		}
	})
	t.Run("no database", func(t *testing.T) {
		_, env := trivytest.Install(t, fixture)
		env = append(env, "FAKE_TRIVY_STDERR=2026-11-28T10:00:00Z\tFATAL\tFatal error\tinit error: DB error: --skip-db-update cannot be specified on the first run")
		_, err := Run(context.Background(), Options{Target: bin, Env: env, TempDir: t.TempDir(), CacheDir: "/nonexistent/trivy"})
		if !errors.Is(err, ErrNoDB) || !strings.Contains(err.Error(), "/nonexistent/trivy") || !strings.Contains(err.Error(), "--download-db-only") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("trivy fails", func(t *testing.T) {
		_, env := trivytest.Install(t, fixture)
		env = append(env, "FAKE_TRIVY_STDERR=FATAL unable to initialize a scanner")
		_, err := Run(context.Background(), Options{Target: bin, Env: env, TempDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "unable to initialize a scanner") || !strings.Contains(err.Error(), "exit status 1") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("garbage report", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(bad, []byte("{\"SchemaVersion\": 2,\n \"Results\": [}"), 0o644)
		_, env := trivytest.Install(t, bad)
		_, err := Run(context.Background(), Options{Target: bin, Env: env, TempDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "trivy output for "+bin+":2:14") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("layout without digest", func(t *testing.T) {
		lay := t.TempDir()
		os.WriteFile(filepath.Join(lay, "index.json"), []byte(`{}`), 0o644)
		_, env := trivytest.Install(t, fixture)
		_, err := Run(context.Background(), Options{Target: lay, Env: env, TempDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "name the image by digest") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestReadReport(t *testing.T) {
	s, err := ReadReport(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Findings()) != 7 || !strings.HasPrefix(s.Digest, "sha256:4c5e") || !strings.HasSuffix(s.Target, s.Digest) {
		t.Errorf("scan %+v", s)
	}
	if _, err := ReadReport("nope.json"); err == nil || !strings.Contains(err.Error(), "read trivy report") {
		t.Errorf("err = %v", err)
	}
}
