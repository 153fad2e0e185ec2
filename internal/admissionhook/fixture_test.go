package admissionhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/admission"
	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
)

// fixture is what the webhook tests admit: two embedded registries (the
// approved one and another), images built and signed with gantry's
// signing package, and the policy of the repository's shape (signature by
// key, registry restriction, evidence of the tests gate).
type fixture struct {
	approved string // host:port of the approved registry
	other    string // host:port of another registry
	signer   *signing.Signer
	pub      string
	policy   []byte
	policies admission.Policies

	signedTag    string // approved, signed, passing evidence, by tag
	signed       name.Digest
	unsigned     string // approved, unsigned, by digest
	failing      name.Digest
	elsewhereTag string // other registry, signed, passing evidence
}

var keyPair struct {
	once   sync.Once
	err    error
	signer *signing.Signer
	pub    string
}

// loadKeys makes one cosign key pair for the package (scrypt takes a
// second each way).
func loadKeys(t testing.TB) (*signing.Signer, string) {
	t.Helper()
	keyPair.once.Do(func() {
		dir, err := os.MkdirTemp("", "admissionhook-keys")
		if err != nil {
			keyPair.err = err
			return
		}
		defer os.RemoveAll(dir)
		priv, pub, err := signing.WriteKeyPair(filepath.Join(dir, "k"), []byte("pw"))
		if err != nil {
			keyPair.err = err
			return
		}
		if keyPair.signer, keyPair.err = signing.LoadSigner(context.Background(), priv, []byte("pw")); keyPair.err != nil {
			return
		}
		data, err := os.ReadFile(pub)
		keyPair.pub, keyPair.err = string(data), err
	})
	if keyPair.err != nil {
		t.Fatal(keyPair.err)
	}
	return keyPair.signer, keyPair.pub
}

func startRegistry(t testing.TB) string {
	t.Helper()
	srv, err := registry.Serve(context.WithoutCancel(t.Context()), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Logf("close registry: %v", err)
		}
	})
	return srv.Addr()
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{approved: startRegistry(t), other: startRegistry(t)}
	f.signer, f.pub = loadKeys(t)
	var tag string
	tag, f.signed = push(t, f.approved, "payments/api", "1.0")
	f.signedTag = tag
	sign(t, f.signed, f.signer)
	attestGate(t, f.signed, f.signer, "tests", evidence.Pass)
	_, unsigned := push(t, f.approved, "payments/unsigned", "1.0")
	f.unsigned = unsigned.String()
	_, f.failing = push(t, f.approved, "payments/failing", "1.0")
	sign(t, f.failing, f.signer)
	attestGate(t, f.failing, f.signer, "tests", evidence.Fail)
	var elsewhere name.Digest
	f.elsewhereTag, elsewhere = push(t, f.other, "payments/api", "1.0")
	sign(t, elsewhere, f.signer)
	attestGate(t, elsewhere, f.signer, "tests", evidence.Pass)

	f.policy = []byte(fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: verify-image-signatures
spec:
  validationFailureAction: Enforce
  rules:
    - name: require-cosign-signature
      match:
        any:
          - resources:
              kinds: [Pod]
      verifyImages:
        - imageReferences: ["%[1]s/*"]
          mutateDigest: true
          verifyDigest: true
          required: true
          attestors:
            - entries:
                - keys:
                    publicKeys: |-
%[2]s
                    rekor:
                      ignoreTlog: true
    - name: restrict-registries
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        message: Images must come from the approved registry.
        pattern:
          spec:
            containers:
              - image: "%[1]s/*"
`, f.approved, indent(f.pub, 22)))
	pols, err := admission.Decode("policy.yaml", f.policy)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.ParseVerifier("test key", []byte(f.pub))
	if err != nil {
		t.Fatal(err)
	}
	f.policies = admission.Policies{Kyverno: pols, Require: []string{"tests"}, EvidenceKey: v}
	return f
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// push writes a random image as REPO:TAG and returns the tag and digest
// references.
func push(t testing.TB, addr, repo, tag string) (string, name.Digest) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := name.NewTag(addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tr, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tr.String(), tr.Context().Digest(d.String())
}

func sign(t testing.TB, d name.Digest, s *signing.Signer) {
	t.Helper()
	if _, err := signing.SignImage(t.Context(), d, s, signing.SignOptions{}); err != nil {
		t.Fatal(err)
	}
}

func attestGate(t testing.TB, d name.Digest, s *signing.Signer, gate, verdict string) {
	t.Helper()
	p, err := json.Marshal(evidence.Predicate{Gate: gate, Verdict: verdict,
		Run: evidence.Run{ID: "7", Pipeline: "payment-service", Time: "2026-11-30T00:00:00Z"}, Steps: []evidence.Step{}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := signing.NewStatement(d, evidence.PredicateType(gate), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Attest(t.Context(), d, s, st); err != nil {
		t.Fatal(err)
	}
}

func newHandler(t testing.TB, p admission.Policies, opts ...Option) *Handler {
	t.Helper()
	r, err := admission.New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(r, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
