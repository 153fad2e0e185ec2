package oci

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/gantry-ci/gantry/internal/testenv"
)

func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
}

// copyTree copies the fixture so that two builds read different paths.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

const epoch = 1700000000

func TestBuildReproducible(t *testing.T) {
	needGo(t)
	ctx := context.Background()
	var digests []v1.Hash
	var last *Result
	for range 2 {
		dir := copyTree(t, "testdata/hello")
		r, err := Build(ctx, Options{Dir: dir, SourceDateEpoch: epoch, Layout: filepath.Join(t.TempDir(), "layout"),
			Labels: map[string]string{"org.opencontainers.image.revision": "abc"}})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, r.Digest)
		last = r
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds of the same source: %s and %s", digests[0], digests[1])
	}
	if got, want := strings.Join(last.Platforms, ","), "linux/amd64,linux/arm64"; got != want {
		t.Errorf("platforms = %s, want %s", got, want)
	}
	im, err := last.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index manifests = %+v", im.Manifests)
	}
	img, err := last.Index.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/app/hello" || !cf.Created.Time.Equal(time.Unix(epoch, 0)) {
		t.Errorf("config: user %q entrypoint %v created %v", cf.Config.User, cf.Config.Entrypoint, cf.Created)
	}
	if cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("config platform %s/%s", cf.OS, cf.Architecture)
	}
	files := map[string]*tar.Header{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if !h.ModTime.Equal(time.Unix(epoch, 0)) {
			t.Errorf("%s mtime %v, want SOURCE_DATE_EPOCH", h.Name, h.ModTime)
		}
	}
	for _, want := range []string{"etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt", "app/hello", "tmp", "home/nonroot"} {
		if files[want] == nil {
			t.Errorf("image lacks %s", want)
		}
	}
	if _, err := os.Stat("/usr/share/zoneinfo/Europe/Berlin"); err == nil && files["usr/share/zoneinfo/Europe/Berlin"] == nil {
		t.Error("image lacks tzdata")
	}
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox"} {
		if files[shell] != nil {
			t.Errorf("image has a shell: %s", shell)
		}
	}
	if h := files["tmp"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp mode = %o, want 1777", h.Mode)
	}
	if h := files["home/nonroot"]; h == nil || h.Uid != Nonroot {
		t.Errorf("/home/nonroot owner = %+v", h)
	}
	if h := files["app/hello"]; h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("binary mode %o uid %d", h.Mode, h.Uid)
	}
}

func TestBuildCacheHit(t *testing.T) {
	needGo(t)
	ctx := context.Background()
	dir := copyTree(t, "testdata/hello")
	o := Options{Dir: dir, SourceDateEpoch: epoch, Layout: filepath.Join(t.TempDir(), "layout"), CacheDir: t.TempDir(),
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	first, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.Digest != first.Digest {
		t.Errorf("second build: cached=%v digest %s, first %s", second.Cached, second.Digest, first.Digest)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if third.Cached || third.Digest == first.Digest {
		t.Errorf("changed source: cached=%v digest %s (first %s)", third.Cached, third.Digest, first.Digest)
	}
}
