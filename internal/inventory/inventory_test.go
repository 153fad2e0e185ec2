package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestParseDpkgStatus(t *testing.T) {
	data, err := os.ReadFile("testdata/dpkg-status")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDpkgStatus(data, "/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Type: "deb", Name: "base-files", Version: "12.4+deb12u5", Arch: "amd64", DB: "/var/lib/dpkg/status"},
		{Type: "deb", Name: "libssl3", Version: "3.0.13-1~deb12u1", Arch: "amd64", Source: "openssl", DB: "/var/lib/dpkg/status"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseDpkgStatus([]byte("Package: x\nno colon here\n"), "s"); err == nil {
		t.Error("malformed status accepted")
	}
}

func TestParseApkInstalled(t *testing.T) {
	data, err := os.ReadFile("testdata/apk-installed")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseApkInstalled(data, "/lib/apk/db/installed")
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Type: "apk", Name: "musl", Version: "1.2.4-r2", Arch: "x86_64", License: "MIT", Source: "musl", DB: "/lib/apk/db/installed"},
		{Type: "apk", Name: "busybox", Version: "1.36.1-r5", Arch: "x86_64", License: "GPL-2.0-only", Source: "busybox", DB: "/lib/apk/db/installed"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestFromSource(t *testing.T) {
	inv, err := FromSource("../vuln/testdata/vulnapp/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	b := inv.Binaries[0]
	want := []Module{{Path: "golang.org/x/text", Version: "v0.3.0", Sum: "h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg="}}
	if b.Main.Path != "example.com/vulnapp" || !reflect.DeepEqual(b.Deps, want) || b.GoVersion != "" {
		t.Errorf("got %+v", b)
	}
}

// goBinary builds the vulnapp fixture for GOARCH.
func goBinary(t *testing.T, arch string) []byte {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	src, _ := filepath.Abs("../vuln/testdata/vulnapp")
	out := filepath.Join(t.TempDir(), "app")
	cmd := proc.Command(t.Context(), "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type file struct {
	name string
	data []byte
}

func layer(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.data)
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testIndex is a two-platform index. Both images carry a dpkg database and
// a Go binary that replaces a script of the lower layer; the upper layer
// deletes three lower binaries: a file whiteout, an opaque directory and a
// directory whiteout.
func testIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	dpkg, _ := os.ReadFile("testdata/dpkg-status")
	idx := v1.ImageIndex(empty.Index)
	for _, arch := range []string{"amd64", "arm64"} {
		bin := goBinary(t, arch)
		img, err := mutate.AppendLayers(empty.Image,
			layer(t, file{"var/lib/dpkg/status.d/base", dpkg}, file{"usr/bin/old", bin}, file{"etc/hostname", []byte("x\n")},
				file{"opt/tool/bin/tool", bin}, file{"srv/gone/bin/x", bin}, file{"app/server", []byte("#!/bin/sh\n")}),
			layer(t, file{"app/server", bin}, file{"usr/bin/.wh.old", nil}, file{"opt/tool/.wh..wh..opq", nil}, file{"srv/.wh.gone", nil}),
		)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: arch})
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return idx
}

func TestFromLayout(t *testing.T) {
	idx := testIndex(t)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	for _, tc := range []struct {
		platform string
		want     []string
	}{
		{"", []string{"linux/amd64"}},
		{"linux/arm64", []string{"linux/arm64"}},
		{"all", []string{"linux/amd64", "linux/arm64"}},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			inv, err := Load(context.Background(), dir+"@"+d.String(), Options{Platform: tc.platform})
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, inv, d.String(), tc.want)
		})
	}
	if _, err := Load(context.Background(), dir+"@"+d.String(), Options{Platform: "linux/s390x"}); err == nil {
		t.Error("missing platform accepted")
	}
}

func checkImage(t *testing.T, inv *Inventory, digest string, plats []string) {
	t.Helper()
	if inv.Digest != digest || inv.Kind != "image" {
		t.Errorf("digest %s kind %s, want %s image", inv.Digest, inv.Kind, digest)
	}
	if len(inv.Binaries) != len(plats) {
		t.Fatalf("binaries %+v, want one per platform %v (the whited-out one gone)", inv.Binaries, plats)
	}
	for i, b := range inv.Binaries {
		if b.Path != "/app/server" || b.Platform != plats[i] || len(b.Deps) != 1 || b.Deps[0].Version != "v0.3.0" || b.GoVersion == "" {
			t.Errorf("binary %+v", b)
		}
	}
	if len(inv.Packages) != 2*len(plats) || inv.Packages[1].Name != "libssl3" || inv.Packages[1].DB != "/var/lib/dpkg/status.d/base" {
		t.Errorf("packages %+v", inv.Packages)
	}
}

func TestFromRegistry(t *testing.T) {
	idx := testIndex(t)
	ctx := context.Background()
	s, err := registry.Serve(ctx, t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	d, _ := idx.Digest()
	ref, err := name.ParseReference(s.Addr()+"/examplepay/app@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(ctx, ref.String(), Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, inv, d.String(), []string{"linux/amd64"})
}

func FuzzParseDpkgStatus(f *testing.F) {
	data, _ := os.ReadFile("testdata/dpkg-status")
	f.Add(data)
	f.Add([]byte(" leading continuation\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseDpkgStatus(data, "f")
		_, _ = ParseApkInstalled(data, "f")
	})
}
