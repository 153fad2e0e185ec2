package gotest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
)

// TestRunMissingDir: a missing module directory is named as such, not
// reported as a missing go binary.
func TestRunMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	_, err := Run(context.Background(), Options{Dir: dir})
	var de *proc.DirError
	if !errors.As(err, &de) || de.Dir != dir {
		t.Fatalf("Run: got %v, want a *proc.DirError for %s", err, dir)
	}
}
