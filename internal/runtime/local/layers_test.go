package local

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/registry"
)

// blobCounter is a transport that records which blobs were fetched.
type blobCounter struct {
	mu      sync.Mutex
	fetched []string
}

func (c *blobCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if i := strings.Index(req.URL.Path, "/blobs/"); i >= 0 && req.Method == http.MethodGet {
		c.mu.Lock()
		c.fetched = append(c.fetched, req.URL.Path[i+len("/blobs/"):])
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// take returns the blobs fetched since the last take, sorted.
func (c *blobCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.fetched
	c.fetched = nil
	sort.Strings(out)
	return out
}

// layerDigests lists img's layer digests.
func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

// only keeps the names of want in got (the config blobs are fetched too).
func only(got, want []string) []string {
	keep := map[string]bool{}
	for _, w := range want {
		keep[w] = true
	}
	out := []string{}
	for _, g := range got {
		if keep[g] {
			out = append(out, g)
		}
	}
	return out
}

// TestLayersUnpackedOnce: images that share layers with one already
// unpacked fetch and unpack only the layers they add, and what a later
// layer changes (a new file, a whiteout) does not reach the earlier
// image's root filesystem.
func TestLayersUnpackedOnce(t *testing.T) {
	res := testIndex(t)
	im, err := res.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	base, err := res.Index.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	// relabelled: the same layers, another config (what a rebuild with
	// new metadata, or bench/newdigest, pushes).
	cfg := *cf.Config.DeepCopy()
	cfg.Labels = map[string]string{"n": "2"}
	relabelled, err := mutate.Config(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// extended: one more layer, adding a file and removing one of the base.
	raw := tarOf(t, tarEntry{name: "added.txt", typ: tar.TypeReg, body: "new"},
		tarEntry{name: "etc/.wh.passwd", typ: tar.TypeReg})
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	extended, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	srv, err := registry.Serve(ctx, t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	repo, err := oci.Repository(srv.Addr()+"/app", true)
	if err != nil {
		t.Fatal(err)
	}
	push := func(img v1.Image) string {
		idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: im.Manifests[0].Platform}})
		ref, err := oci.PushIndex(ctx, idx, repo, nil, oci.PushOptions{Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		return ref.String()
	}
	baseRef, relabelledRef, extendedRef := push(base), push(relabelled), push(extended)

	blobs := &blobCounter{}
	r, err := New(ctx, t.TempDir(), WithPlainProcesses(), WithTransport(blobs))
	if err != nil {
		t.Fatal(err)
	}
	all := layerDigests(t, extended)
	baseLayers, added := all[:len(all)-1], all[len(all)-1:]

	a, err := r.image(ctx, baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if got := only(blobs.take(), all); len(got) != len(baseLayers) {
		t.Fatalf("first image: fetched layers %v, want its %d layers", got, len(baseLayers))
	}
	tests := []struct {
		name        string
		ref         string
		wantFetched []string
		has, hasnot []string
	}{
		{"same layers, new config", relabelledRef, []string{}, []string{"app/app", "etc/passwd"}, []string{"added.txt"}},
		{"one layer more", extendedRef, added, []string{"app/app", "added.txt"}, []string{"etc/passwd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := r.image(ctx, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := only(blobs.take(), all); strings.Join(got, " ") != strings.Join(tt.wantFetched, " ") {
				t.Errorf("fetched layers %v, want %v", got, tt.wantFetched)
			}
			for _, f := range tt.has {
				if _, err := os.Lstat(filepath.Join(img.RootFS, f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			for _, f := range tt.hasnot {
				if _, err := os.Lstat(filepath.Join(img.RootFS, f)); err == nil {
					t.Errorf("%s is in the image's root, want it absent", f)
				}
			}
			if tt.ref == relabelledRef && img.Config.Labels["n"] != "2" {
				t.Errorf("labels = %v, want n=2 (the image's own config)", img.Config.Labels)
			}
		})
	}
	t.Run("the first image is unchanged", func(t *testing.T) {
		for _, f := range []string{"app/app", "etc/passwd"} {
			if _, err := os.Lstat(filepath.Join(a.RootFS, f)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(a.RootFS, "added.txt")); err == nil {
			t.Error("added.txt of the later layer is in the first image's root")
		}
	})
	t.Run("a restarted runtime fetches nothing", func(t *testing.T) {
		r2, err := New(ctx, r.Dir(), WithPlainProcesses(), WithTransport(blobs))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r2.image(ctx, extendedRef); err != nil {
			t.Fatal(err)
		}
		if got := blobs.take(); len(got) != 0 {
			t.Errorf("fetched %v, want nothing (the image is unpacked)", got)
		}
	})
}
