package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
)

// ImageChecker checks an image in its registry: its signature by a key
// the server trusts and the gate verdicts attested on it.
type ImageChecker interface {
	CheckImage(ctx context.Context, image string) (evidence.ImageCheck, error)
}

// ErrRegistryNotChecked is returned for an image in a registry the server
// does not read: the image references come from what runs recorded, so
// the server reaches only its embedded registry and the ones it is told to
// (serve --verify-registry), never any host a pipeline names.
var ErrRegistryNotChecked = errors.New("the server does not check images in this registry")

// Verification says which keys the server trusts and which registries it
// reads to check images (gantry serve --verify-key, --verify-registry).
type Verification struct {
	// Keys are public key files or KMS URIs. Empty: the state dir's
	// default key (STATE_DIR/keys/cosign.pub, the key runs sign with
	// unless their pipeline names another), read when a check needs it.
	Keys []string
	// Registries are hosts (host[:port]) besides the embedded registry
	// whose images the server checks.
	Registries []string
}

// registryChecker is the serve process's ImageChecker.
type registryChecker struct {
	stateDir string
	// regAddr is the embedded registry's address now ("" when none).
	regAddr string
	cfg     Verification

	mu   sync.Mutex
	keys []*signing.Verifier // loaded once, when cfg.Keys is given
}

func newRegistryChecker(stateDir, regAddr string, cfg Verification) *registryChecker {
	return &registryChecker{stateDir: stateDir, regAddr: regAddr, cfg: cfg}
}

// verifiers returns the trusted keys.
func (c *registryChecker) verifiers(ctx context.Context) ([]*signing.Verifier, error) {
	if len(c.cfg.Keys) == 0 {
		pub := filepath.Join(signing.DefaultKeyDir(c.stateDir), signing.PublicKeyFile)
		if _, err := os.Stat(pub); err != nil {
			return nil, fmt.Errorf("%w: no --verify-key given and no default key at %s yet", evidence.ErrNoKeys, pub)
		}
		v, err := signing.LoadVerifier(ctx, pub)
		if err != nil {
			return nil, err
		}
		return []*signing.Verifier{v}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		keys := make([]*signing.Verifier, 0, len(c.cfg.Keys))
		for _, k := range c.cfg.Keys {
			v, err := signing.LoadVerifier(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("--verify-key %s: %w", k, err)
			}
			keys = append(keys, v)
		}
		c.keys = keys
	}
	return c.keys, nil
}

func (c *registryChecker) CheckImage(ctx context.Context, image string) (evidence.ImageCheck, error) {
	host, rest, _ := strings.Cut(image, "/")
	var opts []name.Option
	var ropts []remote.Option
	switch {
	case c.regAddr != "" && registry.IsEmbedded(c.stateDir, nil, image):
		// The run pushed to the embedded registry on the address it had
		// then; it answers on its current one.
		image = c.regAddr + "/" + rest
		opts = append(opts, name.Insecure)
	case slices.Contains(c.cfg.Registries, host):
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if registry.IsLoopback(image) {
			opts = append(opts, name.Insecure)
		}
	default:
		return evidence.ImageCheck{}, fmt.Errorf("%w: %s (add it with gantry serve --verify-registry %s)", ErrRegistryNotChecked, host, host)
	}
	ref, err := name.NewDigest(image, opts...)
	if err != nil {
		return evidence.ImageCheck{}, fmt.Errorf("image %q: %w", image, err)
	}
	keys, err := c.verifiers(ctx)
	if err != nil {
		return evidence.ImageCheck{}, err
	}
	return evidence.CheckImage(ctx, ref, keys, ropts...)
}
