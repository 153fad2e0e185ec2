package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Media type and annotations of cosign signature layers.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	// KeyIDAnnotation is gantry's: the signing key's ID, which lets Verify
	// tell "signed by another key" from "payload altered". cosign ignores
	// it.
	KeyIDAnnotation = "dev.gantry.key-id"
)

// SignOptions says what a signature claims.
type SignOptions struct {
	// Identities are the docker-reference claims, such as REPO:TAG for
	// each tag the image was pushed under; each gets its own signature.
	// Empty means one signature claiming the repository, as `cosign sign`
	// writes.
	Identities []string
	// Annotations go into the payload's optional section (cosign sign -a).
	Annotations map[string]any
}

// Signed says what SignImage wrote.
type Signed struct {
	// Tag is the signature attachment, REPO:sha256-<hex>.sig.
	Tag string `json:"tag"`
	// Signatures is how many signatures the attachment holds now.
	Signatures int `json:"signatures"`
	// Added is how many this call added (an identical one is kept once).
	Added int `json:"added"`
	// Made are the signatures this call made, added or already there.
	Made []SignedPayload `json:"-"`
}

// SignedPayload is one simple-signing payload and its signature.
type SignedPayload struct {
	Payload json.RawMessage `json:"payload"`
	// Signature is base64, as in the signature annotation.
	Signature string `json:"signature"`
}

// SignImage signs the image ref (by digest) and adds the signatures to its
// cosign signature attachment, keeping those already there.
func SignImage(ctx context.Context, ref name.Digest, s *Signer, so SignOptions, opts ...remote.Option) (*Signed, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	if _, err := remote.Head(ref, opts...); err != nil {
		return nil, fmt.Errorf("sign %s: %w", ref, err)
	}
	tag := AttachmentTag(ref, SignatureSuffix)
	layers, err := readAttachment(tag, opts)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", ref, err)
	}
	identities := so.Identities
	if len(identities) == 0 {
		identities = []string{""}
	}
	added := 0
	var made []SignedPayload
	for _, id := range identities {
		p, err := payload.Cosign{Image: ref, ClaimedIdentity: id, Annotations: so.Annotations}.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("sign %s: payload: %w", ref, err)
		}
		sig, err := s.sv.SignMessage(bytes.NewReader(p), signOpts(ctx)...)
		if err != nil {
			return nil, fmt.Errorf("sign %s with %s: %w", ref, s.Ref, err)
		}
		b64 := base64.StdEncoding.EncodeToString(sig)
		e := entry{data: p, mediaType: SimpleSigningMediaType, annotations: map[string]string{
			SignatureAnnotation: b64,
			KeyIDAnnotation:     s.ID,
		}}
		made = append(made, SignedPayload{Payload: p, Signature: b64})
		if !hasPayload(layers, p, s.ID) {
			layers = append(layers, e)
			added++
		}
	}
	if added > 0 {
		if _, err := writeAttachment(tag, layers, opts); err != nil {
			return nil, fmt.Errorf("sign %s: %w", ref, err)
		}
	}
	return &Signed{Tag: tag.String(), Signatures: len(layers), Added: added, Made: made}, nil
}

// hasPayload reports whether layers already hold a signature of p by key.
// ECDSA signatures differ each time, so the payload and key decide.
func hasPayload(layers []entry, p []byte, key string) bool {
	for _, l := range layers {
		if l.mediaType == SimpleSigningMediaType && l.annotations[KeyIDAnnotation] == key && bytes.Equal(l.data, p) {
			return true
		}
	}
	return false
}
