// Package artifact stores the files steps produce as content-addressed
// blobs: a blob's name is the SHA-256 of its content ("sha256:<hex>"), so
// the same coverage report or SBOM stored by a hundred runs takes the
// space of one, and a recorded digest always names exactly the bytes that
// were produced.
//
// Layout: dir/sha256/<first two hex digits>/<64 hex digits>. Blobs are
// written to dir/tmp and renamed into place, so a blob is either complete
// or absent, even if gantry is killed mid-write.
//
// The package also resolves the artifact paths users declare (SafeJoin,
// Collect) so that no declared path reads outside the workspace.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNotFound is returned (wrapped) when a blob is not in the store.
var ErrNotFound = errors.New("artifact not found")

// ErrBadDigest is returned (wrapped) for a digest that is not
// "sha256:" followed by 64 lower-case hex digits.
var ErrBadDigest = errors.New("bad artifact digest")

// Store is a directory of content-addressed blobs. It is safe for
// concurrent use, also by several processes.
type Store struct {
	dir string
}

// New opens (creating if needed) the blob store in dir.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", dir, err)
	}
	for _, d := range []string{"sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("open artifact store: %w", err)
		}
	}
	return &Store{dir: abs}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Put stores the content of r and returns its digest and size. Content
// already present is not stored twice.
func (s *Store) Put(ctx context.Context, r io.Reader) (digest string, size int64, err error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-*")
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("store artifact: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("store artifact: close %s: %w", tmp.Name(), err)
	}
	hexsum := hex.EncodeToString(h.Sum(nil))
	digest = "sha256:" + hexsum
	final := s.blobPath(hexsum)
	if _, err := os.Stat(final); err == nil {
		return digest, size, nil // deduplicated; the deferred func removes tmp
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", 0, fmt.Errorf("store artifact %s: %w", digest, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, fmt.Errorf("store artifact %s: %w", digest, err)
	}
	tmp = nil
	return digest, size, nil
}

// PutFile stores the content of the file at path.
func (s *Store) PutFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("store artifact %s: not a regular file", path)
	}
	d, n, err := s.Put(ctx, f)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return d, n, nil
}

// Open opens the blob with the digest. It returns an error wrapping
// ErrBadDigest for a malformed digest and ErrNotFound for a missing blob.
func (s *Store) Open(digest string) (io.ReadCloser, error) {
	p, err := s.Path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open artifact %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", digest, err)
	}
	return f, nil
}

// Path returns the file holding the blob, which callers must not modify.
// It returns an error wrapping ErrBadDigest for a malformed digest and
// ErrNotFound for a missing blob.
func (s *Store) Path(digest string) (string, error) {
	hexsum, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	p := s.blobPath(hexsum)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("artifact %s: %w", digest, ErrNotFound)
	} else if err != nil {
		return "", fmt.Errorf("artifact %s: %w", digest, err)
	}
	return p, nil
}

// ParseDigest checks that digest is "sha256:" and 64 lower-case hex
// digits and returns the hex part.
func ParseDigest(digest string) (string, error) {
	const prefix = "sha256:"
	if len(digest) != len(prefix)+sha256.Size*2 || digest[:len(prefix)] != prefix {
		return "", fmt.Errorf("%w %q: want sha256: and 64 lower-case hex digits", ErrBadDigest, digest)
	}
	hexsum := digest[len(prefix):]
	for i := 0; i < len(hexsum); i++ {
		c := hexsum[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("%w %q: want sha256: and 64 lower-case hex digits", ErrBadDigest, digest)
		}
	}
	return hexsum, nil
}

func (s *Store) blobPath(hexsum string) string {
	return filepath.Join(s.dir, "sha256", hexsum[:2], hexsum)
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
