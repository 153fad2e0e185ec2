package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/registry"
)

var validChain = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// ErrNotDigest is returned when a workload's image is not pinned by digest.
var ErrNotDigest = errors.New("image reference is not pinned by digest")

// image is an unpacked image: its root filesystem and its config.
type image struct {
	// Dir is DIR/images/sha256-HEX; RootFS is the root filesystem of its
	// layer chain, DIR/layers/sha256-CHAIN/rootfs (Dir/rootfs for an image
	// without layers).
	Dir    string
	RootFS string
	Config v1.Config
}

// imageDir is where the image of digest d (sha256:HEX) is unpacked.
func (r *Runtime) imageDir(d string) string {
	return filepath.Join(r.dir, "images", strings.Replace(d, ":", "-", 1))
}

// image returns the unpacked image of ref, pulling and unpacking it on first
// use. ref must name a digest; the cache is keyed by it, so an image that is
// already unpacked needs no registry.
func (r *Runtime) image(ctx context.Context, ref string) (*image, error) {
	opts := []name.Option{name.StrictValidation}
	if registry.IsLoopback(ref) {
		opts = append(opts, name.Insecure)
	}
	d, err := name.NewDigest(ref, opts...)
	if err != nil {
		if _, terr := name.ParseReference(ref); terr == nil {
			return nil, fmt.Errorf("image %q: %w", ref, ErrNotDigest)
		}
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	mu := r.imageLock(d.DigestStr())
	mu.Lock()
	defer mu.Unlock()

	dir := r.imageDir(d.DigestStr())
	if img, err := r.readImage(dir); err == nil {
		return img, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image %s: read the unpacked copy: %w", ref, err)
	}

	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: goruntime.GOARCH})}
	if r.transport != nil {
		ropts = append(ropts, remote.WithTransport(r.transport))
	}
	// remote.Image resolves an index to the image of the platform.
	img, err := remote.Image(d, ropts...)
	if err != nil {
		return nil, fmt.Errorf("pull %s for linux/%s: %w", ref, goruntime.GOARCH, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("pull %s: read the image config: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up a failure
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if len(cf.RootFS.DiffIDs) == 0 {
		// No layer: an empty root of its own.
		if err := os.Mkdir(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
	} else {
		chain, err := r.unpackLayers(ctx, img, cf.RootFS.DiffIDs)
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %w", ref, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, layersFile), []byte(chain+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("image %s: write its layer chain: %w", ref, err)
		}
	}
	b, err := json.Marshal(cf.Config)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("image %s: write its config: %w", ref, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process unpacked the same digest meanwhile: use its copy.
		if img, rerr := r.readImage(dir); rerr == nil {
			return img, nil
		}
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	r.log.Info("image unpacked", "image", ref, "dir", dir)
	return r.readImage(dir)
}

// layersFile, in an image's directory, names the chain under layersDir
// that is its root filesystem. An image without it (no layers, or
// unpacked by an older gantry) has its root in its own directory.
const layersFile = "layers"

func (r *Runtime) readImage(dir string) (*image, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	img := &image{Dir: dir, RootFS: filepath.Join(dir, "rootfs")}
	if chain, err := os.ReadFile(filepath.Join(dir, layersFile)); err == nil {
		name := strings.TrimSpace(string(chain))
		if !validChain.MatchString(name) {
			return nil, fmt.Errorf("%s: %q is not a layer chain", filepath.Join(dir, layersFile), name)
		}
		img.RootFS = filepath.Join(r.layersDir(), name, "rootfs")
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := json.Unmarshal(b, &img.Config); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	return img, nil
}
