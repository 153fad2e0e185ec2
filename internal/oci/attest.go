package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Empty config of OCI 1.1 artifacts.
const emptyMediaType = "application/vnd.oci.empty.v1+json"

var emptyJSON = []byte("{}")

// Artifact is an OCI 1.1 artifact manifest: one layer, the empty config,
// and a subject it refers to (found through the referrers API).
type Artifact struct {
	manifest []byte
	layer    []byte
	layerMT  types.MediaType
}

type artifactManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// NewArtifact returns an artifact of artifactType holding data (of
// mediaType) that refers to subject.
func NewArtifact(subject v1.Descriptor, artifactType string, mediaType types.MediaType, data []byte, annotations map[string]string) (*Artifact, error) {
	ld, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	cd, _, _ := v1.SHA256(bytes.NewReader(emptyJSON))
	m := artifactManifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config:      v1.Descriptor{MediaType: emptyMediaType, Digest: cd, Size: int64(len(emptyJSON)), Data: emptyJSON},
		Layers:      []v1.Descriptor{{MediaType: mediaType, Digest: ld, Size: int64(len(data))}},
		Subject:     &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: annotations,
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &Artifact{manifest: b, layer: data, layerMT: mediaType}, nil
}

// RawManifest implements remote.Taggable.
func (a *Artifact) RawManifest() ([]byte, error) { return a.manifest, nil }

// MediaType is the manifest's media type.
func (a *Artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// Digest of the manifest.
func (a *Artifact) Digest() v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(a.manifest))
	return h
}

// Push uploads the artifact's blobs and manifest to repo, by digest.
func (a *Artifact) Push(ctx context.Context, repo name.Repository, kc authn.Keychain, opts ...remote.Option) (name.Digest, error) {
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}, opts...)
	for _, blob := range []struct {
		data []byte
		mt   types.MediaType
	}{{emptyJSON, emptyMediaType}, {a.layer, a.layerMT}} {
		if err := remote.WriteLayer(repo, static.NewLayer(blob.data, blob.mt), opts...); err != nil {
			return name.Digest{}, fmt.Errorf("push artifact blob: %w", err)
		}
	}
	ref := repo.Digest(a.Digest().String())
	if err := remote.Put(ref, a, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("push artifact manifest: %w", err)
	}
	return ref, nil
}
