// Package inventory lists what an image, a Go binary or a source tree is
// made of: the Go modules and toolchain version of every Go binary (from its
// build info) and the OS packages recorded in dpkg or apk databases. The
// vulnerability scanner and the SBOM generator both read an Inventory.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Module is one Go module linked into a binary or required by a go.mod.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Sum is the go.sum hash ("h1:..."), when known.
	Sum string `json:"sum,omitempty"`
	// Replace is the module that replaced this one, if any.
	Replace *Module `json:"replace,omitempty"`
}

// Effective returns the module whose code was actually used: the
// replacement when there is one.
func (m Module) Effective() Module {
	if m.Replace != nil && m.Replace.Version != "" {
		return *m.Replace
	}
	return m
}

// Binary is one Go program: a binary in an image or a go.mod source tree.
type Binary struct {
	// Path is the file inside the image ("/app/server"), the binary file
	// or the go.mod of a source tree.
	Path string `json:"path"`
	// Platform is os/arch[/variant] of the image holding the binary.
	Platform string `json:"platform,omitempty"`
	// GoVersion is the toolchain that built it ("go1.26.8"); for a source
	// tree, the go.mod toolchain line ("" without one).
	GoVersion string   `json:"go_version"`
	Main      Module   `json:"main"`
	Deps      []Module `json:"deps"`
	// Settings are the build settings (GOOS, vcs.revision, ...).
	Settings map[string]string `json:"settings,omitempty"`
}

// Package is an operating-system package from a package database.
type Package struct {
	// Type is the purl type: "deb" or "apk".
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
	// Source is the source package name, when it differs.
	Source string `json:"source,omitempty"`
	// License as recorded by the database (apk), if any.
	License string `json:"license,omitempty"`
	// DB is the database file the package was listed in.
	DB       string `json:"db"`
	Platform string `json:"platform,omitempty"`
}

// Inventory is everything found in one target.
type Inventory struct {
	// Target is what was read, as the user named it.
	Target string `json:"target"`
	// Kind is "image", "binary" or "source".
	Kind string `json:"kind"`
	// Name is the image repository or layout path without the digest.
	Name string `json:"name,omitempty"`
	// Digest is the image (index or manifest) digest, for images.
	Digest   string    `json:"digest,omitempty"`
	Binaries []Binary  `json:"binaries"`
	Packages []Package `json:"packages"`
}

// Options tune Load.
type Options struct {
	// Platform selects the image of an index: "os/arch[/variant]" or "all"
	// (default "linux/amd64").
	Platform string
	// Insecure allows plain HTTP to registries (the embedded registry).
	Insecure bool
}

// ErrNoTarget is returned when a target names nothing that exists.
var ErrNoTarget = errors.New("no such target")

// Load reads target, which is one of:
//   - LAYOUT@sha256:... : an image or index in an OCI image layout directory
//     (what image-build outputs as `image`);
//   - a directory holding go.mod: a Go source tree;
//   - a file: a Go binary;
//   - otherwise a registry reference (repo@digest or repo:tag).
func Load(ctx context.Context, target string, o Options) (*Inventory, error) {
	if dir, dig, ok := strings.Cut(target, "@"); ok && isLayout(dir) {
		return FromLayout(ctx, dir, dig, o)
	}
	if fi, err := os.Stat(target); err == nil {
		if fi.IsDir() {
			if isLayout(target) {
				return nil, fmt.Errorf("read %s: an OCI layout needs a digest (%s@sha256:<hex>)", target, target)
			}
			return FromSource(filepath.Join(target, "go.mod"))
		}
		if filepath.Base(target) == "go.mod" {
			return FromSource(target)
		}
		return FromBinaryFile(target)
	}
	if strings.ContainsAny(target, ":@") || strings.Contains(target, "/") {
		return FromRegistry(ctx, target, o)
	}
	return nil, fmt.Errorf("read %s: %w", target, ErrNoTarget)
}

func isLayout(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "index.json"))
	return err == nil
}
