// Package imagebuild is the `image-build` step kind: a daemonless,
// reproducible multi-arch OCI image of a Go program with SLSA provenance.
package imagebuild

import (
	"context"
	"fmt"
	"github.com/gantry-ci/gantry/internal/proc"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/provenance"
	"github.com/gantry-ci/gantry/internal/step"
)

// BuilderID identifies gantry's local builder in provenance.
const BuilderID = "https://github.com/gantry-ci/gantry/builders/local@v1"

// Kind is `uses: image-build`.
var Kind = step.Kind{
	Name:    "image-build",
	Summary: "daemonless reproducible multi-arch OCI image of a Go program, with SLSA provenance",
	Outputs: []string{"digest", "image", "layout", "platforms", "provenance", "name", "cached"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Dir is the Go module directory within the repository (default .).
	Dir string `yaml:"dir"`
	// Package is the main package relative to dir (default: ./cmd/<name>
	// if there is exactly one cmd/ directory, else .).
	Package string `yaml:"package"`
	// Name is the binary and image name (default from the package).
	Name string `yaml:"name"`
	// Platforms, default [linux/amd64, linux/arm64].
	Platforms []string `yaml:"platforms"`
	// Base is a base image in a registry; default: gantry's local
	// distroless-style base.
	Base string `yaml:"base"`
	// Labels are added to the image config.
	Labels map[string]string `yaml:"labels"`
	// Cache reuses an earlier build of unchanged inputs (default true).
	Cache *bool `yaml:"cache"`
}

type buildStep struct {
	cfg       Config
	platforms []v1.Platform
}

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	s := &buildStep{cfg: c}
	for i, p := range c.Platforms {
		if in.Resolved() || !strings.Contains(p, "${") {
			pl, err := oci.ParsePlatform(p)
			if err != nil {
				return nil, in.Errorf(fmt.Sprintf("platforms.%d", i), "%v", err)
			}
			s.platforms = append(s.platforms, pl)
		}
	}
	if filepath.IsAbs(c.Dir) || strings.HasPrefix(filepath.Clean(c.Dir), "..") {
		return nil, in.Errorf("dir", "dir must be a path inside the repository, not %q", c.Dir)
	}
	return s, nil
}

// Run builds the image.
func (s *buildStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	started := time.Now()
	dir := filepath.Join(env.Dir, s.cfg.Dir)
	pkg := s.cfg.Package
	if pkg == "" {
		pkg = defaultPackage(dir)
	}
	epoch := sourceDateEpoch(ctx, env)
	labels := map[string]string{}
	source := gitRemote(ctx, env.Dir)
	if env.Git.SHA != "" {
		labels["org.opencontainers.image.revision"] = env.Git.SHA
	}
	if source != "" {
		labels["org.opencontainers.image.source"] = source
	}
	labels["org.opencontainers.image.created"] = time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	for k, v := range s.cfg.Labels {
		labels[k] = v
	}
	o := oci.Options{
		Dir: dir, Package: pkg, Name: s.cfg.Name, Platforms: s.platforms, Base: s.cfg.Base,
		SourceDateEpoch: epoch, Labels: labels, Env: env.Vars,
		Layout: filepath.Join(env.StateDir, "oci", "layout"), Log: env.Stdout,
	}
	if s.cfg.Cache == nil || *s.cfg.Cache {
		o.CacheDir = filepath.Join(env.StateDir, "oci", "build-cache")
	}
	res, err := oci.Build(ctx, o)
	if err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = imageName(dir, pkg)
	}
	st, err := statement(res, name, s.cfg, pkg, source, env, epoch, started)
	if err != nil {
		return nil, err
	}
	b, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	provDir := filepath.Join(env.StateDir, "oci", "provenance")
	if err := os.MkdirAll(provDir, 0o755); err != nil {
		return nil, fmt.Errorf("store provenance: %w", err)
	}
	provFile := filepath.Join(provDir, res.Digest.Hex+"-"+strconv.FormatInt(started.UnixNano(), 36)+".json")
	if err := os.WriteFile(provFile, b, 0o644); err != nil {
		return nil, fmt.Errorf("store provenance: %w", err)
	}
	if env.Artifacts != nil {
		if err := env.Artifacts.PutBytes(ctx, "provenance.intoto.json", b, provenance.MediaType); err != nil {
			return nil, fmt.Errorf("store provenance artifact: %w", err)
		}
	}
	fmt.Fprintf(env.Stdout, "image %s (%s) in %s\n", res.Digest, strings.Join(res.Platforms, ", "), o.Layout)
	summary := fmt.Sprintf("%s %s", name, res.Digest)
	if res.Cached {
		summary += " (inputs unchanged)"
	}
	return &step.Result{Outputs: map[string]any{
		"digest": res.Digest.String(), "image": o.Layout + "@" + res.Digest.String(), "layout": o.Layout,
		"platforms": res.Platforms, "provenance": provFile, "name": name, "cached": res.Cached,
	}, Summary: summary}, nil
}

func statement(res *oci.Result, name string, cfg Config, pkg, source string, env *step.Env, epoch int64, started time.Time) (*provenance.Statement, error) {
	subjects := []provenance.Subject{{Name: name, Digest: res.Digest.String()}}
	im, err := res.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		n := name
		if m.Platform != nil {
			n += "@" + oci.PlatformString(*m.Platform)
		}
		subjects = append(subjects, provenance.Subject{Name: n, Digest: m.Digest.String()})
	}
	mods := make([]provenance.Module, 0, len(res.Modules))
	for _, m := range res.Modules {
		mods = append(mods, provenance.Module{Path: m.Path, Version: m.Version, Sum: m.Sum})
	}
	srcURI := source
	if srcURI == "" {
		srcURI = "file://" + env.Dir
	}
	base := cfg.Base
	if base == "" {
		base = "gantry:distroless-style-local"
	}
	ext := map[string]any{
		"source": srcURI, "revision": env.Git.SHA, "dir": cfg.Dir, "package": pkg,
		"platforms": res.Platforms, "base": base,
	}
	internal := map[string]any{
		"goVersion": res.GoVersion, "cgoEnabled": false,
		"buildFlags":      []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="},
		"sourceDateEpoch": epoch, "buildKey": res.Key, "reusedEarlierBuild": res.Cached,
	}
	inv := env.RunID
	if env.Stage != "" || env.Step != "" {
		inv += "/" + env.Stage + "/" + env.Step
	}
	return provenance.New(provenance.Input{
		Subjects: subjects, SourceURI: srcURI, SourceCommit: env.Git.SHA, Modules: mods, GoVersion: res.GoVersion,
		External: ext, Internal: internal, BuilderID: BuilderID, InvocationID: inv,
		Started: started, Finished: time.Now(),
	})
}

// defaultPackage is ./cmd/<x> when cmd/ holds exactly one directory.
func defaultPackage(dir string) string {
	ents, err := os.ReadDir(filepath.Join(dir, "cmd"))
	if err != nil {
		return "."
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 1 {
		return "./cmd/" + dirs[0]
	}
	return "."
}

func imageName(dir, pkg string) string {
	if pkg != "." && pkg != "" {
		return filepath.Base(pkg)
	}
	return filepath.Base(dir)
}

// sourceDateEpoch is SOURCE_DATE_EPOCH from the step env, else the commit
// time, else the time of HEAD in the repository, else 0.
func sourceDateEpoch(ctx context.Context, env *step.Env) int64 {
	for _, kv := range env.Vars {
		if v, ok := strings.CutPrefix(kv, "SOURCE_DATE_EPOCH="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	if env.Git.Time != 0 {
		return env.Git.Time
	}
	out, err := proc.Command(ctx, "git", "-C", env.Dir, "log", "-1", "--format=%ct").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return n
		}
	}
	return 0
}

// gitRemote is the origin URL without credentials, or "".
func gitRemote(ctx context.Context, dir string) string {
	out, err := proc.Command(ctx, "git", "-C", dir, "remote", "get-url", "origin").Output()
	if err != nil {
		return ""
	}
	u := strings.TrimSpace(string(out))
	// Strip user:password@ from https remotes.
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			u = u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}

// Paths names the module directory and, when it is a relative directory,
// the main package in it.
func (s *buildStep) Paths() []step.PathRef {
	refs := []step.PathRef{{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir}}
	if p := s.cfg.Package; p == "." || strings.HasPrefix(p, "./") {
		refs = append(refs, step.PathRef{Field: "package", Value: path.Join(filepath.ToSlash(s.cfg.Dir), p), Type: step.PathDir})
	}
	return refs
}

var _ step.PathInputs = (*buildStep)(nil)
