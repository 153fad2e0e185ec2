package signing

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// The real cosign (go install github.com/sigstore/cosign/v2/cmd/cosign)
// both ways: it accepts what gantry signs and attests, and gantry accepts
// what it signs and attests. No transparency log exists offline, so cosign
// signs with --tlog-upload=false and verifies with --insecure-ignore-tlog.

func cosignBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cosign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cosign is not installed; scripts/test.sh builds it from tools/cosign")
		}
		testenv.Missing(t, "cosign", "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 (scripts/test.sh builds it from tools/cosign)")
	}
	return p
}

// cosign runs the cosign binary with password and an empty home.
func cosign(t *testing.T, dir, password string, args ...string) string {
	t.Helper()
	cmd := proc.Command(t.Context(), cosignBin(t), args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "COSIGN_EXPERIMENTAL=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

var registryFlags = []string{"--allow-http-registry", "--allow-insecure-registry"}

func TestCosignVerifiesGantry(t *testing.T) {
	cosignBin(t)
	ctx := t.Context()
	repo := serve(t) + "/examplepay/payment-service"
	d := push(t, repo, "v1")
	priv, pub := keyPair(t, "pw")
	s, err := LoadSigner(ctx, priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignImage(ctx, d, s, SignOptions{Identities: []string{repo + ":v1"}}); err != nil {
		t.Fatal(err)
	}
	prov, err := NewStatement(d, SLSAProvenanceV1, []byte(`{"buildDefinition":{"buildType":"https://example.com/build","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attest(ctx, d, s, prov); err != nil {
		t.Fatal(err)
	}
	bom, _ := NewStatement(d, CycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`))
	if _, err := Attest(ctx, d, s, bom); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := cosign(t, dir, "", append([]string{"verify", "--key", pub, "--insecure-ignore-tlog=true"}, append(registryFlags, d.String())...)...)
	if !strings.Contains(out, d.DigestStr()) {
		t.Errorf("cosign verify printed no payload for %s:\n%s", d.DigestStr(), out)
	}
	cosign(t, dir, "", append([]string{"verify", "--key", pub, "--insecure-ignore-tlog=true"}, append(registryFlags, repo+":v1")...)...)
	for _, typ := range []string{"slsaprovenance1", "cyclonedx"} {
		cosign(t, dir, "", append([]string{"verify-attestation", "--key", pub, "--type", typ, "--insecure-ignore-tlog=true"}, append(registryFlags, d.String())...)...)
	}
	// And cosign refuses them with another key.
	_, otherPub := keyPair(t, "pw")
	cmd := proc.Command(ctx, cosignBin(t), append([]string{"verify", "--key", otherPub, "--insecure-ignore-tlog=true"}, append(registryFlags, d.String())...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("cosign verify accepted another key:\n%s", out)
	}
}

func TestGantryVerifiesCosign(t *testing.T) {
	cosignBin(t)
	ctx := t.Context()
	repo := serve(t) + "/examplepay/payment-service"
	d := push(t, repo, "v1")
	dir := t.TempDir()
	// A key pair made by cosign signs with gantry too.
	cosign(t, dir, "pw", "generate-key-pair")
	priv, pub := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	cosign(t, dir, "pw", append([]string{"sign", "--key", priv, "--tlog-upload=false", "-y"}, append(registryFlags, d.String())...)...)
	pred := filepath.Join(dir, "provenance.json")
	if err := os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"https://example.com/build","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cosign(t, dir, "pw", append([]string{"attest", "--key", priv, "--type", "slsaprovenance1", "--predicate", pred, "--tlog-upload=false", "-y"}, append(registryFlags, d.String())...)...)

	v, err := LoadVerifier(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(ctx, d, v)
	if err != nil {
		t.Fatalf("gantry verify of cosign's signature: %v", err)
	}
	if len(got.Signatures) != 1 || got.Signatures[0].Digest != d.DigestStr() {
		t.Errorf("verified %+v", got)
	}
	atts, err := VerifyAttestations(ctx, d, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0].Err != nil || atts[0].PredicateType != SLSAProvenanceV1 {
		t.Fatalf("attestations %+v", atts)
	}
	// cosign's key file loads in gantry.
	s, err := LoadSigner(ctx, priv, []byte("pw"))
	if err != nil {
		t.Fatalf("load cosign's key: %v", err)
	}
	if s.ID != v.ID {
		t.Errorf("key IDs differ: %s, %s", s.ID, v.ID)
	}
	// Another key's verifier calls cosign's signature a wrong key.
	_, otherPub := keyPair(t, "pw")
	ov, _ := LoadVerifier(ctx, otherPub)
	if _, err := Verify(ctx, d, ov); err == nil || !strings.Contains(err.Error(), ErrWrongKey.Error()) {
		t.Errorf("other key: %v", err)
	}
}
