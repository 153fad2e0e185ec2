// Package oci builds OCI images of Go programs without a daemon
// (go-containerregistry), assembles the distroless-style base image
// locally, and stores results in an OCI image layout.
package oci

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/proc"
)

// DefaultPlatforms are built when Options.Platforms is empty.
var DefaultPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// Options configures a build.
type Options struct {
	// Dir is the Go module directory.
	Dir string
	// Package is the main package, relative to Dir (default ".").
	Package string
	// Name is the binary's name (default: the package directory's name,
	// or the last element of the module path for ".").
	Name      string
	Platforms []v1.Platform
	// Base is a base image reference pulled from a registry; "" uses the
	// locally assembled distroless-style base.
	Base        string
	BaseSources BaseSources
	Keychain    authn.Keychain
	// SourceDateEpoch is the time of every file and of the image config
	// (the commit time, in Unix seconds).
	SourceDateEpoch int64
	// Labels go into the image config (org.opencontainers.image.*).
	Labels map[string]string
	// Env is the environment for `go build` (nil: the current one).
	Env []string
	// Layout is the OCI image layout directory the index is written to.
	Layout string
	// CacheDir keeps build keys so that a build of unchanged inputs skips
	// compiling; "" disables it.
	CacheDir string
	// Log receives progress lines (may be nil).
	Log io.Writer
}

// Module is a Go module linked into the binary.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum,omitempty"`
}

// Result describes a built image index.
type Result struct {
	Digest    v1.Hash
	Index     v1.ImageIndex
	Layout    string
	Platforms []string
	// Modules are the Go modules linked into the binaries (from their
	// build info), GoVersion the toolchain that built them.
	Modules   []Module
	GoVersion string
	// Cached reports that compiling was skipped because the inputs were
	// unchanged since an earlier build.
	Cached bool
	// Key is the digest of every input of the build.
	Key string
}

type cacheEntry struct {
	Digest    string   `json:"digest"`
	Modules   []Module `json:"modules"`
	GoVersion string   `json:"goVersion"`
	Platforms []string `json:"platforms"`
}

func (o *Options) defaults() error {
	if o.Package == "" {
		o.Package = "."
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if o.Layout == "" {
		return errors.New("build image: no layout directory")
	}
	if o.Name == "" {
		if o.Package != "." {
			o.Name = path.Base(filepath.ToSlash(o.Package))
		} else {
			b, err := os.ReadFile(filepath.Join(o.Dir, "go.mod"))
			if err != nil {
				return fmt.Errorf("build image: %w", err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if m, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
					o.Name = path.Base(strings.Trim(strings.TrimSpace(m), `"`))
				}
			}
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	return nil
}

// PlatformString is os/arch[/variant].
func PlatformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Build compiles the program for each platform and writes the image index
// to the layout.
func Build(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	goVersion, err := goEnv(ctx, o.Env, o.Dir, "GOVERSION")
	if err != nil {
		return nil, err
	}
	key, err := buildKey(o, goVersion)
	if err != nil {
		return nil, err
	}
	if r, ok := cached(o, key); ok {
		fmt.Fprintf(o.Log, "inputs unchanged (key %.12s): reusing %s\n", key, r.Digest)
		return r, nil
	}
	mtime := time.Unix(o.SourceDateEpoch, 0).UTC()
	work, err := os.MkdirTemp("", "gantry-build-")
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	defer os.RemoveAll(work)

	var baseLayer v1.Layer
	if o.Base == "" {
		if baseLayer, err = BaseLayer(o.BaseSources, mtime); err != nil {
			return nil, err
		}
	}
	images := make([]v1.Image, len(o.Platforms))
	mods := make([][]Module, len(o.Platforms))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i, p := range o.Platforms {
		g.Go(func() error {
			bin := filepath.Join(work, strings.ReplaceAll(PlatformString(p), "/", "-"), o.Name)
			if err := goBuild(gctx, o, p, bin); err != nil {
				return err
			}
			m, err := linkedModules(bin)
			if err != nil {
				return err
			}
			base, err := o.baseImage(gctx, p, baseLayer)
			if err != nil {
				return err
			}
			img, err := appImage(base, p, bin, o, mtime)
			if err != nil {
				return err
			}
			mu.Lock()
			images[i], mods[i] = img, m
			fmt.Fprintf(o.Log, "built %s for %s\n", o.Name, PlatformString(p))
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var plats []string
	for i, p := range o.Platforms {
		pp := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: images[i], Descriptor: v1.Descriptor{Platform: &pp}})
		plats = append(plats, PlatformString(p))
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	if err := WriteLayout(o.Layout, idx); err != nil {
		return nil, err
	}
	r := &Result{Digest: d, Index: idx, Layout: o.Layout, Platforms: plats, Modules: mergeModules(mods), GoVersion: goVersion, Key: key}
	if o.CacheDir != "" {
		if err := storeCache(o.CacheDir, key, r); err != nil {
			fmt.Fprintf(o.Log, "warning: build cache: %v\n", err)
		}
	}
	return r, nil
}

// WriteLayout writes idx into the OCI layout at dir (created if needed),
// replacing an entry of the same digest.
func WriteLayout(dir string, idx v1.ImageIndex) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("create OCI layout %s: %w", dir, err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := p.ReplaceIndex(idx, match.Digests(d)); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the index of digest d from the layout at dir.
func ReadLayout(dir string, d v1.Hash) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	child, err := idx.ImageIndex(d)
	if err != nil {
		return nil, fmt.Errorf("index %s in OCI layout %s: %w", d, dir, err)
	}
	return child, nil
}

func (o *Options) baseImage(ctx context.Context, p v1.Platform, baseLayer v1.Layer) (v1.Image, error) {
	if o.Base == "" {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		return mutate.Append(img, mutate.Addendum{Layer: baseLayer, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: time.Unix(o.SourceDateEpoch, 0).UTC()}, CreatedBy: "gantry: distroless-style base (passwd, CA certificates, tzdata)",
		}})
	}
	ref, err := name.ParseReference(o.Base)
	if err != nil {
		return nil, fmt.Errorf("base image %q: %w", o.Base, err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(p), remote.WithAuthFromKeychain(o.Keychain))
	if err != nil {
		return nil, fmt.Errorf("pull base image %s for %s: %w", o.Base, PlatformString(p), err)
	}
	return img, nil
}

func appImage(base v1.Image, p v1.Platform, bin string, o Options, mtime time.Time) (v1.Image, error) {
	l := newLayer(mtime)
	l.add(entry{name: "/app/" + o.Name, file: bin, mode: 0o755})
	layer, err := l.layer()
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created: v1.Time{Time: mtime}, CreatedBy: "gantry: go build -trimpath " + o.Package,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: mtime}
	cf.Author = ""
	cf.Config.User = fmt.Sprintf("%d:%d", Nonroot, Nonroot)
	cf.Config.Entrypoint = []string{"/app/" + o.Name}
	cf.Config.Cmd = nil
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = mergeEnv(cf.Config.Env, []string{
		"PATH=/usr/local/bin:/usr/bin:/bin:/app",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		"ZONEINFO=/usr/share/zoneinfo",
		"HOME=/home/nonroot",
	})
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range o.Labels {
		cf.Config.Labels[k] = v
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return img, nil
}

func mergeEnv(have, want []string) []string {
	out := append([]string(nil), have...)
	for _, w := range want {
		k, _, _ := strings.Cut(w, "=")
		replaced := false
		for i, h := range out {
			if strings.HasPrefix(h, k+"=") {
				out[i], replaced = w, true
			}
		}
		if !replaced {
			out = append(out, w)
		}
	}
	return out
}

func goBuild(ctx context.Context, o Options, p v1.Platform, out string) error {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(append([]string(nil), env...), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=-mod=readonly")
	if p.Architecture == "arm" && p.Variant != "" {
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	pkg := o.Package
	if !strings.HasPrefix(pkg, ".") && !strings.Contains(pkg, ".") {
		pkg = "./" + pkg
	}
	cmd := proc.Command(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = o.Dir
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", o.Package, PlatformString(p), err, strings.TrimSpace(string(b)))
	}
	return nil
}

func linkedModules(bin string) ([]Module, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read build info of %s: %w", bin, err)
	}
	var mods []Module
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		mods = append(mods, Module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	return mods, nil
}

func mergeModules(all [][]Module) []Module {
	seen := map[string]Module{}
	for _, ms := range all {
		for _, m := range ms {
			seen[m.Path+"@"+m.Version] = m
		}
	}
	out := make([]Module, 0, len(seen))
	for _, m := range seen {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func goEnv(ctx context.Context, env []string, dir, key string) (string, error) {
	cmd := proc.Command(ctx, "go", "env", key)
	cmd.Dir = dir
	cmd.Env = env
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w (is Go installed?)", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// buildKey hashes every input: the toolchain, the options, the module's
// files (all but .git and _test.go files: anything may be embedded) and the
// base image's sources.
func buildKey(o Options, goVersion string) (string, error) {
	h := sha256.New()
	opts := struct {
		Go, Pkg, Name, Base string
		Platforms           []v1.Platform
		Epoch               int64
		Labels              map[string]string
		GOFLAGS, GOEXP      string
	}{goVersion, o.Package, o.Name, o.Base, o.Platforms, o.SourceDateEpoch, o.Labels, envValue(o.Env, "GOFLAGS"), envValue(o.Env, "GOEXPERIMENT")}
	b, _ := json.Marshal(opts)
	h.Write(b)
	if err := hashTree(h, o.Dir, "src", func(rel string, d fs.DirEntry) bool {
		return !(d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules")) && !strings.HasSuffix(rel, "_test.go")
	}); err != nil {
		return "", fmt.Errorf("build key: %w", err)
	}
	if o.Base == "" {
		src := o.BaseSources.withDefaults()
		if err := hashTree(h, src.CACerts, "ca", nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("build key: %w", err)
		}
		if err := hashTree(h, src.Zoneinfo, "tz", func(rel string, d fs.DirEntry) bool {
			return !(d.IsDir() && (rel == "posix" || rel == "right"))
		}); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("build key: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func envValue(env []string, k string) string {
	if env == nil {
		return os.Getenv(k)
	}
	v := ""
	for _, e := range env {
		if s, ok := strings.CutPrefix(e, k+"="); ok {
			v = s
		}
	}
	return v
}

func hashTree(h io.Writer, root, label string, keep func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if keep != nil && rel != "." && !keep(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		fmt.Fprintf(h, "%s:%s:%v\n", label, filepath.ToSlash(rel), d.Type())
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			fmt.Fprintln(h, t)
		}
		return nil
	})
}

func cached(o Options, key string) (*Result, bool) {
	if o.CacheDir == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(o.CacheDir, key+".json"))
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil {
		return nil, false
	}
	d, err := v1.NewHash(e.Digest)
	if err != nil {
		return nil, false
	}
	idx, err := ReadLayout(o.Layout, d)
	if err != nil {
		return nil, false
	}
	return &Result{Digest: d, Index: idx, Layout: o.Layout, Platforms: e.Platforms, Modules: e.Modules, GoVersion: e.GoVersion, Cached: true, Key: key}, true
}

func storeCache(dir, key string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(cacheEntry{Digest: r.Digest.String(), Modules: r.Modules, GoVersion: r.GoVersion, Platforms: r.Platforms})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, key+".json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, key+".json"))
}
