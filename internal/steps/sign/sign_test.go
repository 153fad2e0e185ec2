package sign

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

// pushed starts a registry, pushes a random image as repo:v1 and returns
// it by digest with its provenance statement written to a file.
func pushed(t *testing.T) (name.Digest, string) {
	t.Helper()
	srv, err := registry.Serve(t.Context(), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(srv.Addr() + "/examplepay/payment-service:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	d := tag.Context().Digest(h.String())
	st, err := signing.NewStatement(d, signing.SLSAProvenanceV1, []byte(`{"buildDefinition":{"buildType":"x"},"runDetails":{"builder":{"id":"y"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	prov := filepath.Join(t.TempDir(), "provenance.json")
	if err := os.WriteFile(prov, st, 0o644); err != nil {
		t.Fatal(err)
	}
	return d, prov
}

func TestSign(t *testing.T) {
	ctx := t.Context()
	d, prov := pushed(t)
	env, log, art := steptest.NewEnv(t, t.TempDir(), "security", "sign")
	// The default key with an empty password; the registry is the test's.
	env.Vars = append(env.Vars, signing.PasswordEnv+"=", registry.EnvAddr+"="+d.RegistryStr())
	sbomDigest := "" // the sbom step's digest output; "" while it has not run
	env.Outputs = func(stage, st string) (map[string]any, bool) {
		switch stage + "/" + st {
		case "build-test/push":
			return map[string]any{"image": d.String(), "tags": []any{"v1", "abc123"}}, true
		case "build-test/image":
			return map[string]any{"provenance": prov}, true
		case "security/sbom":
			return map[string]any{"digest": sbomDigest}, sbomDigest != ""
		}
		return nil, false
	}
	gatePassed := true
	env.Run = func() step.RunView {
		return step.RunView{Pipeline: "payment-service", Stages: []step.StageView{
			{Name: "commit", Status: "passed", Steps: []step.StepView{{Name: "go-lint", Kind: "golangci-lint", Gate: "lint", Status: "passed"}}},
			{Name: "build-test", Status: "passed", Gate: "steps.integration.outputs.coverage >= 80", GatePassed: &gatePassed, Steps: []step.StepView{
				{Name: "integration", Kind: "go-test", Gate: "tests", Status: "passed", Outputs: map[string]any{"coverage": 87.5}},
			}},
			{Name: "security", Status: "running", Steps: []step.StepView{
				{Name: "trivy", Kind: "vuln-scan", Gate: "vuln-scan", Status: "failed", Message: "1 finding(s) at HIGH or above"},
				{Name: "licenses", Kind: "license-check", Gate: "licenses", Status: "failed", AllowFailure: true, Message: "GPL-3.0 denied"},
			}},
		}}
	}
	impl, err := Kind.New(steptest.Inputs{YAML: "annotations: {team: payments}"})
	if err != nil {
		t.Fatal(err)
	}
	impl.(*signStep).now = func() time.Time { return time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC) }
	res, err := impl.Run(ctx, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res.Outputs["digest"] != d.DigestStr() {
		t.Errorf("digest output %v", res.Outputs["digest"])
	}
	if got := res.Outputs["evidence"].(map[string]any); got["tests"] != "pass" || got["vuln-scan"] != "fail" || got["lint"] != "pass" || got["licenses"] != evidence.AllowedFailure {
		t.Errorf("evidence %v", got)
	}
	if n := len(res.Outputs["attestations"].([]string)); n != 5 { // provenance + 4 gates (no SBOM attached)
		t.Errorf("%d attestations: %v\n%s", n, res.Outputs["attestations"], log)
	}

	v, err := signing.LoadVerifier(ctx, filepath.Join(signing.DefaultKeyDir(env.StateDir), signing.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(art, PublicKeyArtifact))
	if err != nil {
		t.Fatalf("public key artifact: %v", err)
	}
	if pv, err := signing.ParseVerifier("artifact", pem); err != nil || pv.ID != v.ID {
		t.Errorf("public key artifact: %v", err)
	}
	var sigs []signing.SignedPayload
	if b, err := os.ReadFile(filepath.Join(art, SignaturesArtifact)); err != nil || json.Unmarshal(b, &sigs) != nil || len(sigs) != 2 {
		t.Errorf("%s: %d signatures, %v", SignaturesArtifact, len(sigs), err)
	}
	envs, err := os.ReadFile(filepath.Join(art, AttestationsArtifact))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(envs)), "\n"); len(lines) != 5 || !strings.Contains(lines[0], `"payloadType":"application/vnd.in-toto+json"`) {
		t.Errorf("%s: %d envelopes:\n%s", AttestationsArtifact, len(lines), envs)
	}
	for _, tag := range []string{"v1", "abc123"} {
		r, _ := name.ParseReference(d.Context().Name() + ":" + tag)
		if tag == "abc123" {
			continue // only v1 was pushed; the claim is still signed
		}
		got, err := signing.Verify(ctx, r, v)
		if err != nil {
			t.Fatalf("verify %s: %v", r, err)
		}
		if len(got.Signatures) != 2 || got.Signatures[0].Annotations["team"] != "payments" {
			t.Errorf("signatures %+v", got.Signatures)
		}
	}
	atts, err := signing.VerifyAttestations(ctx, d, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Check(atts, []string{"lint", "tests"}, evidence.CheckOptions{}); err != nil {
		t.Errorf("lint and tests: %v", err)
	}
	if _, err := evidence.Check(atts, []string{"tests", "vuln-scan"}, evidence.CheckOptions{}); !errors.Is(err, evidence.ErrFailing) {
		t.Errorf("vuln-scan failed: %v", err)
	}
	if _, err := evidence.Check(atts, []string{"licenses"}, evidence.CheckOptions{}); !errors.Is(err, evidence.ErrAllowedFailure) {
		t.Errorf("licenses failed with allow_failure: %v, want ErrAllowedFailure", err)
	}
	if _, err := evidence.Check(atts, []string{"licenses"}, evidence.CheckOptions{AcceptAllowedFailures: true}); err != nil {
		t.Errorf("licenses with allowed failures accepted: %v", err)
	}
	if _, err := evidence.Check(atts, []string{"sast"}, evidence.CheckOptions{}); !errors.Is(err, evidence.ErrMissing) {
		t.Errorf("sast never ran: %v", err)
	}
	if !strings.Contains(log.String(), "generated a signing key") {
		t.Errorf("log:\n%s", log)
	}

	// An SBOM attached by anyone but the run's sbom step is not attested.
	other := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[]}`)
	if err := pushSBOM(ctx, d, other); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	res, err = impl.Run(ctx, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if slicesContains(res.Outputs["attestations"].([]string), signing.CycloneDX) || !strings.Contains(log.String(), "security/sbom did not run") {
		t.Errorf("SBOM attested without an sbom step: %v\n%s", res.Outputs["attestations"], log)
	}

	// A second run reuses the key; the SBOM the sbom step made and
	// attached is attested.
	bom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`)
	if err := pushSBOM(ctx, d, bom); err != nil {
		t.Fatal(err)
	}
	sbomDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(bom))
	log.Reset()
	res, err = impl.Run(ctx, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if strings.Contains(log.String(), "generated") || !slicesContains(res.Outputs["attestations"].([]string), signing.CycloneDX) {
		t.Errorf("second run: %v\n%s", res.Outputs["attestations"], log)
	}

	// A swapped .sbom (another SBOM pushed over the sbom step's) fails
	// the step, naming both digests.
	if err := pushSBOM(ctx, d, other); err != nil {
		t.Fatal(err)
	}
	_, err = impl.Run(ctx, env)
	otherDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(other))
	if !errors.Is(err, ErrSBOMMismatch) || !strings.Contains(err.Error(), sbomDigest) || !strings.Contains(err.Error(), otherDigest) {
		t.Errorf("swapped SBOM: got %v, want ErrSBOMMismatch naming %s and %s", err, sbomDigest, otherDigest)
	}
}

func pushSBOM(ctx context.Context, d name.Digest, data []byte) error {
	_, err := sbom.Attach(ctx, d, data, false, nil)
	return err
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSignErrors(t *testing.T) {
	env, _, _ := steptest.NewEnv(t, t.TempDir(), "security", "sign")
	impl, err := Kind.New(steptest.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := impl.Run(t.Context(), env); err == nil || !strings.Contains(err.Error(), "build-test/push has not run") {
		t.Errorf("no push step: %v", err)
	}
	if _, err := Kind.New(steptest.Inputs{YAML: "target: not-a-digest"}); err == nil || !strings.Contains(err.Error(), "with.target") {
		t.Errorf("bad target: %v", err)
	}
	if _, err := Kind.New(steptest.Inputs{YAML: "keys: x"}); err == nil {
		t.Error("unknown field accepted")
	}
	d, _ := pushed(t)
	env.Outputs = func(string, string) (map[string]any, bool) { return map[string]any{"image": d.String()}, true }
	env.Vars = append(env.Vars, registry.EnvAddr+"="+d.RegistryStr())
	priv, _, err := signing.WriteKeyPair(t.TempDir(), []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	impl, _ = Kind.New(steptest.Inputs{YAML: "key: " + priv})
	env.Vars = append(env.Vars, signing.PasswordEnv+"=hunter2-typo")
	_, err = impl.Run(t.Context(), env)
	if !errors.Is(err, signing.ErrBadPassword) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("wrong password: %v", err)
	}
}
