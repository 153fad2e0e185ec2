package signing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Suffixes of cosign's attachment tags.
const (
	SignatureSuffix   = "sig"
	AttestationSuffix = "att"
	SBOMSuffix        = "sbom"
)

// AttachmentTag is cosign's tag for an attachment of the image d:
// REPO:sha256-<hex>.<suffix>.
func AttachmentTag(d name.Digest, suffix string) name.Tag {
	alg, hexd, _ := strings.Cut(d.DigestStr(), ":")
	return d.Context().Tag(alg + "-" + hexd + "." + suffix)
}

// entry is one layer of an attachment image.
type entry struct {
	data        []byte
	mediaType   types.MediaType
	annotations map[string]string
	digest      v1.Hash
}

// readAttachment returns the layers of the attachment image tag, or nil
// when it does not exist.
func readAttachment(tag name.Tag, opts []remote.Option) ([]entry, error) {
	img, err := remote.Image(tag, opts...)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	out := make([]entry, 0, len(m.Layers))
	for _, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("read %s layer %s: %w", tag, d.Digest, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, fmt.Errorf("read %s layer %s: %w", tag, d.Digest, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxLayer+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s layer %s: %w", tag, d.Digest, err)
		}
		if len(data) > maxLayer {
			return nil, fmt.Errorf("read %s layer %s: larger than %d bytes", tag, d.Digest, maxLayer)
		}
		out = append(out, entry{data: data, mediaType: d.MediaType, annotations: d.Annotations, digest: d.Digest})
	}
	return out, nil
}

// maxLayer bounds one signature or attestation layer read into memory.
const maxLayer = 64 << 20

// writeAttachment pushes layers as the attachment image tag, in cosign's
// layout: an OCI manifest with an empty config and one layer per entry.
func writeAttachment(tag name.Tag, layers []entry, opts []remote.Option) (v1.Hash, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, e := range layers {
		adds[i] = mutate.Addendum{Layer: static.NewLayer(e.data, e.mediaType), Annotations: e.annotations}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("build %s: %w", tag, err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", tag, err)
	}
	return img.Digest()
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// ReadAttachment returns the first layer of the attachment of d with the
// given suffix (SBOMSuffix: the SBOM `cosign attach sbom` and gantry's sbom
// step push), or nil when there is none.
func ReadAttachment(ctx context.Context, d name.Digest, suffix string, opts ...remote.Option) ([]byte, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	layers, err := readAttachment(AttachmentTag(d, suffix), opts)
	if err != nil || len(layers) == 0 {
		return nil, err
	}
	return layers[0].data, nil
}
