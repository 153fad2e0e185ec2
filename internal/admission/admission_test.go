package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/signing"
)

// fixture is an embedded registry started for the test and two key pairs.
type fixture struct {
	addr     string
	stop     func()
	signer   *signing.Signer
	pub      string // PEM
	pubFile  string
	other    *signing.Signer
	otherPub string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	srv, err := registry.Serve(t.Context(), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Close(ctx); err != nil {
				t.Logf("close registry: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	f := &fixture{addr: srv.Addr(), stop: stop}
	keyPairs(t)
	f.signer, f.pub, f.pubFile = keys.set[0].signer, keys.set[0].pub, keys.set[0].file
	f.other, f.otherPub = keys.set[1].signer, keys.set[1].pub
	return f
}

// keys holds the test's key pairs, made once: encrypting and decrypting
// a cosign key (scrypt) takes a second each.
var keys struct {
	once sync.Once
	dir  string
	err  error
	set  [2]struct {
		signer *signing.Signer
		pub    string
		file   string
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if keys.dir != "" {
		os.RemoveAll(keys.dir)
	}
	os.Exit(code)
}

func keyPairs(t testing.TB) {
	t.Helper()
	keys.once.Do(func() {
		keys.dir, keys.err = os.MkdirTemp("", "admission-keys")
		for i := range keys.set {
			if keys.err != nil {
				return
			}
			var priv, pub string
			priv, pub, keys.err = signing.WriteKeyPair(fmt.Sprintf("%s/%d", keys.dir, i), []byte("pw"))
			if keys.err != nil {
				return
			}
			k := &keys.set[i]
			k.file = pub
			if k.signer, keys.err = signing.LoadSigner(context.Background(), priv, []byte("pw")); keys.err != nil {
				return
			}
			var data []byte
			data, keys.err = os.ReadFile(pub)
			k.pub = string(data)
		}
	})
	if keys.err != nil {
		t.Fatal(keys.err)
	}
}

// push writes a random image as REPO:TAG (repo under the registry) and
// returns the tag reference and the digest reference.
func (f *fixture) push(t testing.TB, repo, tag string) (string, name.Digest) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := name.NewTag(f.addr+"/"+repo+":"+tag, name.Insecure)
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

func attest(t testing.TB, d name.Digest, s *signing.Signer, predicateType string, predicate any) {
	t.Helper()
	p, err := json.Marshal(predicate)
	if err != nil {
		t.Fatal(err)
	}
	st, err := signing.NewStatement(d, predicateType, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Attest(t.Context(), d, s, st); err != nil {
		t.Fatal(err)
	}
}

// indent indents every line of s by n spaces.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// policyOpts shape the test policy.
type policyOpts struct {
	action       string
	refs         string // imageReferences, YAML flow list
	mutateDigest string
	verifyDigest string
	keys         string // PEM keys
	count        int
	attestations string // YAML of attestations, indented 10
	validate     string // registry pattern
}

func (f *fixture) policy(o policyOpts) []byte {
	if o.action == "" {
		o.action = "Enforce"
	}
	if o.refs == "" {
		o.refs = fmt.Sprintf(`["%s/payments/*"]`, f.addr)
	}
	if o.keys == "" {
		o.keys = f.pub
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: verify
spec:
  validationFailureAction: %s
  rules:
    - name: require-signature
      match:
        any:
          - resources:
              kinds: [Pod]
      verifyImages:
        - imageReferences: %s
`, o.action, o.refs)
	if o.mutateDigest != "" {
		fmt.Fprintf(&b, "          mutateDigest: %s\n", o.mutateDigest)
	}
	if o.verifyDigest != "" {
		fmt.Fprintf(&b, "          verifyDigest: %s\n", o.verifyDigest)
	}
	b.WriteString("          attestors:\n")
	if o.count > 0 {
		fmt.Fprintf(&b, "            - count: %d\n              entries:\n", o.count)
	} else {
		b.WriteString("            - entries:\n")
	}
	fmt.Fprintf(&b, `                - keys:
                    publicKeys: |-
%s
                    rekor:
                      ignoreTlog: true
`, indent(o.keys, 22))
	if o.attestations != "" {
		b.WriteString("          attestations:\n")
		b.WriteString(o.attestations)
	}
	if o.validate != "" {
		fmt.Fprintf(&b, `    - name: restrict-registries
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        message: Images must come from the approved registry.
        pattern:
          spec:
            =(initContainers):
              - image: %q
            containers:
              - image: %q
`, o.validate, o.validate)
	}
	return []byte(b.String())
}

func newReviewer(t testing.TB, opts ...Option) *Reviewer {
	t.Helper()
	r, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func env(policy []byte) runtime.EnvironmentSpec {
	return runtime.EnvironmentSpec{Policies: []runtime.File{{Name: "policy.yaml", Data: policy}}}
}

// refusal asserts err is a *Refusal wrapping runtime.ErrAdmission with
// the reason.
func refusal(t *testing.T, err error, want Reason) *Refusal {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want refused: %s", want)
	}
	kind := runtime.ErrAdmission
	if want == ReasonUnreachable {
		// Not judged: the controller records a failed revision.
		kind = ErrUndecided
		if errors.Is(err, runtime.ErrAdmission) {
			t.Errorf("error %v wraps runtime.ErrAdmission; an unreachable registry decides nothing", err)
		}
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %v does not wrap %v", err, kind)
	}
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %T %v is not a *Refusal", err, err)
	}
	if r.Reason != want {
		t.Errorf("reason %q, want %q (%v)", r.Reason, want, err)
	}
	return r
}

func TestAdmitSignedImageTagRewrittenToDigest(t *testing.T) {
	f := newFixture(t)
	tag, d := f.push(t, "payments/api", "1.0")
	sign(t, d, f.signer)
	r := newReviewer(t)
	got, err := r.Admit(t.Context(), "staging", env(f.policy(policyOpts{})), tag)
	if err != nil {
		t.Fatal(err)
	}
	if got != d.String() {
		t.Errorf("Admit = %s, want %s", got, d)
	}
	ps, _ := Decode("policy.yaml", f.policy(policyOpts{}))
	v, patches := r.Review(t.Context(), Policies{Kyverno: ps}, PodSpec{Containers: []Container{{Name: "api", Image: "sidecar:1"}, {Name: "app", Image: tag}}})
	if !v.Allowed {
		t.Fatalf("Review refused: %v", v.Err())
	}
	want := []Patch{{Op: "replace", Path: "/containers/1/image", Value: d.String()}}
	if fmt.Sprint(patches) != fmt.Sprint(want) {
		t.Errorf("patches %v, want %v", patches, want)
	}
}

func TestAdmitRefusals(t *testing.T) {
	f := newFixture(t)
	unsignedTag, _ := f.push(t, "payments/unsigned", "1")
	otherTag, otherD := f.push(t, "payments/other", "1")
	sign(t, otherD, f.other)
	signedTag, signedD := f.push(t, "payments/signed", "1")
	sign(t, signedD, f.signer)
	elsewhereTag, elsewhereD := f.push(t, "elsewhere/app", "1")
	sign(t, elsewhereD, f.signer)
	// A registry that listened once and is gone.
	gone, err := registry.Serve(t.Context(), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr()
	gone.Close(t.Context())

	registryPattern := f.addr + "/payments/*"
	tests := []struct {
		name   string
		policy policyOpts
		image  string
		want   Reason
		cause  error
		detail string // in the message, when set
	}{
		{"unsigned", policyOpts{}, unsignedTag, ReasonUnsigned, signing.ErrNoSignature, ""},
		{"signed with another key", policyOpts{}, otherTag, ReasonWrongKey, signing.ErrWrongKey, ""},
		{"tag with verifyDigest and no mutateDigest", policyOpts{mutateDigest: "false", verifyDigest: "true"}, signedTag, ReasonTagNoDigest, nil, ""},
		{"registry not allowed by the pattern", policyOpts{validate: registryPattern}, elsewhereTag, ReasonRegistry, nil, ""},
		{"digest pattern refuses a tag the policy does not pin", policyOpts{validate: "*@sha256:*", refs: `["nothing/*"]`}, signedTag, ReasonTagNoDigest, nil, ""},
		{"registry unreachable", policyOpts{refs: `["127.0.0.1:*"]`}, goneAddr + "/payments/api:1", ReasonUnreachable, nil, ""},
		{"count of two keys, one signed", policyOpts{keys: f.pub + "\n" + f.otherPub}, signedTag, ReasonWrongKey, signing.ErrWrongKey, "1 of 2 keys verified, 2 needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReviewer(t)
			got, err := r.Admit(t.Context(), "staging", env(f.policy(tt.policy)), tt.image)
			if got != "" {
				t.Errorf("Admit returned %q with a refusal", got)
			}
			ref := refusal(t, err, tt.want)
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not wrap %v", err, tt.cause)
			}
			if ref.Policy != "policy.yaml" || ref.Rule == "" || ref.Image == "" {
				t.Errorf("refusal names policy %q rule %q image %q", ref.Policy, ref.Rule, ref.Image)
			}
			for _, part := range []string{"policy.yaml", ref.Rule, string(tt.want), tt.detail} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("message %q does not name %q", err, part)
				}
			}
		})
	}
}

func TestAdmitAllowed(t *testing.T) {
	f := newFixture(t)
	signedTag, signedD := f.push(t, "payments/signed", "1")
	sign(t, signedD, f.signer)
	tests := []struct {
		name   string
		policy policyOpts
		image  string
	}{
		{"by digest with verifyDigest", policyOpts{mutateDigest: "false", verifyDigest: "true"}, signedD.String()},
		{"registry allowed", policyOpts{validate: f.addr + "/payments/*"}, signedTag},
		{"digest pattern after mutateDigest", policyOpts{validate: "*@sha256:*"}, signedTag},
		{"one of two keys with count 1", policyOpts{keys: f.otherPub + "\n" + f.pub, count: 1}, signedTag},
		{"image the rule does not name", policyOpts{refs: `["ghcr.io/*"]`}, signedTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newReviewer(t).Admit(t.Context(), "staging", env(f.policy(tt.policy)), tt.image)
			if err != nil {
				t.Fatal(err)
			}
			if got != signedD.String() {
				t.Errorf("Admit = %s, want %s", got, signedD)
			}
		})
	}
}

func TestAuditWarnsAndAdmits(t *testing.T) {
	f := newFixture(t)
	tag, d := f.push(t, "payments/unsigned", "1")
	r := newReviewer(t)
	v, got, err := r.AdmitVerdict(t.Context(), "staging", env(f.policy(policyOpts{action: "Audit"})), tag)
	if err != nil {
		t.Fatalf("Audit refused: %v", err)
	}
	if got != d.String() {
		t.Errorf("Admit = %s, want %s", got, d)
	}
	if len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0].Message, string(ReasonUnsigned)) {
		t.Errorf("warnings %v, want one saying %q", v.Warnings, ReasonUnsigned)
	}
	// An audit that cannot reach the registry refuses: fail closed.
	pods := PodSpec{Containers: []Container{{Name: "api", Image: "127.0.0.1:1/payments/api@sha256:" + strings.Repeat("0", 64)}}}
	ps, err := Decode("policy.yaml", f.policy(policyOpts{action: "Audit", refs: `["127.0.0.1:*"]`}))
	if err != nil {
		t.Fatal(err)
	}
	v, _ = r.Review(t.Context(), Policies{Kyverno: ps}, pods)
	if v.Allowed || len(v.Refusals) != 1 || v.Refusals[0].Reason != ReasonUnreachable {
		t.Errorf("unreachable registry under Audit: allowed %v, refusals %v; want refused as %s", v.Allowed, v.Refusals, ReasonUnreachable)
	}
}

const reviewType = "https://example.com/CodeReview/v1"

func TestAttestationConditions(t *testing.T) {
	f := newFixture(t)
	onMain, onMainD := f.push(t, "payments/main", "1")
	sign(t, onMainD, f.signer)
	attest(t, onMainD, f.signer, reviewType, map[string]any{"repo": map[string]any{"branch": "main"}, "reviewers": []string{"ana@example.com"}, "score": 9})
	onBranch, onBranchD := f.push(t, "payments/branch", "1")
	sign(t, onBranchD, f.signer)
	attest(t, onBranchD, f.signer, reviewType, map[string]any{"repo": map[string]any{"branch": "feature/x"}, "reviewers": []string{"eve@example.com"}, "score": 3})
	none, noneD := f.push(t, "payments/none", "1")
	sign(t, noneD, f.signer)
	attestations := fmt.Sprintf(`            - type: %s
              conditions:
                - all:
                    - key: "{{ repo.branch }}"
                      operator: Equals
                      value: main
                    - key: "{{ reviewers }}"
                      operator: AnyIn
                      value: [ana@example.com, bob@example.com]
                    - key: "{{ score }}"
                      operator: GreaterThanOrEquals
                      value: 8
`, reviewType)
	pol := f.policy(policyOpts{attestations: attestations})
	if _, err := newReviewer(t).Admit(t.Context(), "staging", env(pol), onMain); err != nil {
		t.Errorf("conditions that hold: %v", err)
	}
	_, err := newReviewer(t).Admit(t.Context(), "staging", env(pol), onBranch)
	r := refusal(t, err, ReasonConditionFalse)
	if !strings.Contains(r.Detail, "repo.branch") {
		t.Errorf("detail %q does not name the condition", r.Detail)
	}
	_, err = newReviewer(t).Admit(t.Context(), "staging", env(pol), none)
	refusal(t, err, ReasonNoAttestation)
}

func evidencePredicate(gate, verdict string) evidence.Predicate {
	return evidence.Predicate{Gate: gate, Verdict: verdict, Run: evidence.Run{ID: "7", Pipeline: "p", Time: "2026-11-30T00:00:00Z"}, Steps: []evidence.Step{}}
}

func TestEvidenceRule(t *testing.T) {
	f := newFixture(t)
	passing, passingD := f.push(t, "payments/passing", "1")
	sign(t, passingD, f.signer)
	attest(t, passingD, f.signer, evidence.PredicateType("tests"), evidencePredicate("tests", evidence.Pass))
	attest(t, passingD, f.signer, evidence.PredicateType("vuln-scan"), evidencePredicate("vuln-scan", evidence.Pass))
	failing, failingD := f.push(t, "payments/failing", "1")
	sign(t, failingD, f.signer)
	attest(t, failingD, f.signer, evidence.PredicateType("tests"), evidencePredicate("tests", evidence.Pass))
	attest(t, failingD, f.signer, evidence.PredicateType("vuln-scan"), evidencePredicate("vuln-scan", evidence.Fail))
	missing, missingD := f.push(t, "payments/missing", "1")
	sign(t, missingD, f.signer)
	attest(t, missingD, f.signer, evidence.PredicateType("tests"), evidencePredicate("tests", evidence.Pass))
	unsigned, _ := f.push(t, "payments/unsigned", "1")

	require := []string{"tests", "vuln-scan"}
	tests := []struct {
		name  string
		image string
		key   string
		want  Reason // "" admitted
		cause error
	}{
		{"present and passing, key file", passing, f.pubFile, "", nil},
		{"present and passing, PEM key", passing, f.pub, "", nil},
		{"failing", failing, f.pubFile, ReasonEvidenceFail, evidence.ErrFailing},
		{"missing", missing, f.pubFile, ReasonEvidenceMiss, evidence.ErrMissing},
		{"unsigned", unsigned, f.pubFile, ReasonUnsigned, signing.ErrNoSignature},
		{"verified with another key", passing, f.otherPub, ReasonWrongKey, signing.ErrWrongKey},
		{"no key", passing, "", ReasonKeyUnavailable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := runtime.EnvironmentSpec{Require: require, Key: tt.key}
			got, err := newReviewer(t).Admit(t.Context(), "staging", spec, tt.image)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got != passingD.String() {
					t.Errorf("Admit = %s, want %s", got, passingD)
				}
				return
			}
			r := refusal(t, err, tt.want)
			if r.Policy != GantryPolicy || r.Rule != RuleEvidence {
				t.Errorf("refusal names %s/%s, want %s/%s", r.Policy, r.Rule, GantryPolicy, RuleEvidence)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not wrap %v", err, tt.cause)
			}
		})
	}
}

func TestUnsupportedPolicyRefused(t *testing.T) {
	f := newFixture(t)
	tag, d := f.push(t, "payments/api", "1")
	sign(t, d, f.signer)
	pol := strings.Replace(string(f.policy(policyOpts{})), "                    rekor:\n                      ignoreTlog: true\n", "", 1)
	_, err := newReviewer(t).Admit(t.Context(), "staging", env([]byte(pol)), tag)
	r := refusal(t, err, ReasonUnsupported)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("error %v does not wrap ErrUnsupported", err)
	}
	if !strings.Contains(err.Error(), "policy.yaml:18:") || !strings.Contains(err.Error(), "transparency log") {
		t.Errorf("message %q does not name policy.yaml:18 and the transparency log", err)
	}
	if r.Policy != "policy.yaml" {
		t.Errorf("refusal names policy %q", r.Policy)
	}
}

func TestSignatureLookupCachedByDigest(t *testing.T) {
	f := newFixture(t)
	_, d := f.push(t, "payments/api", "1")
	sign(t, d, f.signer)
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	r := newReviewer(t, withClock(func() time.Time { return now }))
	spec := env(f.policy(policyOpts{}))
	if _, err := r.Admit(t.Context(), "staging", spec, d.String()); err != nil {
		t.Fatal(err)
	}
	// With the registry gone, the cached lookup still answers for the
	// digest ...
	f.stop()
	if _, err := r.Admit(t.Context(), "staging", spec, d.String()); err != nil {
		t.Fatalf("cached: %v", err)
	}
	// ... until it expires: then the unreachable registry refuses.
	now = now.Add(DefaultCacheTTL)
	_, err := r.Admit(t.Context(), "staging", spec, d.String())
	refusal(t, err, ReasonUnreachable)
	// A fresh Reviewer has no cache.
	_, err = newReviewer(t).Admit(t.Context(), "staging", spec, d.String())
	refusal(t, err, ReasonUnreachable)
}

func TestNotEnforcedRulesWarn(t *testing.T) {
	f := newFixture(t)
	tag, d := f.push(t, "payments/api", "1")
	sign(t, d, f.signer)
	pol := string(f.policy(policyOpts{})) + `    - name: no-latest
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        deny:
          conditions:
            any:
              - key: "{{ request.object.spec.containers[].image }}"
                operator: AnyIn
                value: ["*:latest"]
`
	v, _, err := newReviewer(t).AdmitVerdict(t.Context(), "staging", env([]byte(pol)), tag)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Warnings) != 1 || v.Warnings[0].Rule != "no-latest" || !strings.Contains(v.Warnings[0].Message, "not enforced") {
		t.Errorf("warnings %v, want one saying rule no-latest is not enforced", v.Warnings)
	}
}

// TestConcurrentReviews admits the same image from many goroutines on one
// Reviewer (as a webhook does), while a second image is refused: answers
// do not mix, and lookups of one digest are shared.
func TestConcurrentReviews(t *testing.T) {
	f := newFixture(t)
	signedTag, signedD := f.push(t, "payments/signed", "1")
	sign(t, signedD, f.signer)
	unsignedTag, _ := f.push(t, "payments/unsigned", "1")
	r := newReviewer(t)
	spec := env(f.policy(policyOpts{}))
	const n = 16
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			got, err := r.Admit(t.Context(), "staging", spec, signedTag)
			if err == nil && got != signedD.String() {
				err = fmt.Errorf("Admit = %s, want %s", got, signedD)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := r.Admit(t.Context(), "staging", spec, unsignedTag)
			var ref *Refusal
			if !errors.As(err, &ref) || ref.Reason != ReasonUnsigned {
				err = fmt.Errorf("unsigned image: %v, want refused as %s", err, ReasonUnsigned)
			} else {
				err = nil
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestRefusalsAreNotCached: an image signed, or given evidence, after a
// refusal is admitted by the same Reviewer at once, while the clock
// stands still (the cache keeps successes only).
func TestRefusalsAreNotCached(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	r := newReviewer(t, withClock(func() time.Time { return now }))
	tag, d := f.push(t, "payments/api", "1")

	policy := env(f.policy(policyOpts{}))
	_, err := r.Admit(t.Context(), "staging", policy, tag)
	refusal(t, err, ReasonUnsigned)
	sign(t, d, f.signer)
	if _, err := r.Admit(t.Context(), "staging", policy, tag); err != nil {
		t.Fatalf("signed after the refusal: %v", err)
	}

	attest(t, d, f.signer, evidence.PredicateType("tests"), evidencePredicate("tests", evidence.Pass))
	spec := runtime.EnvironmentSpec{Require: []string{"tests"}, Key: f.pub}
	if _, err := r.Admit(t.Context(), "prod", spec, tag); err != nil {
		t.Fatalf("tests evidence: %v", err)
	}
	// The attestation list is cached now; the approval gate is attested
	// later in the image's life.
	spec.Require = []string{"tests", evidence.GateApproval}
	_, err = r.Admit(t.Context(), "prod", spec, tag)
	refusal(t, err, ReasonEvidenceMiss)
	attest(t, d, f.signer, evidence.PredicateType(evidence.GateApproval), evidencePredicate(evidence.GateApproval, evidence.Pass))
	if _, err := r.Admit(t.Context(), "prod", spec, tag); err != nil {
		t.Fatalf("approval attested after the refusal: %v", err)
	}
}
