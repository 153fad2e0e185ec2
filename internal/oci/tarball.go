package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file, directory or symlink of a layer.
type entry struct {
	name     string // absolute path inside the image, e.g. /etc/passwd
	mode     int64
	uid, gid int
	data     []byte // regular files
	file     string // regular files read from disk when data is nil
	dir      bool
	link     string
}

// layerBuilder writes a reproducible layer: entries sorted by path, parent
// directories added, one fixed modification time, numeric owners only.
type layerBuilder struct {
	mtime   time.Time
	entries map[string]entry
}

func newLayer(mtime time.Time) *layerBuilder {
	return &layerBuilder{mtime: mtime.UTC(), entries: map[string]entry{}}
}

func (l *layerBuilder) add(e entry) {
	e.name = path.Clean("/" + e.name)
	for d := path.Dir(e.name); d != "/"; d = path.Dir(d) {
		if _, ok := l.entries[d]; !ok {
			l.entries[d] = entry{name: d, dir: true, mode: 0o755}
		}
	}
	l.entries[e.name] = e
}

// addTree adds the regular files under src (skipping the directories named
// in skip) at dst, with mode 0644 and root ownership.
func (l *layerBuilder) addTree(src, dst string, skip ...string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			for _, s := range skip {
				if rel == s {
					return filepath.SkipDir
				}
			}
			return nil
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		if d.Type()&fs.ModeSymlink != 0 {
			to, err := os.Readlink(p)
			if err != nil {
				return err
			}
			l.add(entry{name: target, link: to, mode: 0o777})
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		l.add(entry{name: target, file: p, mode: 0o644})
		return nil
	})
}

// tar returns the uncompressed tar stream.
func (l *layerBuilder) tar() ([]byte, error) {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := l.entries[n]
		h := &tar.Header{
			Name: strings.TrimPrefix(n, "/"), Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: l.mtime, Format: tar.FormatPAX,
		}
		var data []byte
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case e.link != "":
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.link
		default:
			h.Typeflag = tar.TypeReg
			data = e.data
			if data == nil {
				b, err := os.ReadFile(e.file)
				if err != nil {
					return nil, fmt.Errorf("layer file %s: %w", n, err)
				}
				data = b
			}
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layer returns the gzip-compressed OCI layer. Compression is
// deterministic: stdlib gzip at a fixed level with no name or time.
func (l *layerBuilder) layer() (v1.Layer, error) {
	raw, err := l.tar()
	if err != nil {
		return nil, err
	}
	return compressedLayer(raw)
}

func compressedLayer(raw []byte) (v1.Layer, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
