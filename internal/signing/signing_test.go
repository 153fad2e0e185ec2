package signing

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/fake"

	"github.com/gantry-ci/gantry/internal/registry"
)

// serve starts an embedded registry for the test and returns its address.
func serve(t *testing.T) string {
	t.Helper()
	srv, err := registry.Serve(t.Context(), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv.Addr()
}

// push writes a random image as repo:tag and returns it by digest.
func push(t *testing.T, repo, tag string) name.Digest {
	t.Helper()
	img, err := random.Image(128, 1)
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

// keyPair writes a key pair with password into a temp dir.
func keyPair(t *testing.T, password string) (priv, pub string) {
	t.Helper()
	priv, pub, err := WriteKeyPair(t.TempDir(), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func loadPair(t *testing.T, password string) (*Signer, *Verifier) {
	t.Helper()
	priv, pub := keyPair(t, password)
	s, err := LoadSigner(t.Context(), priv, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(t.Context(), pub)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != v.ID {
		t.Fatalf("signer key ID %s, verifier %s", s.ID, v.ID)
	}
	return s, v
}

func TestKeyFile(t *testing.T) {
	priv, _ := keyPair(t, "s3cret")
	fi, err := os.Stat(priv)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(priv)
	if !strings.HasPrefix(string(data), "-----BEGIN "+PrivateKeyPEMType+"-----") {
		t.Errorf("private key starts %q", strings.SplitN(string(data), "\n", 2)[0])
	}
	if strings.Contains(string(data), "s3cret") {
		t.Error("the password is in the key file")
	}
	if _, err := LoadSigner(t.Context(), priv, []byte("wrong")); !errors.Is(err, ErrBadPassword) {
		t.Errorf("wrong password: %v, want ErrBadPassword", err)
	}
	if _, _, err := WriteKeyPair(filepath.Dir(priv), nil); err == nil {
		t.Error("WriteKeyPair overwrote an existing key")
	}
	if _, err := LoadVerifier(t.Context(), priv); err == nil || !strings.Contains(err.Error(), "the .pub file") {
		t.Errorf("verifying with the private key file: %v", err)
	}
	if _, err := LoadSigner(t.Context(), "nokms://key", nil); err == nil || !strings.Contains(err.Error(), "no KMS provider") {
		t.Errorf("unknown KMS scheme: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	ctx := t.Context()
	repo := serve(t) + "/examplepay/payment-service"
	d := push(t, repo, "v1")
	s, v := loadPair(t, "pw")
	signed, err := SignImage(ctx, d, s, SignOptions{Identities: []string{repo + ":v1"}, Annotations: map[string]any{"run": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	if signed.Added != 1 || signed.Signatures != 1 || !strings.HasSuffix(signed.Tag, ".sig") {
		t.Errorf("signed %+v", signed)
	}
	// Signing again adds nothing.
	if again, err := SignImage(ctx, d, s, SignOptions{Identities: []string{repo + ":v1"}, Annotations: map[string]any{"run": "7"}}); err != nil || again.Added != 0 {
		t.Errorf("re-sign: %+v, %v", again, err)
	}
	for _, ref := range []string{d.String(), repo + ":v1"} {
		r, _ := name.ParseReference(ref)
		got, err := Verify(ctx, r, v)
		if err != nil {
			t.Fatalf("verify %s: %v", ref, err)
		}
		if got.Image != d.String() || len(got.Signatures) != 1 || got.Signatures[0].Identity != repo+":v1" || got.Signatures[0].Annotations["run"] != "7" {
			t.Errorf("verify %s: %+v", ref, got)
		}
	}
}

func TestKMSKey(t *testing.T) {
	ctx := t.Context()
	repo := serve(t) + "/kms/app"
	d := push(t, repo, "v1")
	s, err := LoadSigner(ctx, "fakekms://signing-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignImage(ctx, d, s, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, d, s.Verifier()); err != nil {
		t.Errorf("verify a KMS signature: %v", err)
	}
	pem, err := s.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVerifier("kms.pub", pem)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, d, v); err != nil {
		t.Errorf("verify a KMS signature with its exported public key: %v", err)
	}
}

// TestVerifyFailures produces each verification failure and checks that
// it is named.
func TestVerifyFailures(t *testing.T) {
	ctx := t.Context()
	repo := serve(t) + "/examplepay/payment-service"
	s, v := loadPair(t, "pw")
	other, otherV := loadPair(t, "pw")
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	unsigned := push(t, repo, "unsigned")
	signed := push(t, repo, "v1")
	if _, err := SignImage(ctx, signed, s, SignOptions{Identities: []string{repo + ":v1"}}); err != nil {
		t.Fatal(err)
	}

	// A copy of signed's signature attachment next to another image.
	copied := push(t, repo, "copied")
	copySig(t, signed, copied, nil)

	// A signature whose payload was edited after signing.
	tampered := push(t, repo, "tampered")
	if _, err := SignImage(ctx, tampered, s, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	copySig(t, tampered, tampered, func(p []byte) []byte {
		return []byte(strings.Replace(string(p), `"optional":null`, `"optional":{"approved":"yes"}`, 1))
	})

	// v2 is signed as repo:v2, then the tag moves to an unsigned image.
	v2 := push(t, repo, "v2")
	if _, err := SignImage(ctx, v2, s, SignOptions{Identities: []string{repo + ":v2"}}); err != nil {
		t.Fatal(err)
	}
	moved := push(t, repo, "v2")

	tests := []struct {
		name string
		ref  name.Reference
		v    *Verifier
		want error
	}{
		{"no signature", unsigned, v, ErrNoSignature},
		{"wrong key", signed, otherV, ErrWrongKey},
		{"tampered payload", tampered, v, ErrTampered},
		{"signature for another digest", copied, v, ErrOtherDigest},
		{"tag moved after signing", ref(repo + ":v2"), v, ErrTagMoved},
	}
	all := []error{ErrNoSignature, ErrWrongKey, ErrTampered, ErrOtherDigest, ErrTagMoved}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(ctx, tt.ref, tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			for _, e := range all {
				if e != tt.want && errors.Is(err, e) {
					t.Errorf("error %q also matches %v", err, e)
				}
			}
			t.Log(err)
		})
	}
	// The moved tag's old digest still verifies, and so does v1 with the
	// right key; the other key's signature is not confused with ours.
	if _, err := Verify(ctx, v2, v); err != nil {
		t.Errorf("v2 by digest: %v", err)
	}
	if _, err := SignImage(ctx, moved, other, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, ref(repo+":v2"), v); !errors.Is(err, ErrTagMoved) {
		t.Errorf("moved tag signed by another key: %v, want ErrTagMoved", err)
	}
}

// copySig writes the signature attachment of from as the attachment of
// to, passing each payload through edit.
func copySig(t *testing.T, from, to name.Digest, edit func([]byte) []byte) {
	t.Helper()
	layers, err := readAttachment(AttachmentTag(from, SignatureSuffix), nil)
	if err != nil || len(layers) == 0 {
		t.Fatalf("read signatures of %s: %v", from, err)
	}
	if edit != nil {
		for i := range layers {
			layers[i].data = edit(layers[i].data)
		}
	}
	if _, err := writeAttachment(AttachmentTag(to, SignatureSuffix), layers, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAttest(t *testing.T) {
	ctx := t.Context()
	repo := serve(t) + "/examplepay/payment-service"
	d := push(t, repo, "v1")
	other := push(t, repo, "other")
	s, v := loadPair(t, "pw")
	_, otherV := loadPair(t, "pw")

	if _, err := VerifyAttestations(ctx, d, v); !errors.Is(err, ErrNoAttestation) {
		t.Errorf("no attestations: %v", err)
	}
	st1, err := NewStatement(d, SLSAProvenanceV1, []byte(`{"buildDefinition":{"buildType":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := NewStatement(d, CycloneDX, []byte(`{"bomFormat":"CycloneDX"}`))
	for _, st := range [][]byte{st1, st2, st1} {
		if _, err := Attest(ctx, d, s, st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := VerifyAttestations(ctx, d, v)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, a := range got {
		if a.Err != nil {
			t.Errorf("%s: %v", a.PredicateType, a.Err)
		}
		types = append(types, a.PredicateType)
	}
	if strings.Join(types, " ") != CycloneDX+" "+SLSAProvenanceV1 {
		t.Errorf("attestations %v, want the SBOM and one provenance (replaced)", types)
	}
	if _, err := Attest(ctx, d, s, mustStatement(t, other, "https://example.com/p/v1")); err == nil {
		t.Error("attested a statement about another image")
	}

	got, _ = VerifyAttestations(ctx, d, otherV)
	for _, a := range got {
		if !errors.Is(a.Err, ErrWrongKey) {
			t.Errorf("other key: %s: %v, want ErrWrongKey", a.PredicateType, a.Err)
		}
	}
	// The attestations of d copied next to other are about d.
	layers, _ := readAttachment(AttachmentTag(d, AttestationSuffix), nil)
	if _, err := writeAttachment(AttachmentTag(other, AttestationSuffix), layers, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = VerifyAttestations(ctx, other, v)
	for _, a := range got {
		if !errors.Is(a.Err, ErrOtherDigest) {
			t.Errorf("copied: %s: %v, want ErrOtherDigest", a.PredicateType, a.Err)
		}
	}
}

func mustStatement(t *testing.T, d name.Digest, typ string) []byte {
	t.Helper()
	b, err := NewStatement(d, typ, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	_ = v1.Hash{}
	_ = static.NewLayer
)

func TestEnsureDefaultKey(t *testing.T) {
	state := t.TempDir()
	priv, pub, created, err := EnsureDefaultKey(state, nil)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(DefaultKeyDir(state))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	p2, pub2, created, err := EnsureDefaultKey(state, nil)
	if err != nil || created || p2 != priv || pub2 != pub {
		t.Errorf("second: %s %s created=%v err=%v", p2, pub2, created, err)
	}
	if _, err := LoadSigner(t.Context(), priv, nil); err != nil {
		t.Errorf("load the default key with an empty password: %v", err)
	}
}

func TestClaimsTag(t *testing.T) {
	tag, _ := name.NewTag("127.0.0.1:5000/examplepay/payment-service:latest")
	tests := []struct {
		identity string
		want     bool
	}{
		{"127.0.0.1:5000/examplepay/payment-service:latest", true},
		{"127.0.0.1:41234/examplepay/payment-service:latest", true}, // the embedded registry moved
		{"127.0.0.1:5000/examplepay/payment-service", false},        // the bare repository claims no tag
		{"127.0.0.1:5000/examplepay/payment-service:v1", false},
		{"127.0.0.1:5000/examplepay/other:latest", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := claimsTag(tt.identity, tag); got != tt.want {
			t.Errorf("claimsTag(%q) = %v, want %v", tt.identity, got, tt.want)
		}
	}
}
