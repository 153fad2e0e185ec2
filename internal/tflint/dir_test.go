package tflint_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/tflint"
)

// TestRunMissingDir: a missing directory is reported as such, not as a
// missing tflint binary (fork/exec .../tflint: no such file or directory).
func TestRunMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "deploy", "terraform")
	_, err := tflint.Run(context.Background(), "/bin/true", dir, tflint.Options{})
	var de *proc.DirError
	if !errors.As(err, &de) || de.Dir != dir {
		t.Fatalf("Run: got %v, want a *proc.DirError for %s", err, dir)
	}
	if want := "working directory " + dir + " does not exist"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
}
