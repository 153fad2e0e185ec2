package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// FromSource reads a Go source tree from its go.mod and go.sum. Every
// required module (direct and indirect) is a dependency; sums come from
// go.sum. The Go version is the toolchain line, if any.
func FromSource(gomod string) (*Inventory, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return nil, fmt.Errorf("read go.mod: %w", err)
	}
	mf, err := modfile.Parse(gomod, data, nil)
	if err != nil {
		return nil, fmt.Errorf("parse go.mod: %w", err)
	}
	sums, err := readGoSum(filepath.Join(filepath.Dir(gomod), "go.sum"))
	if err != nil {
		return nil, err
	}
	b := Binary{Path: gomod}
	if mf.Module != nil {
		b.Main = Module{Path: mf.Module.Mod.Path, Version: "(devel)"}
	}
	// The go line is a minimum, not the toolchain that will build the
	// code, so only a toolchain line names the standard library version.
	if mf.Toolchain != nil {
		b.GoVersion = mf.Toolchain.Name
	}
	replaces := map[string]*modfile.Replace{}
	for _, r := range mf.Replace {
		replaces[r.Old.Path+"@"+r.Old.Version] = r
	}
	for _, r := range mf.Require {
		m := Module{Path: r.Mod.Path, Version: r.Mod.Version, Sum: sums[r.Mod.Path+"@"+r.Mod.Version]}
		rep := replaces[r.Mod.Path+"@"+r.Mod.Version]
		if rep == nil {
			rep = replaces[r.Mod.Path+"@"]
		}
		if rep != nil {
			m.Replace = &Module{Path: rep.New.Path, Version: rep.New.Version, Sum: sums[rep.New.Path+"@"+rep.New.Version]}
		}
		b.Deps = append(b.Deps, m)
	}
	return &Inventory{Target: gomod, Kind: "source", Binaries: []Binary{b}}, nil
}

// readGoSum maps "path@version" to its h1: hash (the module content, not
// the /go.mod line). A missing go.sum is no error.
func readGoSum(path string) (map[string]string, error) {
	sums := map[string]string{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return sums, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read go.sum: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: malformed go.sum line", path, n)
		}
		if strings.HasSuffix(f[1], "/go.mod") {
			continue
		}
		sums[f[0]+"@"+f[1]] = f[2]
	}
	return sums, sc.Err()
}
