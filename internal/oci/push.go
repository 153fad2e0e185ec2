package oci

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOptions configure a push.
type PushOptions struct {
	// Keychain resolves credentials: Docker config, credential helpers
	// (docker-credential-ecr-login for ECR), default authn.DefaultKeychain.
	Keychain authn.Keychain
	// Insecure allows plain HTTP (set for loopback registries).
	Insecure bool
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

func (o PushOptions) remote(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithJobs(4)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return opts
}

// Repository parses a repository name ("host/path").
func Repository(repo string, insecure bool) (name.Repository, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", repo, err)
	}
	return r, nil
}

// PushIndex pushes idx to repo under each tag (by digest only when there
// are none) and returns repo@digest.
func PushIndex(ctx context.Context, idx v1.ImageIndex, repo name.Repository, tags []string, o PushOptions) (name.Digest, error) {
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	ref := repo.Digest(d.String())
	opts := o.remote(ctx)
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	for _, t := range tags {
		tag := repo.Tag(t)
		if err := remote.Tag(tag, idx, opts...); err != nil {
			return name.Digest{}, fmt.Errorf("tag %s: %w", tag, err)
		}
	}
	return ref, nil
}

// PullIndex fetches the index at ref and checks its digest when ref names
// one.
func PullIndex(ctx context.Context, ref name.Reference, o PushOptions) (v1.ImageIndex, error) {
	idx, err := remote.Index(ref, o.remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if dref, ok := ref.(name.Digest); ok {
		got, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		if got.String() != dref.DigestStr() {
			return nil, fmt.Errorf("pull %s: got digest %s", ref, got)
		}
	}
	return idx, nil
}
