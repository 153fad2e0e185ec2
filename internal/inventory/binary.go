package inventory

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// FromBinaryFile reads the build info of the Go binary at path.
func FromBinaryFile(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read Go binary: %w", err)
	}
	defer f.Close()
	b, err := ReadBinary(f, path)
	if err != nil {
		return nil, err
	}
	return &Inventory{Target: path, Kind: "binary", Binaries: []Binary{*b}}, nil
}

// ReadBinary reads the Go build info of the executable r, named path.
// It returns an error wrapping buildinfo's when r is not a Go binary.
func ReadBinary(r io.ReaderAt, path string) (*Binary, error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil, fmt.Errorf("read Go build info of %s: %w", path, err)
	}
	return fromBuildInfo(bi, path), nil
}

func fromBuildInfo(bi *debug.BuildInfo, path string) *Binary {
	b := &Binary{Path: path, GoVersion: bi.GoVersion, Main: module(&bi.Main)}
	for _, d := range bi.Deps {
		b.Deps = append(b.Deps, module(d))
	}
	if len(bi.Settings) > 0 {
		b.Settings = map[string]string{}
		for _, s := range bi.Settings {
			b.Settings[s.Key] = s.Value
		}
	}
	return b
}

func module(m *debug.Module) Module {
	out := Module{Path: m.Path, Version: m.Version, Sum: m.Sum}
	if m.Replace != nil {
		r := module(m.Replace)
		out.Replace = &r
	}
	return out
}
