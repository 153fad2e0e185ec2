package scaffold

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFilesMatchExample keeps `gantry init`'s files equal to the ones the
// example repository runs with.
func TestFilesMatchExample(t *testing.T) {
	for _, f := range Files() {
		t.Run(f.Path, func(t *testing.T) {
			got, err := f.Content()
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("../../examples/payment-service", f.Path))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from examples/payment-service/%s; copy it over", f.embedded, f.Path)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	written, err := Write(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(written), len(Files()); got != want {
		t.Errorf("written: got %d, want %d", got, want)
	}
	if _, err := Write(dir, false); !errors.Is(err, ErrExists) {
		t.Errorf("second Write: got %v, want ErrExists", err)
	}
	if _, err := Write(dir, true); err != nil {
		t.Errorf("Write with force: %v", err)
	}
}
