package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxBinary bounds how much of one file is read to look for Go build info.
const maxBinary = 512 << 20

// FromLayout reads the image or index with digest dig from the OCI image
// layout at dir.
func FromLayout(ctx context.Context, dir, dig string, o Options) (*Inventory, error) {
	h, err := v1.NewHash(dig)
	if err != nil {
		return nil, fmt.Errorf("read %s@%s: bad digest: %w", dir, dig, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	raw, err := p.Bytes(h)
	if err != nil {
		return nil, fmt.Errorf("read %s from OCI layout %s: %w", dig, dir, err)
	}
	var head struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("read %s from OCI layout %s: %w", dig, dir, err)
	}
	inv := &Inventory{Target: dir + "@" + dig, Kind: "image", Name: dir, Digest: h.String()}
	if head.MediaType.IsIndex() {
		idx, err := p.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
		}
		child, err := findIndex(idx, h)
		if err != nil {
			return nil, fmt.Errorf("read %s from OCI layout %s: %w", dig, dir, err)
		}
		return inv, addIndex(ctx, inv, child, o)
	}
	img, err := p.Image(h)
	if err != nil {
		return nil, fmt.Errorf("read image %s from OCI layout %s: %w", dig, dir, err)
	}
	return inv, addImage(ctx, inv, img, "")
}

// findIndex finds the index with digest h in idx or below it.
func findIndex(idx v1.ImageIndex, h v1.Hash) (v1.ImageIndex, error) {
	if d, err := idx.Digest(); err == nil && d == h {
		return idx, nil
	}
	return idx.ImageIndex(h)
}

// FromRegistry reads ref (repo@digest or repo:tag) from its registry.
func FromRegistry(ctx context.Context, ref string, o Options) (*Inventory, error) {
	var opts []name.Option
	if o.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	desc, err := remote.Get(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	inv := &Inventory{Target: ref, Kind: "image", Name: r.Context().Name(), Digest: desc.Digest.String()}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", ref, err)
		}
		return inv, addIndex(ctx, inv, idx, o)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", ref, err)
	}
	return inv, addImage(ctx, inv, img, "")
}

func addIndex(ctx context.Context, inv *Inventory, idx v1.ImageIndex, o Options) error {
	want := o.Platform
	if want == "" {
		want = "linux/amd64"
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("read index manifest: %w", err)
	}
	found := 0
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil {
			continue // attestations and nested indexes
		}
		plat := platformString(*d.Platform)
		if want != "all" && plat != want {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("read image %s (%s): %w", d.Digest, plat, err)
		}
		if err := addImage(ctx, inv, img, plat); err != nil {
			return err
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("index has no image for platform %s", want)
	}
	return nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// addImage walks the image's squashed filesystem (whiteouts applied).
func addImage(ctx context.Context, inv *Inventory, img v1.Image, plat string) error {
	if plat == "" {
		if cf, err := img.ConfigFile(); err == nil {
			plat = platformString(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant})
		}
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	return walkTar(ctx, inv, rc, plat)
}

func walkTar(ctx context.Context, inv *Inventory, r io.Reader, plat string) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read image filesystem: %w", err)
		}
		if h.Typeflag != tar.TypeReg || h.Size < 4 {
			continue
		}
		p := "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case p == "/var/lib/dpkg/status" || strings.HasPrefix(p, "/var/lib/dpkg/status.d/") && !strings.HasSuffix(p, ".md5sums"):
			data, err := io.ReadAll(io.LimitReader(tr, maxBinary))
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			pkgs, err := ParseDpkgStatus(data, p)
			if err != nil {
				return err
			}
			addPackages(inv, pkgs, plat)
		case p == "/lib/apk/db/installed":
			data, err := io.ReadAll(io.LimitReader(tr, maxBinary))
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			pkgs, err := ParseApkInstalled(data, p)
			if err != nil {
				return err
			}
			addPackages(inv, pkgs, plat)
		case h.Size <= maxBinary:
			var magic [4]byte
			if _, err := io.ReadFull(tr, magic[:]); err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if string(magic[:]) != "\x7fELF" {
				continue
			}
			buf := bytes.NewBuffer(make([]byte, 0, h.Size))
			buf.Write(magic[:])
			if _, err := io.Copy(buf, tr); err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			b, err := ReadBinary(bytes.NewReader(buf.Bytes()), p)
			if err != nil {
				continue // an ELF file that is not a Go binary
			}
			b.Platform = plat
			inv.Binaries = append(inv.Binaries, *b)
		}
	}
}

func addPackages(inv *Inventory, pkgs []Package, plat string) {
	for _, p := range pkgs {
		p.Platform = plat
		inv.Packages = append(inv.Packages, p)
	}
}
