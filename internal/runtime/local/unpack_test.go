package local

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/runtime"
)

type tarEntry struct {
	name, link string
	typ        byte
	body       string
	mode       int64
}

func tarOf(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// applyAll applies layers in order into a fresh root under a parent dir
// and returns the root; files outside it show an escape.
func applyAll(t testing.TB, layers ...[]byte) (string, error) {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, l := range layers {
		if err := applyLayer(root, bytes.NewReader(l)); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

func TestApplyLayerRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
	}{
		{"dot-dot", []tarEntry{{name: "../evil", typ: tar.TypeReg, body: "x"}}},
		{"dot-dot inside", []tarEntry{{name: "a/../../evil", typ: tar.TypeReg, body: "x"}}},
		{"absolute", []tarEntry{{name: "/evil", typ: tar.TypeReg, body: "x"}}},
		{"hard link out", []tarEntry{{name: "evil", typ: tar.TypeLink, link: "../../etc/passwd"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := applyAll(t, tarOf(t, tt.entries...))
			if err == nil {
				t.Fatal("layer applied, want a refusal")
			}
			if !errors.Is(err, ErrUnsafeLayer) {
				t.Errorf("error = %v, want ErrUnsafeLayer", err)
			}
			if _, serr := os.Lstat(filepath.Join(filepath.Dir(dir), "evil")); serr == nil {
				t.Error("a file was written outside the root")
			}
		})
	}
}

// TestApplyLayerSymlinksStayInside writes through symbolic links that
// point at or above the root: they resolve inside it, as in the container.
func TestApplyLayerSymlinksStayInside(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    string // where the file lands, relative to the root
	}{
		{"relative link to the parent", []tarEntry{
			{name: "up", typ: tar.TypeSymlink, link: ".."},
			{name: "up/evil", typ: tar.TypeReg, body: "x"}}, "evil"},
		{"absolute link", []tarEntry{
			{name: "var/", typ: tar.TypeDir, mode: 0o755},
			{name: "var/run", typ: tar.TypeSymlink, link: "/run"},
			{name: "var/run/evil", typ: tar.TypeReg, body: "x"}}, "run/evil"},
		{"link chain far above", []tarEntry{
			{name: "a", typ: tar.TypeSymlink, link: "../../../../tmp"},
			{name: "a/evil", typ: tar.TypeReg, body: "x"}}, "tmp/evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := applyAll(t, tarOf(t, tt.entries...))
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, tt.want)); err != nil || string(b) != "x" {
				t.Errorf("%s = %q, %v; want x", tt.want, b, err)
			}
			ents, err := os.ReadDir(filepath.Dir(dir))
			if err != nil || len(ents) != 1 {
				t.Errorf("beside the root: %v %v", ents, err)
			}
		})
	}
}

func TestApplyLayerWhiteouts(t *testing.T) {
	lower := tarOf(t,
		tarEntry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "etc/keep", typ: tar.TypeReg, body: "k"},
		tarEntry{name: "etc/gone", typ: tar.TypeReg, body: "g"},
		tarEntry{name: "data/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "data/old", typ: tar.TypeReg, body: "o"},
		tarEntry{name: "link", typ: tar.TypeSymlink, link: "etc/keep"},
		tarEntry{name: "bin/tool", typ: tar.TypeReg, body: "#!", mode: 0o4755},
	)
	upper := tarOf(t,
		tarEntry{name: "etc/.wh.gone", typ: tar.TypeReg},
		tarEntry{name: "data/.wh..wh..opq", typ: tar.TypeReg},
		tarEntry{name: "data/new", typ: tar.TypeReg, body: "n"},
		// A file replacing a symlink must not write through it.
		tarEntry{name: "link", typ: tar.TypeReg, body: "replaced"},
		tarEntry{name: "hard", typ: tar.TypeLink, link: "etc/keep"},
	)
	dir, err := applyAll(t, lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want string // "" for absent
	}{
		{"etc/keep", "k"}, {"etc/gone", ""}, {"data/old", ""}, {"data/new", "n"}, {"link", "replaced"}, {"hard", "k"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, tt.path))
		got := string(b)
		if err != nil {
			got = ""
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.path, got, tt.want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "bin/tool"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/tool mode = %v (%v), want setuid 0755", fi.Mode(), err)
	}
}

// TestStartRefusesTraversalImage pushes the test image with one more layer
// holding a "../" entry: Start fails and nothing is unpacked.
func TestStartRefusesTraversalImage(t *testing.T) {
	res := testIndex(t)
	im, err := res.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := res.Index.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	raw := tarOf(t, tarEntry{name: "../../escaped", typ: tar.TypeReg, body: "x"})
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	bad, err := mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: bad, Descriptor: v1.Descriptor{Platform: im.Manifests[0].Platform}})
	ref := pushed(t, idx)
	dir := t.TempDir()
	r := newRuntime(t, runtime.Process, dir)
	_, err = r.Start(context.Background(), runtime.InstanceSpec{ID: "bad", Workload: runtime.Workload{Image: ref}})
	if !errors.Is(err, ErrUnsafeLayer) {
		t.Fatalf("error = %v, want ErrUnsafeLayer", err)
	}
	if !strings.Contains(err.Error(), "../../escaped") {
		t.Errorf("error %q does not name the entry", err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("images/ holds %d entries after a refused unpack", len(ents))
	}
}

func FuzzApplyLayer(f *testing.F) {
	f.Add(tarOf(f, tarEntry{name: "a/b", typ: tar.TypeReg, body: "x"}))
	f.Add(tarOf(f, tarEntry{name: "l", typ: tar.TypeSymlink, link: "/"}, tarEntry{name: "l/x", typ: tar.TypeReg}))
	f.Add(tarOf(f, tarEntry{name: "d/.wh..wh..opq", typ: tar.TypeReg}, tarEntry{name: ".wh.d", typ: tar.TypeReg}))
	f.Add(tarOf(f, tarEntry{name: "h", typ: tar.TypeLink, link: "a/b"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir, _ := applyAll(t, b)
		ents, err := os.ReadDir(filepath.Dir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 {
			t.Fatalf("the layer wrote beside the root: %v", ents)
		}
	})
}
