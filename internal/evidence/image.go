package evidence

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/signing"
)

// ImageCheck is what checking an image in its registry found: whether one
// of the trusted keys signed its digest, and the newest verified verdict
// of each gate attested on it. It is the registry's account, beside what
// the runs recorded; readers (the API, the web UI) show both.
type ImageCheck struct {
	// Image is REPO@DIGEST as checked.
	Image string `json:"image"`
	// Verified: a signature for this digest by one of the keys.
	Verified bool `json:"verified"`
	// Key and KeyID name the key that verified the signature.
	Key   string `json:"key,omitempty"`
	KeyID string `json:"key_id,omitempty"`
	// Failure names why no key verified it (see signing.FailureName) and
	// Error says it in words.
	Failure string `json:"failure,omitempty"`
	Error   string `json:"error,omitempty"`
	// Gates are the gates attested by the verifying key, newest verdict
	// each, in the order of Gates().
	Gates []Verdict `json:"gates"`
	// Rejected are the gates whose attestations the key did not verify,
	// with the reason (altered, another key, another digest).
	Rejected []RejectedGate `json:"rejected,omitempty"`
}

// RejectedGate is a gate attested on an image whose attestation did not
// verify.
type RejectedGate struct {
	Gate   string `json:"gate"`
	Reason string `json:"reason"`
}

// ErrNoKeys is returned by CheckImage given no key to trust.
var ErrNoKeys = errors.New("no trusted key to verify with")

// CheckImage verifies the signature of ref with each key in turn until one
// verifies it, then the gate attestations with that key. A signature no
// key verifies is a finding (Verified false, Failure named), not an error;
// the error is for a registry that could not be read.
func CheckImage(ctx context.Context, ref name.Digest, keys []*signing.Verifier, opts ...remote.Option) (ImageCheck, error) {
	c := ImageCheck{Image: ref.String(), Gates: []Verdict{}}
	if len(keys) == 0 {
		return c, ErrNoKeys
	}
	var failures []error
	var key *signing.Verifier
	for _, k := range keys {
		if _, err := signing.Verify(ctx, ref, k, opts...); err != nil {
			if signing.FailureName(err) == "" {
				return c, fmt.Errorf("verify %s: %w", ref, err)
			}
			failures = append(failures, err)
			continue
		}
		key = k
		break
	}
	if key == nil {
		err := mostSpecific(failures)
		c.Failure, c.Error = signing.FailureName(err), err.Error()
		return c, nil
	}
	c.Verified, c.Key, c.KeyID = true, key.Ref, key.ID
	atts, err := signing.VerifyAttestations(ctx, ref, key, opts...)
	if err != nil && !errors.Is(err, signing.ErrNoAttestation) {
		return c, fmt.Errorf("attestations of %s: %w", ref, err)
	}
	found, rejected := latest(atts)
	for _, g := range Gates() {
		if v, ok := found[g]; ok {
			c.Gates = append(c.Gates, v)
		} else if err := rejected[g]; err != nil {
			c.Rejected = append(c.Rejected, RejectedGate{Gate: g, Reason: err.Error()})
		}
	}
	return c, nil
}

// mostSpecific returns the failure that says most: a key that made a
// signature which no longer matches says more than a key that made none.
func mostSpecific(errs []error) error {
	rank := func(err error) int {
		return slices.Index([]string{"tag-moved", "other-digest", "tampered", "wrong-key", "no-signature"}, signing.FailureName(err))
	}
	best := errs[0]
	for _, err := range errs[1:] {
		if rank(err) < rank(best) {
			best = err
		}
	}
	return best
}
