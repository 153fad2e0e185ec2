package imagepush

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/imagebuild"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestBuildPushPull builds the fixture for two platforms, pushes it to the
// embedded registry with two tags and provenance, and pulls it back by
// digest and by tag with every digest verified.
func TestBuildPushPull(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	ctx := context.Background()
	dir, _ := filepath.Abs("../../oci/testdata/hello")
	env, log, _ := newEnv(t, dir)
	env.Git = step.Git{SHA: "0123456789abcdef0123456789abcdef01234567", Time: 1700000000}
	// A registry the engine runs for the whole run, handed over as env.
	srv, err := registry.Serve(ctx, registry.Root(env.StateDir), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	env.Vars = append(env.Vars, registry.EnvAddr+"="+srv.Addr())

	b, _ := imagebuild.New(inputs{YAML: ""})
	built, err := b.Run(ctx, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	env.Outputs = func(stage, s string) (map[string]any, bool) {
		if s == "image" {
			return built.Outputs, true
		}
		return nil, false
	}
	p, err := New(inputs{YAML: "tags: [0123456789ab, 1.4.0, \"\"]\n"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(ctx, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	want := built.Outputs["digest"].(string)
	image := res.Outputs["image"].(string)
	if image != srv.Addr()+"/hello@"+want {
		t.Errorf("image = %s, want %s/hello@%s", image, srv.Addr(), want)
	}
	if tags := res.Outputs["tags"].([]string); len(tags) != 2 {
		t.Errorf("tags = %v", tags)
	}
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := oci.PullIndex(ctx, ref, oci.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	var archs []string
	for _, m := range im.Manifests {
		archs = append(archs, m.Platform.Architecture)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d != m.Digest {
			t.Errorf("%s: pulled digest %s, index says %s", m.Platform.Architecture, d, m.Digest)
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			// Digest-verifying read of every layer.
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Errorf("layer of %s: %v", m.Platform.Architecture, err)
			}
		}
	}
	if strings.Join(archs, ",") != "amd64,arm64" {
		t.Errorf("platforms = %v", archs)
	}
	tagRef, _ := name.ParseReference(srv.Addr()+"/hello:1.4.0", name.Insecure)
	tagged, err := oci.PullIndex(ctx, tagRef, oci.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := tagged.Digest(); d.String() != want {
		t.Errorf("tag 1.4.0 → %s, want %s", d, want)
	}
	refs, err := remote.Referrers(ref.Context().Digest(want))
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].ArtifactType != "application/vnd.in-toto+json" {
		t.Errorf("referrers = %+v, want one in-toto statement", rm.Manifests)
	}
}

func TestNewRejectsBadTag(t *testing.T) {
	if _, err := New(inputs{YAML: "tags: [\"bad tag\"]\n"}); err == nil || !strings.Contains(err.Error(), "tags.0") {
		t.Errorf("err = %v", err)
	}
}
