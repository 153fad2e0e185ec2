package admission

import (
	"errors"
	"strings"
	"testing"
)

// TestBadPolicyRefused: a policy file that does not parse (broken YAML,
// a misspelt field) refuses the image with the reason "policy does not
// parse", naming the file, line and column; it is not taken for an
// unsupported feature.
func TestBadPolicyRefused(t *testing.T) {
	f := newFixture(t)
	tag, d := f.push(t, "payments/api", "1")
	sign(t, d, f.signer)
	good := string(f.policy(policyOpts{mutateDigest: "true"}))
	tests := []struct {
		name   string
		policy string
		where  string
		says   string
	}{
		{"broken YAML", strings.Replace(good, "spec:\n", "spec: [\n", 1), "policy.yaml:", "policy.yaml"},
		{"misspelt field", strings.Replace(good, "mutateDigest:", "mutateDigets:", 1), "policy.yaml:", `unknown field "mutateDigets"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.policy == good {
				t.Fatal("the test did not break the policy")
			}
			_, err := newReviewer(t).Admit(t.Context(), "staging", env([]byte(tc.policy)), tag)
			r := refusal(t, err, ReasonBadPolicy)
			t.Logf("refusal: %v", err)
			if errors.Is(err, ErrUnsupported) {
				t.Errorf("error %v wraps ErrUnsupported; want a parse error", err)
			}
			if r.Policy != "policy.yaml" {
				t.Errorf("refusal names policy %q, want policy.yaml", r.Policy)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.where) || !strings.Contains(msg, tc.says) || !strings.Contains(msg, string(ReasonBadPolicy)) {
				t.Errorf("message %q: want it to name %s, say %q and %q", msg, tc.where, tc.says, ReasonBadPolicy)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Line == 0 {
				t.Errorf("error %v: want a *PolicyError with a line", err)
			}
		})
	}
}
