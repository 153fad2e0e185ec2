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
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
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

// addImage walks the image's layers top-down as one filesystem: a file is
// read from the highest layer holding it; whiteouts (.wh.NAME) and opaque
// directories (.wh..wh..opq) hide what lower layers hold.
func addImage(ctx context.Context, inv *Inventory, img v1.Image, plat string) error {
	if plat == "" {
		if cf, err := img.ConfigFile(); err == nil {
			plat = platformString(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant})
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("read image layers: %w", err)
	}
	fsys := &squashed{seen: map[string]bool{}, hidden: map[string]bool{}}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := fsys.walkLayer(ctx, inv, layers[i], plat); err != nil {
			return err
		}
	}
	return nil
}

// squashed tracks what upper layers decided about paths.
type squashed struct {
	// seen: paths already provided by an upper layer.
	seen map[string]bool
	// hidden: paths (files or whole directories) deleted by an upper
	// layer's whiteout or opaque marker.
	hidden map[string]bool
}

// visible reports whether p of a lower layer is still part of the image.
func (s *squashed) visible(p string) bool {
	if s.seen[p] {
		return false
	}
	for q := p; q != "/"; q = path.Dir(q) {
		if s.hidden[q] {
			return false
		}
	}
	return true
}

func (s *squashed) walkLayer(ctx context.Context, inv *Inventory, l v1.Layer, plat string) error {
	rc, err := uncompressed(l)
	if err != nil {
		return fmt.Errorf("read image layer: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var hide, opaque []string // applied to lower layers only
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read image layer: %w", err)
		}
		p := path.Clean("/" + h.Name)
		dir, base := path.Split(p)
		if base == ".wh..wh..opq" {
			opaque = append(opaque, path.Clean(dir))
			continue
		}
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			hide = append(hide, path.Join(dir, name))
			continue
		}
		if !s.visible(p) {
			continue
		}
		s.seen[p] = true
		if h.Typeflag != tar.TypeReg || h.Size < 4 {
			continue
		}
		if err := readFile(inv, tr, h, p, plat); err != nil {
			return err
		}
	}
	for _, p := range hide {
		s.hidden[p] = true
	}
	for _, d := range opaque {
		// Everything below d in lower layers is gone; d itself stays.
		s.seen[d] = true
		s.hidden[d] = true
	}
	return nil
}

// uncompressed opens a layer's tar stream, decompressing gzip with
// klauspost/compress (faster than compress/gzip).
func uncompressed(l v1.Layer) (io.ReadCloser, error) {
	mt, err := l.MediaType()
	if err != nil || (mt != types.DockerLayer && mt != types.OCILayer) {
		return l.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := kgzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &layerReader{zr: zr, rc: rc}, nil
}

type layerReader struct {
	zr *kgzip.Reader
	rc io.ReadCloser
}

func (r *layerReader) Read(b []byte) (int, error) { return r.zr.Read(b) }

func (r *layerReader) Close() error {
	zerr := r.zr.Close()
	if err := r.rc.Close(); err != nil {
		return err
	}
	return zerr
}

// readFile inspects one visible regular file: a package database or an
// executable that may be a Go binary.
func readFile(inv *Inventory, r io.Reader, h *tar.Header, p, plat string) error {
	switch {
	case p == "/var/lib/dpkg/status" || strings.HasPrefix(p, "/var/lib/dpkg/status.d/") && !strings.HasSuffix(p, ".md5sums"):
		data, err := io.ReadAll(io.LimitReader(r, maxBinary))
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		pkgs, err := ParseDpkgStatus(data, p)
		if err != nil {
			return err
		}
		addPackages(inv, pkgs, plat)
	case p == "/lib/apk/db/installed":
		data, err := io.ReadAll(io.LimitReader(r, maxBinary))
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		pkgs, err := ParseApkInstalled(data, p)
		if err != nil {
			return err
		}
		addPackages(inv, pkgs, plat)
	case h.Mode&0o111 != 0 && h.Size <= maxBinary:
		var magic [4]byte
		if _, err := io.ReadFull(r, magic[:]); err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if string(magic[:]) != "\x7fELF" {
			return nil
		}
		buf := make([]byte, h.Size)
		copy(buf, magic[:])
		if _, err := io.ReadFull(r, buf[4:]); err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		b, err := ReadBinary(bytes.NewReader(buf), p)
		if err != nil {
			return nil // an ELF file that is not a Go binary
		}
		b.Platform = plat
		inv.Binaries = append(inv.Binaries, *b)
	}
	return nil
}

func addPackages(inv *Inventory, pkgs []Package, plat string) {
	for _, p := range pkgs {
		p.Platform = plat
		inv.Packages = append(inv.Packages, p)
	}
}
