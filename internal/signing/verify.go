package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Verification failures. Every error Verify returns for an image that is
// not properly signed wraps exactly one of them.
var (
	// ErrNoSignature: the image has no signature at all.
	ErrNoSignature = errors.New("no signature")
	// ErrWrongKey: the signatures were made by another key.
	ErrWrongKey = errors.New("signed by another key")
	// ErrTampered: a signature made by this key does not match its
	// payload any more.
	ErrTampered = errors.New("signed payload was altered")
	// ErrOtherDigest: a valid signature by this key, but for another
	// image (it was copied next to this one).
	ErrOtherDigest = errors.New("signature is for another image")
	// ErrTagMoved: the tag verified was signed at another digest and was
	// moved to an image this key never signed.
	ErrTagMoved = errors.New("tag moved after signing")
	// ErrNoAttestation: the image has no attestation.
	ErrNoAttestation = errors.New("no attestation")
)

// FailureName names the verification failure err wraps, most specific
// first (tag-moved, other-digest, tampered, wrong-key, no-signature), or ""
// when it wraps none of them (a registry failure).
func FailureName(err error) string {
	for _, f := range []struct {
		err  error
		name string
	}{
		{ErrTagMoved, "tag-moved"},
		{ErrOtherDigest, "other-digest"},
		{ErrTampered, "tampered"},
		{ErrWrongKey, "wrong-key"},
		{ErrNoSignature, "no-signature"},
	} {
		if errors.Is(err, f.err) {
			return f.name
		}
	}
	return ""
}

// Signature is a verified image signature.
type Signature struct {
	// Identity is the payload's docker-reference claim.
	Identity    string         `json:"identity"`
	Digest      string         `json:"digest"`
	Annotations map[string]any `json:"annotations,omitempty"`
}

// Verified is an image with at least one valid signature by the key.
type Verified struct {
	// Image is REPO@DIGEST.
	Image      string      `json:"image"`
	Signatures []Signature `json:"signatures"`
}

// Resolve returns ref by digest, asking the registry for a tag's digest.
func Resolve(ctx context.Context, ref name.Reference, opts ...remote.Option) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// Verify checks that the image ref has a signature made by v for its
// digest. Failures wrap ErrNoSignature, ErrWrongKey, ErrTampered,
// ErrOtherDigest or ErrTagMoved; other errors are registry failures.
func Verify(ctx context.Context, ref name.Reference, v *Verifier, opts ...remote.Option) (*Verified, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	d, err := Resolve(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	tag := AttachmentTag(d, SignatureSuffix)
	layers, err := readAttachment(tag, opts)
	if err != nil {
		return nil, err
	}
	res := &Verified{Image: d.String()}
	var failures []error
	for _, l := range layers {
		if l.mediaType != SimpleSigningMediaType {
			continue
		}
		sig, err := v.checkSignature(ctx, l, d.DigestStr())
		if err != nil {
			failures = append(failures, err)
			continue
		}
		res.Signatures = append(res.Signatures, *sig)
	}
	if len(res.Signatures) > 0 {
		return res, nil
	}
	if t, ok := ref.(name.Tag); ok {
		was, err := v.signedAt(ctx, t, d.DigestStr(), opts)
		if err != nil {
			return nil, err
		}
		if was != "" {
			return nil, fmt.Errorf("%w: %s was signed by %s at %s; it now points to %s, which that key did not sign", ErrTagMoved, t, v.Ref, was, d.DigestStr())
		}
	}
	if len(failures) == 0 {
		return nil, fmt.Errorf("%w: %s has no cosign signature (no %s)", ErrNoSignature, d, tag.TagStr())
	}
	return nil, mostSpecific(failures)
}

// checkSignature verifies one signature layer for the digest want.
func (v *Verifier) checkSignature(ctx context.Context, l entry, want string) (*Signature, error) {
	sig, err := base64.StdEncoding.DecodeString(l.annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: a signature layer has no readable %s annotation", ErrTampered, SignatureAnnotation)
	}
	if err := v.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(l.data), verifyOpts(ctx)...); err != nil {
		return nil, v.mismatch(l, "signature")
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(l.data, &p); err != nil || p.Critical.Type != payload.CosignSignatureType {
		return nil, fmt.Errorf("%w: the signed payload is not a cosign simple-signing payload", ErrTampered)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != want {
		return nil, fmt.Errorf("%w: the signature by %s is for %s (%s), not %s", ErrOtherDigest, v.Ref, got, p.Critical.Identity.DockerReference, want)
	}
	return &Signature{Identity: p.Critical.Identity.DockerReference, Digest: want, Annotations: p.Optional}, nil
}

// mismatch explains a signature that does not verify with v. gantry's
// signatures carry their key's ID, which separates a wrong key from an
// altered payload; for others (cosign's) the two cannot be told apart.
func (v *Verifier) mismatch(l entry, what string) error {
	switch id := l.annotations[KeyIDAnnotation]; {
	case id == v.ID:
		return fmt.Errorf("%w: the %s by %s no longer matches what it signed", ErrTampered, what, v.Ref)
	case id != "":
		return fmt.Errorf("%w: the %s was made by key %s, not by %s (%s)", ErrWrongKey, what, shortID(id), v.Ref, shortID(v.ID))
	default:
		return fmt.Errorf("%w: the %s does not verify with %s (%s): another key made it, or what it signed was altered", ErrWrongKey, what, v.Ref, shortID(v.ID))
	}
}

func shortID(id string) string {
	if alg, hexd, ok := strings.Cut(id, ":"); ok && len(hexd) > 12 {
		return alg + ":" + hexd[:12]
	}
	return id
}

// mostSpecific picks the failure that explains most: a signature for
// another digest over an altered payload over a wrong key.
func mostSpecific(errs []error) error {
	for _, kind := range []error{ErrOtherDigest, ErrTampered, ErrWrongKey} {
		for _, err := range errs {
			if errors.Is(err, kind) {
				return err
			}
		}
	}
	return errs[0]
}

var sigTagRE = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.sig$`)

// maxSigTags bounds the signature attachments read to explain a moved tag.
const maxSigTags = 1000

// signedAt returns the digest other than current at which v signed a
// claim naming tag, or "".
func (v *Verifier) signedAt(ctx context.Context, tag name.Tag, current string, opts []remote.Option) (string, error) {
	tags, err := remote.List(tag.Context(), opts...)
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("list tags of %s: %w", tag.Context(), err)
	}
	read := 0
	for _, t := range tags {
		m := sigTagRE.FindStringSubmatch(t)
		if m == nil || "sha256:"+m[1] == current {
			continue
		}
		if read++; read > maxSigTags {
			break
		}
		digest := "sha256:" + m[1]
		layers, err := readAttachment(tag.Context().Tag(t), opts)
		if err != nil {
			return "", err
		}
		for _, l := range layers {
			sig, err := v.checkSignature(ctx, l, digest)
			if err != nil {
				continue
			}
			if claimsTag(sig.Identity, tag) {
				return digest, nil
			}
		}
	}
	return "", nil
}

// claimsTag reports whether identity (a docker-reference claim) names
// tag's repository path and tag. The registry host is left out: the claim
// was found in tag's own repository, and a registry's address may change
// (gantry's embedded registry runs on a free loopback port).
func claimsTag(identity string, tag name.Tag) bool {
	// Strict: a claim of the bare repository names no tag (not "latest").
	claimed, err := name.NewTag(identity, name.StrictValidation)
	return err == nil && claimed.RepositoryStr() == tag.RepositoryStr() && claimed.TagStr() == tag.TagStr()
}

// Attestation is one attestation layer and what verifying it found.
type Attestation struct {
	PredicateType string `json:"predicate_type"`
	// Statement is set when the attestation verified.
	Statement *Statement `json:"statement,omitempty"`
	// Err says why it did not verify (wrapping ErrWrongKey, ErrTampered
	// or ErrOtherDigest).
	Err error `json:"-"`
}

// VerifyAttestations reads the attestations of the image ref and verifies
// each with v: the DSSE signature, the in-toto payload and that ref's
// digest is among the statement's subjects. The error is for registry
// failures and ErrNoAttestation; rejected attestations are returned with
// their reason.
func VerifyAttestations(ctx context.Context, ref name.Digest, v *Verifier, opts ...remote.Option) ([]Attestation, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	tag := AttachmentTag(ref, AttestationSuffix)
	layers, err := readAttachment(tag, opts)
	if err != nil {
		return nil, err
	}
	var out []Attestation
	for _, l := range layers {
		if l.mediaType != DSSEMediaType {
			continue
		}
		a := Attestation{PredicateType: l.annotations[PredicateTypeAnnotation]}
		a.Statement, a.Err = v.checkAttestation(ctx, l, ref.DigestStr())
		if a.Statement != nil {
			a.PredicateType = a.Statement.PredicateType
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no attestation (no %s)", ErrNoAttestation, ref, tag.TagStr())
	}
	return out, nil
}

func (v *Verifier) checkAttestation(ctx context.Context, l entry, want string) (*Statement, error) {
	var decoded []byte
	w := dsse.WrapVerifier(v.v, dsse.WithExpectedPayloadType(InTotoPayloadType), dsse.WithDecodedPayload(&decoded))
	if err := w.VerifySignature(bytes.NewReader(l.data), nil, verifyOpts(ctx)...); err != nil {
		return nil, v.mismatch(l, "attestation")
	}
	var st Statement
	if err := json.Unmarshal(decoded, &st); err != nil {
		return nil, fmt.Errorf("%w: the attestation's payload is not an in-toto statement", ErrTampered)
	}
	if !coversDigest(st.Subject, want) {
		return nil, fmt.Errorf("%w: the %s attestation by %s is about %s, not %s", ErrOtherDigest, st.PredicateType, v.Ref, subjectDigests(st.Subject), want)
	}
	return &st, nil
}

func subjectDigests(subjects []Subject) string {
	var out []string
	for _, s := range subjects {
		for alg, h := range s.Digest {
			out = append(out, alg+":"+h)
		}
	}
	return strings.Join(out, ", ")
}
