package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPutDedupOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("coverage: 83.5%\n")
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])

	d1, n1, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if d1 != want || n1 != int64(len(data)) {
		t.Errorf("Put = %s, %d; want %s, %d", d1, n1, want, len(data))
	}
	f := filepath.Join(t.TempDir(), "cov.txt")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d2, n2, err := s.PutFile(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if d2 != d1 || n2 != n1 {
		t.Errorf("PutFile of the same content = %s, %d; want %s, %d", d2, n2, d1, n1)
	}

	p, err := s.Path(d1)
	if err != nil {
		t.Fatal(err)
	}
	if wantP := filepath.Join(dir, "sha256", want[7:9], want[7:]); p != wantP {
		t.Errorf("Path = %s, want %s", p, wantP)
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, "sha256", "*", "*"))
	if len(blobs) != 1 {
		t.Errorf("blobs on disk = %v, want exactly one (deduplicated)", blobs)
	}
	tmps, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(tmps) != 0 {
		t.Errorf("temp files left: %d, want 0", len(tmps))
	}

	rc, err := s.Open(d1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Open content = %q, %v; want %q", got, err, data)
	}

	empty, n, err := s.Put(ctx, strings.NewReader(""))
	if err != nil || n != 0 || empty != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Put(empty) = %s, %d, %v; want the SHA-256 of nothing", empty, n, err)
	}
}

func TestPutCancelled(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled ctx: error %v, want context.Canceled", err)
	}
	tmps, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if len(tmps) != 0 {
		t.Errorf("temp files left after a failed Put: %d, want 0", len(tmps))
	}
}

func TestPutFileNotRegular(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutFile(context.Background(), t.TempDir()); err == nil {
		t.Errorf("PutFile(directory) succeeded, want an error")
	}
}

func TestOpenRejectsBadDigests(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		digest string
		want   error
	}{
		{"sha256:../../etc", ErrBadDigest},
		{"sha256:../../../../../../etc/passwd" + strings.Repeat("a", 30), ErrBadDigest},
		{"sha256:" + strings.Repeat("a", 63), ErrBadDigest},
		{"sha256:" + strings.Repeat("a", 65), ErrBadDigest},
		{"sha256:" + strings.Repeat("A", 64), ErrBadDigest},
		{"sha256:" + strings.Repeat("g", 64), ErrBadDigest},
		{"sha512:" + strings.Repeat("a", 64), ErrBadDigest},
		{strings.Repeat("a", 64), ErrBadDigest},
		{"sha256:" + strings.Repeat("a", 62) + "/a", ErrBadDigest},
		{"", ErrBadDigest},
		{good, ErrNotFound},
	}
	for _, tt := range tests {
		rc, err := s.Open(tt.digest)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("Open(%q) error = %v, want %v", tt.digest, err, tt.want)
		}
		if _, err := s.Path(tt.digest); !errors.Is(err, tt.want) {
			t.Errorf("Path(%q) error = %v, want %v", tt.digest, err, tt.want)
		}
	}
}
