package imagebuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/provenance"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestNewRejects(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"platforms: [linux]\n", "platforms.0"},
		{"platfroms: [linux/amd64]\n", "pipeline.yaml:1:1"},
		{"dir: /abs\n", "dir"},
	} {
		if _, err := New(inputs{YAML: c.yaml}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q) = %v, want error mentioning %q", c.yaml, err, c.want)
		}
	}
}

// TestBuildProvenance builds the fixture and checks the provenance against
// the build: subjects are the index and platform manifest digests, the
// source commit and the linked modules are the resolved dependencies.
func TestBuildProvenance(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	dir, err := filepath.Abs("../../oci/testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	env, log, art := newEnv(t, dir)
	env.RunID, env.Stage, env.Step = "run-1", "build-test", "image"
	env.Git = step.Git{SHA: "0123456789abcdef0123456789abcdef01234567", Time: 1700000000}
	s, err := New(inputs{YAML: "platforms: [linux/amd64, linux/arm64]\n"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	res, err := s.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	digest := res.Outputs["digest"].(string)
	b, err := os.ReadFile(filepath.Join(art, "provenance.intoto.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := provenance.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := "sha256:" + st.Subject[0].Digest["sha256"]; got != digest {
		t.Errorf("subject digest %s, build digest %s", got, digest)
	}
	if len(st.Subject) != 3 || !strings.HasSuffix(st.Subject[2].Name, "@linux/arm64") {
		t.Errorf("subjects = %+v, want the index and two platform manifests", st.Subject)
	}
	p := st.Predicate
	if p.BuildDefinition.BuildType != provenance.BuildType || p.RunDetails.Builder.ID != BuilderID {
		t.Errorf("buildType %q builder %q", p.BuildDefinition.BuildType, p.RunDetails.Builder.ID)
	}
	if got := p.BuildDefinition.ExternalParameters["revision"]; got != env.Git.SHA {
		t.Errorf("externalParameters.revision = %v", got)
	}
	src := p.BuildDefinition.ResolvedDependencies[0]
	if src.Digest["gitCommit"] != env.Git.SHA || !strings.HasSuffix(src.URI, "@"+env.Git.SHA) {
		t.Errorf("source dependency = %+v", src)
	}
	goDep := p.BuildDefinition.ResolvedDependencies[1]
	if !strings.HasPrefix(goDep.URI, "pkg:golang/toolchain@go1.") {
		t.Errorf("toolchain dependency = %+v", goDep)
	}
	if p.BuildDefinition.InternalParameters["sourceDateEpoch"] != float64(1700000000) {
		t.Errorf("sourceDateEpoch = %v", p.BuildDefinition.InternalParameters["sourceDateEpoch"])
	}
	md := p.RunDetails.Metadata
	if md.StartedOn == nil || md.FinishedOn == nil || md.StartedOn.Before(before.Add(-time.Second)) || md.FinishedOn.Before(*md.StartedOn) {
		t.Errorf("times: started %v finished %v (test began %v)", md.StartedOn, md.FinishedOn, before)
	}
	if md.InvocationID != "run-1/build-test/image" {
		t.Errorf("invocationId = %q", md.InvocationID)
	}

	// A second build of the same commit is the same image.
	env2, _, _ := newEnv(t, dir)
	env2.Git = env.Git
	res2, err := s.Run(context.Background(), env2)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Outputs["digest"] != digest {
		t.Errorf("second build digest %v, first %v", res2.Outputs["digest"], digest)
	}
}
