package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layers are unpacked once per chain: DIR/layers/sha256-CHAIN/rootfs is the
// root filesystem of the layers up to and including one, named by its OCI
// chain ID (the layer's diff ID for the first; sha256 of "PARENT DIFFID"
// after). An image whose layers were all unpacked for another image (the
// same build with another config) unpacks nothing; one that adds a layer
// to a known chain (a new application layer on the same base) unpacks that
// layer only, into a copy of the chain's root whose files are hard links
// (applyLayer replaces a file, never writes through it, so the copy's
// changes stay its own).

// layersDir is where the chains' root filesystems live.
func (r *Runtime) layersDir() string { return filepath.Join(r.dir, "layers") }

// chainIDs returns the chain ID of each prefix of diffIDs, as
// "sha256-HEX" directory names.
func chainIDs(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	chain := ""
	for i, d := range diffIDs {
		if i == 0 {
			chain = d.String()
		} else {
			sum := sha256.Sum256([]byte(chain + " " + d.String()))
			chain = "sha256:" + hex.EncodeToString(sum[:])
		}
		out[i] = "sha256-" + chain[len("sha256:"):]
	}
	return out
}

// unpackLayers makes the root filesystem of img's whole layer chain, from
// the longest prefix of it already unpacked, and returns its directory
// name under layersDir (the chain ID of the last layer).
func (r *Runtime) unpackLayers(ctx context.Context, img v1.Image, diffIDs []v1.Hash) (string, error) {
	layers, err := img.Layers()
	if err != nil {
		return "", fmt.Errorf("list layers: %w", err)
	}
	if len(layers) != len(diffIDs) {
		return "", fmt.Errorf("the image has %d layers but its config lists %d diff IDs", len(layers), len(diffIDs))
	}
	chains := chainIDs(diffIDs)
	if err := os.MkdirAll(r.layersDir(), 0o755); err != nil {
		return "", err
	}
	for i := range layers {
		if err := r.unpackLayer(ctx, layers, chains, i); err != nil {
			return "", err
		}
	}
	return chains[len(chains)-1], nil
}

// unpackLayer makes the root of chains[i] unless it is there: a copy of
// chains[i-1]'s root (made first) with layers[i] applied.
func (r *Runtime) unpackLayer(ctx context.Context, layers []v1.Layer, chains []string, i int) error {
	dir := filepath.Join(r.layersDir(), chains[i])
	mu := r.imageLock("chain:" + chains[i])
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "rootfs")); err == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := layers[i].Digest()
	if err != nil {
		return fmt.Errorf("layer %d: %w", i, err)
	}
	tmp, err := os.MkdirTemp(r.layersDir(), ".unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up a failure
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	rootfs := filepath.Join(tmp, "rootfs")
	if i == 0 {
		err = os.Mkdir(rootfs, 0o755)
	} else {
		err = cloneTree(ctx, filepath.Join(r.layersDir(), chains[i-1], "rootfs"), rootfs)
	}
	if err != nil {
		return fmt.Errorf("layer %d (%s): copy the layers below: %w", i, d, err)
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	rc, err := layers[i].Uncompressed()
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, d, err)
	}
	err = applyLayer(root, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, d, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process unpacked the same chain meanwhile: use its copy.
		if _, serr := os.Stat(filepath.Join(dir, "rootfs")); serr == nil {
			return nil
		}
		return fmt.Errorf("layer %d (%s): %w", i, d, err)
	}
	r.log.Debug("layer unpacked", "layer", d.String(), "chain", chains[i])
	return nil
}

// cloneTree makes dst (created) a copy of the tree src: directories are
// new, with src's mode and owner; files and symbolic links are hard links
// to src's.
func cloneTree(ctx context.Context, src, dst string) error {
	type dirMeta struct {
		path     string
		mode     fs.FileMode
		uid, gid int
	}
	var dirs []dirMeta
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if !d.IsDir() {
			return os.Link(p, target)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		// Writable while filled; its own mode once every entry is in.
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		m := dirMeta{path: target, mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), uid: -1, gid: -1}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			m.uid, m.gid = int(st.Uid), int(st.Gid)
		}
		dirs = append(dirs, m)
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range dirs {
		if os.Geteuid() == 0 && m.uid >= 0 {
			if err := os.Lchown(m.path, m.uid, m.gid); err != nil {
				return err
			}
		}
		if err := os.Chmod(m.path, m.mode); err != nil {
			return err
		}
	}
	return nil
}
