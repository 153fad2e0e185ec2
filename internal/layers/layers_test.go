// Package layers holds a test that keeps gantry's layering honest, the way
// go-containerregistry's depcheck test does: it fails when a package grows
// an import it must not have.
package layers

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/gantry-ci/gantry"

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestLayers(t *testing.T) {
	rules := []struct {
		name    string
		applies func(p string) bool
		banned  func(imp string) bool
	}{
		{
			name:    "only the CLI uses cobra",
			applies: func(p string) bool { return !under(p, "internal/cli") && !under(p, "cmd") },
			banned:  func(imp string) bool { return strings.HasPrefix(imp, "github.com/spf13/") },
		},
		{
			name: "only the CLI and the engine's caller know the built-in kinds",
			applies: func(p string) bool {
				return !under(p, "internal/cli") && !under(p, "cmd") && !under(p, "internal/steps/builtin")
			},
			banned: func(imp string) bool { return imp == module+"/internal/steps/builtin" },
		},
		{
			name:    "the engine names no step kind",
			applies: func(p string) bool { return under(p, "internal/engine") },
			banned: func(imp string) bool {
				return strings.HasPrefix(imp, module+"/internal/steps/")
			},
		},
		{
			name:    "step kinds and libraries do not reach up into the engine, the CLI or the store",
			applies: func(p string) bool { return under(p, "internal/steps") || under(p, "internal/step") },
			banned: func(imp string) bool {
				return imp == module+"/internal/engine" || imp == module+"/internal/cli" || imp == module+"/internal/store"
			},
		},
		{
			name: "the store and spec stay below the engine",
			applies: func(p string) bool {
				return under(p, "internal/store") || under(p, "internal/spec") || under(p, "internal/artifact")
			},
			banned: func(imp string) bool { return imp == module+"/internal/engine" || imp == module+"/internal/cli" },
		},
	}
	for _, p := range listPackages(t) {
		for _, r := range rules {
			if !r.applies(p.ImportPath) {
				continue
			}
			for _, imp := range p.Imports {
				if r.banned(imp) {
					t.Errorf("%s: %s imports %s", r.name, p.ImportPath, imp)
				}
			}
		}
	}
}

func under(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}
