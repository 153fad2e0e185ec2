package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Formats of attestations.
const (
	// DSSEMediaType is the media type of an attestation layer.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto statement version written.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateTypeAnnotation is the layer annotation cosign writes with
	// the statement's predicate type.
	PredicateTypeAnnotation = "predicateType"
)

// Well-known predicate types, with cosign's --type names.
const (
	// SLSAProvenanceV1 is `--type slsaprovenance1`.
	SLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	// CycloneDX is `--type cyclonedx`.
	CycloneDX = "https://cyclonedx.org/bom"
)

// Statement is an in-toto statement.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is an in-toto statement's subject.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// NewStatement returns the in-toto statement saying predicate (JSON) of the
// image ref.
func NewStatement(ref name.Digest, predicateType string, predicate []byte) ([]byte, error) {
	alg, hexd, ok := splitDigest(ref.DigestStr())
	if !ok {
		return nil, fmt.Errorf("statement: digest %q", ref.DigestStr())
	}
	if !json.Valid(predicate) {
		return nil, fmt.Errorf("statement: predicate of type %s is not JSON", predicateType)
	}
	return json.Marshal(Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: ref.Context().Name(), Digest: map[string]string{alg: hexd}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
}

// Attested says what Attest wrote.
type Attested struct {
	// Tag is the attestation attachment, REPO:sha256-<hex>.att.
	Tag           string `json:"tag"`
	PredicateType string `json:"predicate_type"`
	// Attestations is how many the attachment holds now.
	Attestations int `json:"attestations"`
	// Envelope is the DSSE envelope written (JSON).
	Envelope []byte `json:"-"`
}

// Attest signs statement (an in-toto statement about ref) as a DSSE
// envelope and adds it to the image's attestation attachment. An earlier
// attestation of the same predicate type by the same key is replaced, as
// `cosign attest --replace` does; others are kept.
func Attest(ctx context.Context, ref name.Digest, s *Signer, statement []byte, opts ...remote.Option) (*Attested, error) {
	var st Statement
	if err := json.Unmarshal(statement, &st); err != nil {
		return nil, fmt.Errorf("attest %s: statement: %w", ref, err)
	}
	if st.PredicateType == "" {
		return nil, fmt.Errorf("attest %s: statement has no predicateType", ref)
	}
	if !coversDigest(st.Subject, ref.DigestStr()) {
		return nil, fmt.Errorf("attest %s: the statement's subjects do not include %s", ref, ref.DigestStr())
	}
	env, err := dsse.WrapSigner(s.sv, InTotoPayloadType).SignMessage(bytes.NewReader(statement), signOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("attest %s with %s: %w", ref, s.Ref, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	tag := AttachmentTag(ref, AttestationSuffix)
	layers, err := readAttachment(tag, opts)
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	kept := layers[:0]
	for _, l := range layers {
		if l.annotations[PredicateTypeAnnotation] == st.PredicateType && l.annotations[KeyIDAnnotation] == s.ID {
			continue
		}
		kept = append(kept, l)
	}
	kept = append(kept, entry{data: env, mediaType: DSSEMediaType, annotations: map[string]string{
		// cosign requires the annotation on every layer; an attestation's
		// signature is inside its envelope, so it is empty.
		SignatureAnnotation:     "",
		PredicateTypeAnnotation: st.PredicateType,
		KeyIDAnnotation:         s.ID,
	}})
	if _, err := writeAttachment(tag, kept, opts); err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	return &Attested{Tag: tag.String(), PredicateType: st.PredicateType, Attestations: len(kept), Envelope: env}, nil
}

func coversDigest(subjects []Subject, digest string) bool {
	alg, hexd, ok := splitDigest(digest)
	if !ok {
		return false
	}
	for _, s := range subjects {
		if s.Digest[alg] == hexd {
			return true
		}
	}
	return false
}

func splitDigest(d string) (alg, hex string, ok bool) {
	alg, hex, ok = strings.Cut(d, ":")
	return alg, hex, ok && alg != "" && hex != ""
}
