package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/kms/fake"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
)

// gantry runs the CLI with state as its state dir and returns standard
// output, standard error (with the error main would print) and the exit
// code.
func gantry(t *testing.T, state string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return gantryCtx(t, t.Context(), state, args...)
}

func gantryCtx(t *testing.T, ctx context.Context, state string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := New()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--state-dir", state}, args...))
	err := root.ExecuteContext(ctx)
	if err != nil {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), Code(err)
}

// serveRegistry starts an embedded registry for the test and returns its
// address.
func serveRegistry(t *testing.T) string {
	t.Helper()
	srv, err := registry.Serve(t.Context(), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv.Addr()
}

// pushImage writes a random image as repo:tag and returns it by digest.
func pushImage(t *testing.T, repo, tag string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tr, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return tr.Context().Digest(d.String())
}

// genKeys runs `gantry keys generate` with password into a new directory.
func genKeys(t *testing.T, password string) (priv, pub string) {
	t.Helper()
	t.Setenv(signing.PasswordEnv, password)
	dir := t.TempDir()
	if out, errs, code := gantry(t, t.TempDir(), "keys", "generate", "--dir", dir); code != 0 {
		t.Fatalf("keys generate: exit %d\n%s%s", code, out, errs)
	}
	return filepath.Join(dir, signing.PrivateKeyFile), filepath.Join(dir, signing.PublicKeyFile)
}

// copySignatures writes the signature attachment of from as that of to,
// passing each layer through edit (nil keeps it).
func copySignatures(t *testing.T, from, to name.Digest, edit func([]byte) []byte) {
	t.Helper()
	src, err := remote.Image(signing.AttachmentTag(from, signing.SignatureSuffix))
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, desc := range m.Layers {
		l, err := src.LayerByDigest(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			data = edit(data)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(data, desc.MediaType), Annotations: desc.Annotations}); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(signing.AttachmentTag(to, signing.SignatureSuffix), img); err != nil {
		t.Fatal(err)
	}
}

func TestKeysGenerate(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(signing.PasswordEnv, "pw")
	out, errs, code := gantry(t, t.TempDir(), "keys", "generate", "--dir", dir)
	priv := filepath.Join(dir, signing.PrivateKeyFile)
	if code != 0 || !strings.Contains(out, "Private key written to "+priv) {
		t.Fatalf("exit %d, want 0 and the key paths:\n%s%s", code, out, errs)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key: %v, mode %v, want 0600", err, fi.Mode())
	}
	if _, err := signing.LoadSigner(t.Context(), priv, []byte("pw")); err != nil {
		t.Errorf("load with COSIGN_PASSWORD: %v", err)
	}
	before, _ := os.ReadFile(priv)
	if _, errs, code := gantry(t, t.TempDir(), "keys", "generate", "--dir", dir); code != ExitUsage || !strings.Contains(errs, "already exists") {
		t.Errorf("second generate: exit %d, want %d and \"already exists\":\n%s", code, ExitUsage, errs)
	}
	if after, _ := os.ReadFile(priv); !bytes.Equal(before, after) {
		t.Error("the existing key was overwritten")
	}

	// No COSIGN_PASSWORD and no terminal: an empty password, with a warning.
	os.Unsetenv(signing.PasswordEnv)
	dir2 := t.TempDir()
	_, errs, code = gantry(t, t.TempDir(), "keys", "generate", "--dir", dir2)
	if code != 0 || !strings.Contains(errs, "warning: COSIGN_PASSWORD is not set") {
		t.Errorf("no password: exit %d, stderr %q", code, errs)
	}
	if _, err := signing.LoadSigner(t.Context(), filepath.Join(dir2, signing.PrivateKeyFile), nil); err != nil {
		t.Errorf("load with the empty password: %v", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	repo := serveRegistry(t) + "/examplepay/payment-service"
	d := pushImage(t, repo, "v1")
	priv, pub := genKeys(t, "pw")
	state := t.TempDir()

	out, errs, code := gantry(t, state, "sign", repo+":v1", "--key", priv, "-a", "run=7", "-a", "pipeline=ci", "-o", "json")
	if code != 0 {
		t.Fatalf("sign: exit %d\n%s", code, errs)
	}
	var signed signReport
	if err := json.Unmarshal([]byte(out), &signed); err != nil {
		t.Fatalf("sign -o json: %v\n%s", err, out)
	}
	if signed.Image != d.String() || signed.Identity != repo+":v1" || signed.Signature == nil || signed.Signature.Added != 1 ||
		signed.Signature.Tag != signing.AttachmentTag(d, signing.SignatureSuffix).String() {
		t.Errorf("sign report %+v", signed)
	}

	out, errs, code = gantry(t, state, "verify", repo+":v1", "--key", pub)
	for _, want := range []string{"Verified   " + d.String(), "Signature  " + repo + ":v1  pipeline=ci run=7"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("verify: exit %d, output lacks %q:\n%s%s", code, want, out, errs)
		}
	}
	out, _, code = gantry(t, state, "verify", d.String(), "--key", pub, "-o", "json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Verified || rep.Image != d.String() || len(rep.Signatures) != 1 || rep.Signatures[0].Annotations["run"] != "7" {
		t.Errorf("verify -o json: exit %d, %v, %+v", code, err, rep)
	}

	// Without --key: STATE_DIR/keys, generated by the first sign.
	t.Setenv(signing.PasswordEnv, "")
	def := t.TempDir()
	if _, errs, code := gantry(t, def, "verify", d.String()); code != ExitUsage || !strings.Contains(errs, "no default public key") {
		t.Errorf("verify without any key: exit %d, want %d:\n%s", code, ExitUsage, errs)
	}
	out, errs, code = gantry(t, def, "sign", d.String())
	if code != 0 || !strings.Contains(errs, "generated signing key "+filepath.Join(def, "keys", "cosign.key")) || !strings.Contains(out, "Signed") {
		t.Errorf("sign with the default key: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code := gantry(t, def, "verify", d.String()); code != 0 {
		t.Errorf("verify with the default key: exit %d\n%s", code, errs)
	}
	// The default key did not sign repo:v1's identity; priv did, so both
	// keys verify the digest.
	if _, errs, code := gantry(t, state, "verify", d.String(), "--key", pub); code != 0 {
		t.Errorf("verify with the first key after a second signature: exit %d\n%s", code, errs)
	}
}

func TestSignUsageErrors(t *testing.T) {
	repo := serveRegistry(t) + "/app"
	d := pushImage(t, repo, "v1")
	priv, _ := genKeys(t, "pw")
	pred := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(pred, []byte(`{"a":1}`), 0o644)
	notJSON := filepath.Join(t.TempDir(), "p.txt")
	os.WriteFile(notJSON, []byte("hello"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad reference", []string{"sign", "UPPER/Case:@", "--key", priv}, "want REPO@sha256"},
		{"annotation", []string{"sign", d.String(), "--key", priv, "-a", "novalue"}, "want key=value"},
		{"type without attest", []string{"sign", d.String(), "--key", priv, "--type", "cyclonedx"}, "--type needs --attest"},
		{"attest without type", []string{"sign", d.String(), "--key", priv, "--attest", pred}, "say its --type"},
		{"unknown type", []string{"sign", d.String(), "--key", priv, "--attest", pred, "--type", "spdx2"}, "want cyclonedx, slsaprovenance1 or a predicate type URI"},
		{"not JSON", []string{"sign", d.String(), "--key", priv, "--attest", notJSON, "--type", "cyclonedx"}, "not a JSON object"},
		{"missing key", []string{"sign", d.String(), "--key", "/nonexistent/cosign.key"}, "no such file"},
		{"public key", []string{"sign", d.String(), "--key", strings.TrimSuffix(priv, ".key") + ".pub"}, "PEM type"},
		{"output", []string{"sign", d.String(), "--key", priv, "-o", "xml"}, "--output must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := gantry(t, t.TempDir(), tc.args...)
			if code != ExitUsage || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, ExitUsage, tc.want, errs)
			}
		})
	}
	t.Setenv(signing.PasswordEnv, "wrong")
	if _, errs, code := gantry(t, t.TempDir(), "sign", d.String(), "--key", priv); code != ExitUsage || !strings.Contains(errs, "wrong password") || strings.Contains(errs, "wrong\n") {
		t.Errorf("wrong password: exit %d:\n%s", code, errs)
	}
}

// TestVerifyFailures makes each signature failure and checks that the
// command exits 1 naming it, in words and in -o json.
func TestVerifyFailures(t *testing.T) {
	repo := serveRegistry(t) + "/examplepay/payment-service"
	priv, pub := genKeys(t, "pw")
	_, otherPub := genKeys(t, "pw")
	state := t.TempDir()
	sign := func(ref string) {
		t.Helper()
		if _, errs, code := gantry(t, state, "sign", ref, "--key", priv); code != 0 {
			t.Fatalf("sign %s: exit %d\n%s", ref, code, errs)
		}
	}
	unsigned := pushImage(t, repo, "unsigned")
	signed := pushImage(t, repo, "v1")
	sign(repo + ":v1")
	copied := pushImage(t, repo, "copied")
	copySignatures(t, signed, copied, nil)
	tampered := pushImage(t, repo, "tampered")
	sign(tampered.String())
	copySignatures(t, tampered, tampered, func(p []byte) []byte {
		return bytes.Replace(p, []byte(`"optional":null`), []byte(`"optional":{"approved":"yes"}`), 1)
	})
	pushImage(t, repo, "v2")
	sign(repo + ":v2")
	pushImage(t, repo, "v2") // the tag moves to an unsigned image

	for _, tc := range []struct {
		name, ref, key, failure, want string
	}{
		{"no signature", unsigned.String(), pub, "no-signature", "no signature: "},
		{"wrong key", repo + ":v1", otherPub, "wrong-key", "signed by another key: "},
		{"tampered", tampered.String(), pub, "tampered", "signed payload was altered: "},
		{"other digest", copied.String(), pub, "other-digest", "signature is for another image: "},
		{"tag moved", repo + ":v2", pub, "tag-moved", "tag moved after signing: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := gantry(t, state, "verify", tc.ref, "--key", tc.key)
			if code != ExitFailed || !strings.Contains(errs, tc.want) || out != "" {
				t.Errorf("exit %d, want %d with %q; stdout %q, stderr:\n%s", code, ExitFailed, tc.want, out, errs)
			}
			out, _, code = gantry(t, state, "verify", tc.ref, "--key", tc.key, "-o", "json")
			var rep verifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitFailed || rep.Verified || rep.Failure != tc.failure || !strings.Contains(rep.Error, tc.want) {
				t.Errorf("-o json: exit %d, %v, report %+v, want failure %q", code, err, rep, tc.failure)
			}
		})
	}
	// The old digest of the moved tag, and v1 with its key, still verify.
	if _, errs, code := gantry(t, state, "verify", repo+":v1", "--key", pub); code != 0 {
		t.Errorf("v1: exit %d\n%s", code, errs)
	}
}

// attestVerdict attests gate's verdict on d with the key priv, as the sign
// step does.
func attestVerdict(t *testing.T, d name.Digest, priv, gate, verdict string) {
	t.Helper()
	s, err := signing.LoadSigner(t.Context(), priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pred, err := json.Marshal(evidence.Predicate{
		Gate: gate, Verdict: verdict,
		Run:   evidence.Run{ID: "42", Pipeline: "payment-service", Time: time.Now().UTC().Format(time.RFC3339)},
		Steps: []evidence.Step{{Stage: "build-test", Name: "unit", Kind: "go-test", Status: "failed"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := signing.NewStatement(d, evidence.PredicateType(gate), pred)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Attest(t.Context(), d, s, st); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRequire(t *testing.T) {
	repo := serveRegistry(t) + "/examplepay/payment-service"
	priv, pub := genKeys(t, "pw")
	otherPriv, _ := genKeys(t, "pw")
	state := t.TempDir()
	d := pushImage(t, repo, "v1")
	if _, errs, code := gantry(t, state, "sign", d.String(), "--key", priv); code != 0 {
		t.Fatalf("sign: exit %d\n%s", code, errs)
	}
	verify := func(args ...string) (string, string, int) {
		return gantry(t, state, append([]string{"verify", d.String(), "--key", pub}, args...)...)
	}

	// Nothing attested yet.
	_, errs, code := verify("--require", "tests,vuln-scan")
	for _, want := range []string{"required evidence missing: tests: ", "required evidence missing: vuln-scan: "} {
		if code != ExitFailed || !strings.Contains(errs, want) {
			t.Errorf("no evidence: exit %d, want %d with %q:\n%s", code, ExitFailed, want, errs)
		}
	}

	// tests failed; vuln-scan passed, attested through `gantry sign --attest`.
	attestVerdict(t, d, priv, "tests", evidence.Fail)
	pred := filepath.Join(t.TempDir(), "vuln-scan.json")
	os.WriteFile(pred, []byte(`{"gate":"vuln-scan","verdict":"pass","run":{"id":"42","pipeline":"p","time":"2026-01-02T03:04:05Z"},"steps":[]}`), 0o644)
	out, errs, code := gantry(t, state, "sign", d.String(), "--key", priv, "--attest", pred, "--type", evidence.PredicateType("vuln-scan"))
	if code != 0 || !strings.Contains(out, evidence.PredicateType("vuln-scan")) {
		t.Fatalf("sign --attest: exit %d\n%s%s", code, out, errs)
	}

	_, errs, code = verify("--require", "tests,vuln-scan")
	if code != ExitFailed || !strings.Contains(errs, `required evidence failing: tests: verdict "fail" (run 42)`) || strings.Contains(errs, "vuln-scan") {
		t.Errorf("failing tests: exit %d, want %d naming tests only:\n%s", code, ExitFailed, errs)
	}
	out, _, code = verify("--require", "tests", "-o", "json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitFailed || rep.Failure != "evidence-failing" {
		t.Errorf("failing tests -o json: exit %d, %v, %+v", code, err, rep)
	}
	out, errs, code = verify("--require", "vuln-scan", "--attestations")
	for _, want := range []string{"Evidence   vuln-scan: pass (run 42, 2026-01-02T03:04:05Z)", evidence.PredicateType("tests") + "      tests      fail     verified"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("passing vuln-scan: exit %d, output lacks %q:\n%s%s", code, want, out, errs)
		}
	}

	// A verdict attested by another key does not count, and says why.
	attestVerdict(t, d, otherPriv, "sast", evidence.Pass)
	out, errs, code = verify("--require", "sast", "-o", "json")
	rep = verifyReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitFailed || rep.Failure != "evidence-wrong-key" || !strings.Contains(errs, "sast: signed by another key") {
		t.Errorf("evidence by another key: exit %d, %v, %+v\n%s", code, err, rep, errs)
	}

	for _, args := range [][]string{{"--require", "tests,coverage"}, {"--require", "Tests"}} {
		if _, errs, code := verify(args...); code != ExitUsage || !strings.Contains(errs, "unknown gate") {
			t.Errorf("%v: exit %d, want %d with \"unknown gate\":\n%s", args, code, ExitUsage, errs)
		}
	}
	if _, errs, code := gantry(t, state, "verify", d.String(), "--key", priv); code != ExitUsage || !strings.Contains(errs, "the .pub file") {
		t.Errorf("verify with the private key: exit %d, want %d:\n%s", code, ExitUsage, errs)
	}
}

// TestVerifyAllowedFailure: a licence check that failed with
// allow_failure is attested as allowed-failure, which --require refuses
// unless --allow-allowed-failures accepts it.
func TestVerifyAllowedFailure(t *testing.T) {
	repo := serveRegistry(t) + "/examplepay/payment-service"
	priv, pub := genKeys(t, "pw")
	state := t.TempDir()
	d := pushImage(t, repo, "v1")
	if _, errs, code := gantry(t, state, "sign", d.String(), "--key", priv); code != 0 {
		t.Fatalf("sign: exit %d\n%s", code, errs)
	}
	attestVerdict(t, d, priv, "licenses", evidence.AllowedFailure)
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		failure  string
	}{
		{"refused by default", nil, ExitFailed, "evidence-allowed-failure"},
		{"accepted when asked", []string{"--allow-allowed-failures"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verify", d.String(), "--key", pub, "--require", "licenses", "-o", "json"}, tc.args...)
			out, errs, code := gantry(t, state, args...)
			var rep verifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("report: %v\n%s%s", err, out, errs)
			}
			if code != tc.wantCode || rep.Failure != tc.failure {
				t.Errorf("exit %d, failure %q; want %d, %q\n%s", code, rep.Failure, tc.wantCode, tc.failure, errs)
			}
			if len(rep.Evidence) != 1 || rep.Evidence[0].Verdict != evidence.AllowedFailure {
				t.Errorf("evidence %+v, want licenses: allowed-failure", rep.Evidence)
			}
		})
	}
}

// TestSignVerifyKMS signs and verifies through a KMS key URI (sigstore's
// fake provider, holding one key in the context).
func TestSignVerifyKMS(t *testing.T) {
	repo := serveRegistry(t) + "/kms/app"
	d := pushImage(t, repo, "v1")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(t.Context(), fake.KmsCtxKey{}, key)
	state := t.TempDir()
	out, errs, code := gantryCtx(t, ctx, state, "sign", repo+":v1", "--key", "fakekms://signing-key")
	if code != 0 || !strings.Contains(out, "Key        fakekms://signing-key") {
		t.Fatalf("sign with a KMS key: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code := gantryCtx(t, ctx, state, "verify", repo+":v1", "--key", "fakekms://signing-key"); code != 0 {
		t.Errorf("verify with the KMS key: exit %d\n%s", code, errs)
	}
	// The exported public key verifies too.
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "kms.pub")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	if _, errs, code := gantry(t, state, "verify", d.String(), "--key", pub); code != 0 {
		t.Errorf("verify with the KMS key's public key: exit %d\n%s", code, errs)
	}
	for _, cmd := range []string{"sign", "verify"} {
		if _, errs, code := gantry(t, state, cmd, d.String(), "--key", "nokms://k"); code != ExitUsage || !strings.Contains(errs, "no KMS provider") {
			t.Errorf("%s with an unknown KMS scheme: exit %d, want %d:\n%s", cmd, code, ExitUsage, errs)
		}
	}
}
