package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// The real cosign (go install github.com/sigstore/cosign/v2/cmd/cosign)
// as the peer of `gantry sign` and `gantry verify`. Offline there is no
// transparency log: cosign signs with --tlog-upload=false and verifies
// with --insecure-ignore-tlog.

func cosignPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cosign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cosign is not installed (internal/cli needs it): go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5")
		}
		testenv.Missing(t, "cosign", "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 (scripts/test.sh builds it from tools/cosign)")
	}
	return p
}

// runCosign runs cosign in dir with password and an empty home; it
// returns the combined output and whether cosign succeeded.
func runCosign(t *testing.T, dir, password string, args ...string) (string, bool) {
	t.Helper()
	cmd := proc.Command(t.Context(), cosignPath(t), args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), signing.PasswordEnv+"="+password, "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}

var cosignRegistryFlags = []string{"--allow-http-registry", "--allow-insecure-registry"}

func cosignArgs(args []string, ref string) []string {
	return append(append(args, cosignRegistryFlags...), ref)
}

func TestCosignAcceptsGantrySign(t *testing.T) {
	cosignPath(t)
	repo := serveRegistry(t) + "/examplepay/payment-service"
	d := pushImage(t, repo, "v1")
	priv, pub := genKeys(t, "pw")
	pred := filepath.Join(t.TempDir(), "provenance.json")
	os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"https://example.com/build","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`), 0o644)
	if _, errs, code := gantry(t, t.TempDir(), "sign", repo+":v1", "--key", priv, "-a", "run=7", "--attest", pred, "--type", "slsaprovenance1"); code != 0 {
		t.Fatalf("gantry sign: exit %d\n%s", code, errs)
	}
	dir := t.TempDir()
	for _, ref := range []string{d.String(), repo + ":v1"} {
		out, ok := runCosign(t, dir, "", cosignArgs([]string{"verify", "--key", pub, "--insecure-ignore-tlog=true"}, ref)...)
		if !ok || !strings.Contains(out, d.DigestStr()) || !strings.Contains(out, `"run":"7"`) {
			t.Errorf("cosign verify %s (ok=%v) did not accept gantry's signature:\n%s", ref, ok, out)
		}
	}
	if out, ok := runCosign(t, dir, "", cosignArgs([]string{"verify-attestation", "--key", pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog=true"}, d.String())...); !ok {
		t.Errorf("cosign verify-attestation did not accept gantry's attestation:\n%s", out)
	}
	_, otherPub := genKeys(t, "pw")
	if out, ok := runCosign(t, dir, "", cosignArgs([]string{"verify", "--key", otherPub, "--insecure-ignore-tlog=true"}, d.String())...); ok {
		t.Errorf("cosign verify accepted another key:\n%s", out)
	}
}

func TestGantryVerifyAcceptsCosignSign(t *testing.T) {
	cosignPath(t)
	repo := serveRegistry(t) + "/examplepay/payment-service"
	d := pushImage(t, repo, "v1")
	dir := t.TempDir()
	if out, ok := runCosign(t, dir, "pw", "generate-key-pair"); !ok {
		t.Fatalf("cosign generate-key-pair:\n%s", out)
	}
	priv, pub := filepath.Join(dir, signing.PrivateKeyFile), filepath.Join(dir, signing.PublicKeyFile)
	state := t.TempDir()
	if _, errs, code := gantry(t, state, "verify", d.String(), "--key", pub); code != ExitFailed || !strings.Contains(errs, "no signature") {
		t.Errorf("before cosign signs: exit %d, want %d with \"no signature\":\n%s", code, ExitFailed, errs)
	}
	if out, ok := runCosign(t, dir, "pw", cosignArgs([]string{"sign", "--key", priv, "--tlog-upload=false", "-y"}, d.String())...); !ok {
		t.Fatalf("cosign sign:\n%s", out)
	}
	// A gate verdict attested by cosign counts as evidence.
	pred := filepath.Join(dir, "tests.json")
	os.WriteFile(pred, []byte(`{"gate":"tests","verdict":"pass","run":{"id":"9","pipeline":"p","time":"2026-01-02T03:04:05Z"},"steps":[]}`), 0o644)
	if out, ok := runCosign(t, dir, "pw", cosignArgs([]string{"attest", "--key", priv, "--type", evidence.PredicateType("tests"), "--predicate", pred, "--tlog-upload=false", "-y"}, d.String())...); !ok {
		t.Fatalf("cosign attest:\n%s", out)
	}
	out, errs, code := gantry(t, state, "verify", repo+":v1", "--key", pub, "--require", "tests")
	if code != 0 || !strings.Contains(out, "Verified   "+d.String()) || !strings.Contains(out, "tests: pass (run 9") {
		t.Errorf("gantry verify of cosign's signature and attestation: exit %d\n%s%s", code, out, errs)
	}
	// gantry signs with cosign's key file, and cosign accepts that too.
	t.Setenv(signing.PasswordEnv, "pw")
	d2 := pushImage(t, repo, "v2")
	if _, errs, code := gantry(t, state, "sign", d2.String(), "--key", priv); code != 0 {
		t.Fatalf("gantry sign with cosign's key: exit %d\n%s", code, errs)
	}
	if out, ok := runCosign(t, dir, "", cosignArgs([]string{"verify", "--key", pub, "--insecure-ignore-tlog=true"}, d2.String())...); !ok {
		t.Errorf("cosign verify of gantry's signature with cosign's key:\n%s", out)
	}
	// Another key: cosign's signature is not ours.
	_, otherPub := genKeys(t, "pw")
	if _, errs, code := gantry(t, state, "verify", d.String(), "--key", otherPub); code != ExitFailed || !strings.Contains(errs, "signed by another key") {
		t.Errorf("another key: exit %d, want %d with \"signed by another key\":\n%s", code, ExitFailed, errs)
	}
}
