// Package license finds the licence of every module a Go module builds
// with, from the licence files in the module cache classified by
// google/licensecheck (SPDX id and coverage recorded), and evaluates a
// policy of CEL expressions over them. The policy, an allowlist and
// overrides for undetectable licences live in the repository in
// .gantry/licenses.yaml.
package license

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/licensecheck"

	"github.com/gantry-ci/gantry/internal/proc"
)

// Module is one dependency with its detected licence.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version,omitempty"`
	Main    bool   `json:"main,omitempty"`
	// Dir is the module's directory (module cache or replacement).
	Dir string `json:"-"`
	// Licenses are the SPDX ids found, sorted.
	Licenses []string `json:"licenses"`
	// Coverage is the percentage of the licence files' text the
	// classifier matched (100 for overrides).
	Coverage float64 `json:"coverage"`
	// Files are the licence files read, relative to Dir.
	Files []string `json:"files,omitempty"`
	// Source is "detected", "override" or "none".
	Source string `json:"source"`
}

// List returns the modules providing the packages (and test packages) of
// the module in dir, the main module first, as `go list -deps -test`
// reports them. env is the go command's environment (nil: inherit).
func List(ctx context.Context, dir string, env []string) ([]Module, error) {
	cmd := proc.Command(ctx, "go", "list", "-deps", "-test", "-f",
		"{{with .Module}}{{.Path}}\t{{.Version}}\t{{.Main}}\t{{with .Replace}}{{.Dir}}{{else}}{{.Dir}}{{end}}{{end}}", "./...")
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list modules in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	seen := map[string]bool{}
	var mods []Module
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		mods = append(mods, Module{Path: f[0], Version: f[1], Main: f[2] == "true", Dir: f[3]})
	}
	sort.Slice(mods, func(i, j int) bool {
		if mods[i].Main != mods[j].Main {
			return mods[i].Main
		}
		return mods[i].Path < mods[j].Path
	})
	return mods, nil
}

// licenceFile reports names of licence files at a module's root.
func licenceFile(name string) bool {
	n := strings.ToUpper(name)
	for _, p := range []string{"LICENSE", "LICENCE", "COPYING", "UNLICENSE"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// Detect classifies the licence files at the root of m.Dir.
func Detect(m *Module) error {
	m.Source = "none"
	if m.Dir == "" {
		return nil
	}
	ents, err := os.ReadDir(m.Dir)
	if err != nil {
		return fmt.Errorf("read licences of %s: %w", m.Path, err)
	}
	var ids []string
	total, matched := 0.0, 0.0
	for _, e := range ents {
		if !e.Type().IsRegular() || !licenceFile(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.Dir, e.Name()))
		if err != nil {
			return fmt.Errorf("read licence of %s: %w", m.Path, err)
		}
		cov := licensecheck.Scan(data)
		m.Files = append(m.Files, e.Name())
		n := float64(len(data))
		total += n
		matched += n * cov.Percent / 100
		for _, mt := range cov.Match {
			if !slices.Contains(ids, mt.ID) {
				ids = append(ids, mt.ID)
			}
		}
	}
	sort.Strings(ids)
	m.Licenses = ids
	if total > 0 {
		m.Coverage = float64(int(matched/total*1000+0.5)) / 10
		m.Source = "detected"
	}
	return nil
}
