package admission

import (
	"os"
	"strings"
	"testing"
)

const (
	examplePolicy = "../../examples/payment-service/kubernetes/deployments/kyverno-image-verification.yaml"
	localPolicy   = "../../examples/payment-service/kubernetes/local/kyverno-image-verification.yaml"
	// placeholderKey is the first line of the examples' placeholder key.
	placeholderKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsuO1J13OgG5C71vn5tOchlg3G3nR"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestExamplePolicy reads the example's ECR policy as written and shows
// why the local runtime needs its own variant: a local image matches no
// imageReferences, so nothing verifies or pins it, and the registry and
// digest patterns refuse it.
func TestExamplePolicy(t *testing.T) {
	ps, err := Decode(examplePolicy, readFile(t, examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%d policies, want 1", len(ps))
	}
	p := ps[0]
	if p.Name != "verify-image-signatures" || p.Action != Enforce || len(p.Rules) != 3 {
		t.Fatalf("policy %s action %s with %d rules, want verify-image-signatures Enforce with 3", p.Name, p.Action, len(p.Rules))
	}
	r := p.Rules[0]
	if len(r.VerifyImages) != 1 || len(r.Namespaces) != 3 {
		t.Fatalf("rule %s: %d verifyImages, namespaces %v", r.Name, len(r.VerifyImages), r.Namespaces)
	}
	iv := r.VerifyImages[0]
	if !iv.MutateDigest || !iv.VerifyDigest || !iv.Required || len(iv.Attestors) != 1 || iv.Attestors[0].Count != 1 || len(iv.Attestors[0].Entries) != 1 {
		t.Errorf("verifyImages %+v", iv)
	}
	ecr := "123456789012.dkr.ecr.us-east-1.amazonaws.com/examplepay/payment-service:1.4.0"
	if !matchAny(iv.ImageReferences, ecr) {
		t.Errorf("imageReferences %v do not match %s", iv.ImageReferences, ecr)
	}
	if r := p.Rules[1]; r.Validate == nil || len(r.Validate.Patterns) != 1 || len(r.Validate.Patterns[0].Lists) != 3 || len(r.NotEnforced) != 0 {
		t.Errorf("rule %s: validate %+v, not enforced %v", r.Name, r.Validate, r.NotEnforced)
	}

	f := newFixture(t)
	tag, d := f.push(t, "payment-service", "1.4.0")
	sign(t, d, f.signer)
	if matchAny(iv.ImageReferences, tag) {
		t.Fatalf("imageReferences %v match the local image %s", iv.ImageReferences, tag)
	}
	v, patches := newReviewer(t).Review(t.Context(), Policies{Kyverno: ps}, PodSpec{Containers: []Container{{Name: "api", Image: tag}}})
	if v.Allowed || len(patches) != 0 {
		t.Fatalf("allowed %v, patches %v; want refused, unpatched", v.Allowed, patches)
	}
	got := map[string]Reason{}
	for _, r := range v.Refusals {
		got[r.Rule] = r.Reason
	}
	want := map[string]Reason{"restrict-image-registries": ReasonRegistry, "require-image-digests": ReasonTagNoDigest}
	if len(got) != len(want) || got["restrict-image-registries"] != want["restrict-image-registries"] || got["require-image-digests"] != want["require-image-digests"] {
		t.Errorf("refusals %v, want %v", got, want)
	}
}

// TestLocalExamplePolicy enforces the example's local variant with the
// signing key put in, as docs/admission.md says.
func TestLocalExamplePolicy(t *testing.T) {
	f := newFixture(t)
	data := string(readFile(t, localPolicy))
	if !strings.Contains(data, placeholderKey) {
		t.Fatal("the local policy has no placeholder key")
	}
	withKey := withPublicKey(t, data, f.pub)
	signedTag, signedD := f.push(t, "payment-service", "1.4.0")
	sign(t, signedD, f.signer)
	unsignedTag, _ := f.push(t, "payment-service", "unsigned")
	tests := []struct {
		name   string
		policy string
		image  string
		want   Reason
	}{
		{"signed, tag pinned", withKey, signedTag, ""},
		{"unsigned", withKey, unsignedTag, ReasonUnsigned},
		{"another registry", withKey, "ghcr.io/evil/payment-service@sha256:" + strings.Repeat("a", 64), ReasonRegistry},
		{"another service", withKey, f.addr + "/other@" + signedD.DigestStr(), ReasonRegistry},
		{"placeholder key left in", data, signedTag, ReasonWrongKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newReviewer(t).Admit(t.Context(), "staging", env([]byte(tt.policy)), tt.image)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got != signedD.String() {
					t.Errorf("Admit = %s, want %s", got, signedD)
				}
				return
			}
			refusal(t, err, tt.want)
		})
	}
}

// withPublicKey replaces the placeholder key block of policy by pem.
func withPublicKey(t *testing.T, policy, pem string) string {
	t.Helper()
	begin := strings.Index(policy, "-----BEGIN PUBLIC KEY-----")
	endMark := "-----END PUBLIC KEY-----"
	end := strings.Index(policy, endMark)
	if begin < 0 || end < 0 {
		t.Fatal("no key block")
	}
	lineStart := strings.LastIndex(policy[:begin], "\n") + 1
	pad := policy[lineStart:begin]
	return policy[:lineStart] + indent(pem, len(pad)) + policy[end+len(endMark):]
}
