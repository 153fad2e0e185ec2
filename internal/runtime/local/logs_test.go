package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuilder is a strings.Builder safe for a writer and a reader.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogWriterLinesAndRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := openLog(LogPath(dir), 100)
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	// Writes split lines anywhere; each line gets one timestamp.
	for _, chunk := range []string{"first li", "ne\nsecond line\nthird", " line\n", "fourth line\nfifth line\n", "partial"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	const ts = "2026-01-02T03:04:05.000000Z "
	// 39 or 40 bytes a line: two rotations, and one rotated file is kept,
	// so the first two lines are gone.
	want := ts + "third line\n" + ts + "fourth line\n" + ts + "fifth line\n" + ts + "partial\n"
	var got strings.Builder
	if err := ReadLog(context.Background(), dir, false, &got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", got.String(), want)
	}
	for _, f := range []string{"log", "log.1"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if fi.Size() > 100 {
			t.Errorf("%s is %d bytes, cap 100", f, fi.Size())
		}
	}
}

func TestReadLogFollow(t *testing.T) {
	dir := t.TempDir()
	w, err := openLog(LogPath(dir), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Printf("before")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuilder
	done := make(chan error, 1)
	go func() { done <- ReadLog(ctx, dir, true, &out) }()
	eventually(t, "the existing line", func() bool { return strings.Contains(out.String(), "gantry: before") })
	// The second line passes the 100-byte cap: the follower crosses a
	// rotation.
	for _, l := range []string{"after one", "after two", "after three"} {
		w.Printf("%s", l)
	}
	eventually(t, "lines written after a rotation", func() bool {
		s := out.String()
		return strings.Contains(s, "after one") && strings.Contains(s, "after two") && strings.Contains(s, "after three")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReadLogMissing(t *testing.T) {
	err := ReadLog(context.Background(), t.TempDir(), false, &strings.Builder{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want fs.ErrNotExist", err)
	}
}
