package sbom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/registry"
	cdxsbom "github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func schemaDir(t *testing.T) string {
	dir := os.Getenv("GANTRY_TEST_DATA")
	if dir == "" {
		dir = "/work/shared/data"
	}
	d := filepath.Join(dir, "cyclonedx-schema")
	if _, err := os.Stat(d); err != nil {
		testenv.Missing(t, "shared data cyclonedx-schema", err.Error()+"; set GANTRY_TEST_DATA")
	}
	return d
}

func TestNewRejects(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"format: spdx-json\n", "with.format"},
		{"fromat: x\n", "pipeline.yaml:1:1"},
	} {
		if _, err := New(steptest.Inputs{YAML: c.yaml}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q) = %v, want error mentioning %q", c.yaml, err, c.want)
		}
	}
}

// TestSBOMAttached builds the vulnapp image with gantry's builder, pushes
// it to the embedded registry (in-process) and runs the step as the
// security stage would: the SBOM validates, lists the image's modules, and
// is attached as cosign's .sbom tag and as an OCI 1.1 referrer.
func TestSBOMAttached(t *testing.T) {
	schemas := schemaDir(t)
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	ctx := context.Background()
	src, _ := filepath.Abs("../../vuln/testdata/vulnapp")
	lay := filepath.Join(t.TempDir(), "layout")
	built, err := oci.Build(ctx, oci.Options{
		Dir: src, Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		SourceDateEpoch: 1700000000, Layout: lay, Env: append(os.Environ(), "GOFLAGS=-mod=readonly"),
	})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	srv, err := registry.Serve(ctx, registry.Root(state), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	repo, err := oci.Repository(srv.Addr()+"/examplepay/vulnapp", true)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := oci.PushIndex(ctx, built.Index, repo, []string{"abc"}, oci.PushOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}

	s, err := New(steptest.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	s.(*sbomStep).now = func() time.Time { return time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC) }
	env, log, art := steptest.NewEnv(t, t.TempDir(), "security", "sbom")
	env.StateDir = state
	env.Vars = append(env.Vars, registry.EnvAddr+"="+srv.Addr())
	env.Outputs = func(stage, step string) (map[string]any, bool) {
		switch stage + "/" + step {
		case "build-test/image":
			return map[string]any{"image": lay + "@" + built.Digest.String()}, true
		case "build-test/push":
			return map[string]any{"image": pushed.String()}, true
		}
		return nil, false
	}
	res, err := s.Run(ctx, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	data, err := os.ReadFile(filepath.Join(art, ArtifactName))
	if err != nil {
		t.Fatal(err)
	}
	v, err := cdxsbom.NewValidator(schemas)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(data); err != nil {
		t.Error(err)
	}
	if got, want := res.Outputs["digest"], fmt.Sprintf("sha256:%x", sha256.Sum256(data)); got != want {
		t.Errorf("digest output %v, want the artifact's %s", got, want)
	}
	// Two platforms: two binaries, each linking x/text; one component
	// for the module, one per main binary, one toolchain.
	if res.Outputs["modules"] != 2 || res.Outputs["components"] != 4 {
		t.Errorf("outputs %v\n%s", res.Outputs, log)
	}
	var doc struct {
		Metadata struct {
			Component struct {
				Version string `json:"version"`
			} `json:"component"`
		} `json:"metadata"`
	}
	json.Unmarshal(data, &doc)
	if doc.Metadata.Component.Version != built.Digest.String() {
		t.Errorf("subject version %q, want the image digest %s", doc.Metadata.Component.Version, built.Digest)
	}

	// cosign's attachment: REPO:sha256-<hex>.sbom, one CycloneDX layer.
	tag, err := name.NewTag(srv.Addr()+"/examplepay/vulnapp:sha256-"+built.Digest.Hex+".sbom", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["attached"] != tag.String() {
		t.Errorf("attached = %v, want %s", res.Outputs["attached"], tag)
	}
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("attachment layers %v %v", layers, err)
	}
	mt, _ := layers[0].MediaType()
	if mt != cdxsbom.MediaType {
		t.Errorf("attachment layer media type %s", mt)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("attached SBOM differs from the artifact (%v)", err)
	}

	// OCI 1.1 referrer with the image as subject.
	idx, err := remote.Referrers(repo.Digest(built.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	found := false
	for _, d := range m.Manifests {
		if d.ArtifactType == cdxsbom.MediaType {
			found = true
		}
	}
	if !found {
		t.Errorf("no referrer of type %s: %+v", cdxsbom.MediaType, m.Manifests)
	}
}
