package admission

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/signing"
)

// Admit implements runtime.Admitter: it reviews image, the one container
// of a workload, against the environment's policies and evidence
// requirement and returns the reference to run, always REPO@DIGEST: the
// digest that was checked (a tag is resolved once, so what runs is what
// was verified). A refusal is a *Refusal wrapping runtime.ErrAdmission;
// warnings (Audit failures, parts of a policy not enforced here) are
// logged.
func (r *Reviewer) Admit(ctx context.Context, environment string, spec runtime.EnvironmentSpec, image string) (string, error) {
	v, pinned, err := r.AdmitVerdict(ctx, environment, spec, image)
	for _, w := range v.Warnings {
		r.log.WarnContext(ctx, "admission warning", "environment", environment, "policy", w.Policy, "rule", w.Rule, "image", w.Image, "warning", w.Message)
	}
	if err != nil {
		return "", err
	}
	return pinned, nil
}

// AdmitVerdict is Admit returning the whole verdict, for callers that
// record warnings with the revision.
func (r *Reviewer) AdmitVerdict(ctx context.Context, environment string, spec runtime.EnvironmentSpec, image string) (Verdict, string, error) {
	p, f := r.environmentPolicies(ctx, spec)
	if f != nil {
		f.Image = image
		return Verdict{Refusals: []*Refusal{f}}, "", f
	}
	pod := PodSpec{Containers: []Container{{Name: environment, Image: image}}}
	v, _ := r.Review(ctx, p, pod)
	if !v.Allowed {
		return v, "", v.Err()
	}
	pinned := image
	if mutated, ok := v.Pinned[image]; ok {
		pinned = mutated
	}
	rv := &review{r: r, verdict: &v, resolved: map[string]name.Digest{}, failed: map[string]error{}}
	if d, ok := digestOf(pinned); ok {
		return v, d, nil
	}
	// No rule checked the image: pin it for the runtime.
	d, f := rv.resolve(ctx, pinned)
	if f != nil {
		f.Policy, f.Rule = GantryPolicy, "pin-digest"
		v.Allowed, v.Refusals = false, append(v.Refusals, f)
		return v, "", f
	}
	return v, d.String(), nil
}

// environmentPolicies reads the environment's policy files (parsed once
// per content) and evidence key.
func (r *Reviewer) environmentPolicies(ctx context.Context, spec runtime.EnvironmentSpec) (Policies, *Refusal) {
	var p Policies
	for _, file := range spec.Policies {
		pols, err := r.decodeCached(file)
		if err != nil {
			reason := ReasonBadPolicy
			if errors.Is(err, ErrUnsupported) {
				reason = ReasonUnsupported
			}
			return p, &Refusal{Policy: file.Name, Reason: reason, Detail: err.Error(), Err: err}
		}
		p.Kyverno = append(p.Kyverno, pols...)
	}
	if len(spec.Require) == 0 {
		return p, nil
	}
	p.Require = spec.Require
	key := strings.TrimSpace(spec.Key)
	var err error
	switch {
	case key == "":
		return p, &Refusal{Policy: GantryPolicy, Rule: RuleEvidence, Reason: ReasonKeyUnavailable,
			Detail: fmt.Sprintf("the environment requires evidence (%s) but names no key to verify it", strings.Join(spec.Require, ", "))}
	case strings.HasPrefix(key, "-----BEGIN"):
		p.EvidenceKey, err = signing.ParseVerifier("the environment's key", []byte(key))
	case signing.IsKMS(key):
		var f *Refusal
		p.EvidenceKey, f = r.verifier(ctx, Attestor{KMS: key})
		if f != nil {
			f.Policy, f.Rule = GantryPolicy, RuleEvidence
			return p, f
		}
	default:
		p.EvidenceKey, err = signing.LoadVerifier(ctx, key)
	}
	if err != nil {
		return p, &Refusal{Policy: GantryPolicy, Rule: RuleEvidence, Reason: ReasonKeyUnavailable, Detail: err.Error(), Err: err}
	}
	return p, nil
}

// decodeCached decodes a policy file once per name and content.
func (r *Reviewer) decodeCached(f runtime.File) ([]*Policy, error) {
	sum := sha256.Sum256(f.Data)
	key := f.Name + "\x00" + string(sum[:])
	r.mu.Lock()
	e, ok := r.files[key]
	r.mu.Unlock()
	if ok {
		return e.policies, e.err
	}
	pols, err := Decode(f.Name, f.Data)
	r.mu.Lock()
	if len(r.files) >= 256 {
		clear(r.files)
	}
	r.files[key] = fileEntry{policies: pols, err: err}
	r.mu.Unlock()
	return pols, err
}

// digestOf returns image when it is a reference by digest.
func digestOf(image string) (string, bool) {
	ref, err := parseRef(image)
	if err != nil {
		return "", false
	}
	if d, ok := ref.(name.Digest); ok {
		return d.String(), true
	}
	return "", false
}
