package registry

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/oci"
)

// multiArch returns an index of two random images for amd64 and arm64.
func multiArch(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return idx
}

func serve(t *testing.T, root string) *Server {
	t.Helper()
	s, err := Serve(context.Background(), root, "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPushPullPersistReferrers pushes a multi-arch index with tags and a
// provenance artifact, restarts the registry on the same directory, and
// pulls everything back by digest with digests verified.
func TestPushPullPersistReferrers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := serve(t, root)
	repo, err := oci.Repository(s.Addr()+"/examplepay/payment-service", true)
	if err != nil {
		t.Fatal(err)
	}
	idx := multiArch(t)
	want, _ := idx.Digest()
	ref, err := oci.PushIndex(ctx, idx, repo, []string{"abc123", "1.2.0"}, oci.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref.DigestStr() != want.String() {
		t.Fatalf("pushed digest %s, want %s", ref.DigestStr(), want)
	}
	desc := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: want}
	raw, _ := idx.RawManifest()
	desc.Size = int64(len(raw))
	art, err := oci.NewArtifact(desc, "application/vnd.in-toto+json", "application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := art.Push(ctx, repo, nil); err != nil {
		t.Fatal(err)
	}
	closeServer(t, s)

	s = serve(t, root)
	defer closeServer(t, s)
	repo, _ = oci.Repository(s.Addr()+"/examplepay/payment-service", true)
	got, err := oci.PullIndex(ctx, repo.Digest(want.String()), oci.PushOptions{})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	for _, m := range im.Manifests {
		img, err := got.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest while reading
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			for {
				if _, err := rc.Read(buf); err != nil {
					break
				}
			}
			if err := rc.Close(); err != nil {
				t.Errorf("layer %s of %s: %v", m.Digest, m.Platform.Architecture, err)
			}
		}
	}
	tagged, err := oci.PullIndex(ctx, repo.Tag("1.2.0"), oci.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := tagged.Digest(); d != want {
		t.Errorf("tag 1.2.0 → %s, want %s", d, want)
	}
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 {
		t.Errorf("tags = %v, want 2", tags)
	}
	refs, err := remote.Referrers(repo.Digest(want.String()))
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != art.Digest() || rm.Manifests[0].ArtifactType != "application/vnd.in-toto+json" {
		t.Errorf("referrers = %+v, want the provenance artifact %s", rm.Manifests, art.Digest())
	}
	_ = name.Insecure
}

func TestEnsureReusesServing(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	s, err := Serve(ctx, Root(state), "127.0.0.1:0", StateFile(state), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := Ensure(ctx, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if addr != s.Addr() {
		t.Errorf("Ensure = %s, want the serving registry %s", addr, s.Addr())
	}
	_ = stop(ctx)
	closeServer(t, s)

	addr2, stop2, err := Ensure(ctx, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, addr2); err != nil {
		t.Errorf("started registry does not answer: %v", err)
	}
	if err := stop2(ctx); err != nil {
		t.Fatal(err)
	}
	if Ping(ctx, addr2) == nil {
		t.Errorf("registry at %s still answers after stop", addr2)
	}
	addr3, _, _ := Ensure(ctx, state, []string{EnvAddr + "=10.1.2.3:5000"}, nil)
	if addr3 != "10.1.2.3:5000" {
		t.Errorf("Ensure ignored %s: %s", EnvAddr, addr3)
	}
}

// TestEnsureShared: steps running at once share the registry this process
// started, which stops with the last of them, and the next one comes back
// on the same address.
func TestEnsureShared(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	const n = 4
	addrs := make([]string, n)
	stops := make([]func(context.Context) error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, stop, err := Ensure(ctx, state, nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			addrs[i], stops[i] = a, stop
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, a := range addrs[1:] {
		if a != addrs[0] {
			t.Fatalf("concurrent Ensure calls got %v, want one registry", addrs)
		}
	}
	for i, stop := range stops {
		_ = stop(ctx)
		_ = stop(ctx) // a second call is a no-op
		if up := Ping(ctx, addrs[0]) == nil; up != (i < n-1) {
			t.Errorf("after %d of %d stops: answering = %v", i+1, n, up)
		}
	}
	again, stop, err := Ensure(ctx, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(ctx)
	if again != addrs[0] {
		t.Errorf("restarted on %s, want the earlier %s", again, addrs[0])
	}
}

// TestServeStateSharedWithEnsure: a registry started by ServeState (the
// one gantry serve hosts) comes back on the address earlier registries of
// the state dir used, and Ensure in a run uses it instead of starting its
// own, so it keeps answering after the run's release.
func TestServeStateSharedWithEnsure(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	earlier, stop, err := Ensure(ctx, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := ServeState(ctx, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeServer(t, s)
	if got := s.Addr(); got != earlier {
		t.Errorf("ServeState address: got %s, want the earlier %s", got, earlier)
	}
	addr, release, err := Ensure(ctx, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if addr != s.Addr() {
		t.Errorf("Ensure while served: got %s, want the served %s", addr, s.Addr())
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, s.Addr()); err != nil {
		t.Errorf("served registry after a run's release: %v", err)
	}
	if !IsEmbedded(state, nil, s.Addr()+"/app@sha256:"+strings.Repeat("0", 64)) {
		t.Errorf("IsEmbedded(%s/...): got false, want true", s.Addr())
	}
}
