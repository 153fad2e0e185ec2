package sbom

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/oci"
)

// Attached says where an SBOM was attached.
type Attached struct {
	// Tag is the cosign attachment: REPO:sha256-<hex>.sbom.
	Tag string `json:"tag"`
	// Referrer is the OCI 1.1 artifact REPO@sha256:..., whose subject is
	// the image ("" if not pushed).
	Referrer string `json:"referrer,omitempty"`
}

// Attach stores data (CycloneDX JSON) next to the image ref (repo@digest):
// as cosign's attachment, a manifest tagged sha256-<hex>.sbom whose one
// layer has media type application/vnd.cyclonedx+json (what `cosign
// download sbom` reads), and, when referrer is true, as an OCI 1.1 artifact
// with artifactType application/vnd.cyclonedx+json and the image as subject.
func Attach(ctx context.Context, ref name.Digest, data []byte, referrer bool, kc authn.Keychain, opts ...remote.Option) (*Attached, error) {
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}, opts...)
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("attach SBOM: look up %s: %w", ref, err)
	}
	alg, hexd, _ := strings.Cut(ref.DigestStr(), ":")
	tag := ref.Context().Tag(alg + "-" + hexd + ".sbom")
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(data, MediaType)})
	if err != nil {
		return nil, fmt.Errorf("attach SBOM: %w", err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return nil, fmt.Errorf("attach SBOM: push %s: %w", tag, err)
	}
	out := &Attached{Tag: tag.String()}
	if referrer {
		art, err := oci.NewArtifact(*desc, MediaType, MediaType, data, nil)
		if err != nil {
			return nil, fmt.Errorf("attach SBOM: %w", err)
		}
		r, err := art.Push(ctx, ref.Context(), kc, opts...)
		if err != nil {
			return nil, fmt.Errorf("attach SBOM as referrer of %s: %w", ref, err)
		}
		out.Referrer = r.String()
	}
	return out, nil
}
