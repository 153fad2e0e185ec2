package admission

import (
	"testing"

	"github.com/gantry-ci/gantry/internal/evidence"
)

// BenchmarkAdmit measures Admit of a signed image (by tag, by digest)
// against the
// signature policy and the evidence rule, against an embedded registry on
// loopback: warm (one Reviewer, lookups cached by digest; a tag is still
// resolved each time, a digest needs no registry at all) and cold (a new Reviewer each time: the policy parsed and
// every signature and attestation read and verified).
func BenchmarkAdmit(b *testing.B) {
	f := newFixture(b)
	tag, d := f.push(b, "payments/api", "1")
	sign(b, d, f.signer)
	attest(b, d, f.signer, evidence.PredicateType("tests"), evidencePredicate("tests", evidence.Pass))
	spec := env(f.policy(policyOpts{}))
	spec.Require, spec.Key = []string{"tests"}, f.pub
	admit := func(b *testing.B, r *Reviewer, image string) {
		got, err := r.Admit(b.Context(), "staging", spec, image)
		if err != nil {
			b.Fatal(err)
		}
		if got != d.String() {
			b.Fatalf("Admit = %s, want %s", got, d)
		}
	}
	for _, image := range []struct{ name, ref string }{{"tag", tag}, {"digest", d.String()}} {
		b.Run("warm/"+image.name, func(b *testing.B) {
			r := newReviewer(b)
			admit(b, r, image.ref)
			for b.Loop() {
				admit(b, r, image.ref)
			}
		})
		b.Run("cold/"+image.name, func(b *testing.B) {
			for b.Loop() {
				admit(b, newReviewer(b), image.ref)
			}
		})
	}
}
