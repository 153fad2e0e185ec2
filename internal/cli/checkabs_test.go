package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckKubeconformAbsolutePaths: absolute PATHs (files and
// directories) are read where they are, not joined onto the working
// directory. The one-off step runs in the directory holding them, so the
// report names them inside it, as a pipeline step names its files, and a
// missing one is refused before anything runs.
func TestCheckKubeconformAbsolutePaths(t *testing.T) {
	good, err := filepath.Abs("../manifests/testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := filepath.Abs("../manifests/testdata/bad/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"absolute directory", []string{"check", "kubeconform", good}, 0, "kubeconform: no findings"},
		{"absolute file", []string{"check", "kubeconform", bad}, 1, `unknown field "replica"`},
		{"absolute file names itself", []string{"check", "kubeconform", bad}, 1, "manifests/testdata/bad/deployment.yaml:6:3: error"},
		{"missing absolute file", []string{"check", "kubeconform", "/nonexistent/x.yaml"}, ExitUsage, "paths.0: nonexistent/x.yaml does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("gantry %s: exit %d, output:\n%s\nwant exit %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
			}
		})
	}
}
