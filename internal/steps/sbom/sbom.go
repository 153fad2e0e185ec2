// Package sbom is the sbom step kind (the seed's Syft step): a CycloneDX
// 1.6 JSON SBOM of the image built earlier in the run, stored as an
// artifact and, when the image was pushed, attached to it in the registry
// (cosign's sha256-<hex>.sbom tag and an OCI 1.1 referrer).
package sbom

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/registry"
	cdxsbom "github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/step"
)

// Kind is the sbom step kind.
var Kind = step.Kind{
	Name:    "sbom",
	Gate:    "sbom",
	Summary: "CycloneDX 1.6 SBOM of the built image, attached to the pushed image",
	Outputs: []string{"components", "modules", "packages", "artifact", "digest", "attached", "referrer"},
	New:     New,
}

// ArtifactName is the stored SBOM.
const ArtifactName = "sbom.cdx.json"

// Config is the `with:` block.
type Config struct {
	// Format must be cyclonedx-json (the default).
	Format string `yaml:"format"`
	// Target to describe: LAYOUT@DIGEST, REPO@DIGEST, a binary or a source
	// directory. Default: the `image` output of From.
	Target string `yaml:"target"`
	// From is the step whose `image` output is described, "STAGE/STEP" or
	// "STEP" of this stage (default "build-test/image").
	From string `yaml:"from"`
	// Push is the image-push step whose `image` (REPO@DIGEST) the SBOM is
	// attached to (default "build-test/push"; skipped if it did not run).
	Push string `yaml:"push"`
	// Attach turns attaching off with false.
	Attach *bool `yaml:"attach"`
	// Referrer also pushes an OCI 1.1 referrer (default true).
	Referrer *bool `yaml:"referrer"`
	// Platform of an index to describe: os/arch or all (default all).
	Platform string `yaml:"platform"`
}

var _ step.Step = (*sbomStep)(nil)

type sbomStep struct {
	cfg Config
	now func() time.Time
}

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	switch c.Format {
	case "", "cyclonedx-json", "cyclonedx":
	default:
		return nil, in.Errorf("format", "format %q: only cyclonedx-json is supported", c.Format)
	}
	if c.From == "" {
		c.From = "build-test/image"
	}
	if c.Push == "" {
		c.Push = "build-test/push"
	}
	if c.Platform == "" {
		c.Platform = "all"
	}
	return &sbomStep{cfg: c, now: time.Now}, nil
}

// Run generates, stores and attaches the SBOM.
func (s *sbomStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	target := s.cfg.Target
	if target != "" && !strings.Contains(target, "@") && !filepath.IsAbs(target) {
		target = filepath.Join(env.Dir, target)
	}
	if target == "" {
		o, where, ok := env.OutputsOf(s.cfg.From)
		if !ok {
			return nil, fmt.Errorf("sbom: step %s has not run: set with.from to the image-build step, or with.target", where)
		}
		target, _ = o["image"].(string)
		if target == "" {
			return nil, fmt.Errorf("sbom: step %s has no `image` output", where)
		}
	}
	inv, err := inventory.Load(ctx, target, inventory.Options{Platform: s.cfg.Platform, Insecure: registry.IsLoopback(target)})
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	bom := cdxsbom.Generate(inv, cdxsbom.Options{Time: s.now()})
	data, err := cdxsbom.Encode(bom)
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	if env.Artifacts != nil {
		if err := env.Artifacts.PutBytes(ctx, ArtifactName, data, cdxsbom.MediaType); err != nil {
			return nil, fmt.Errorf("sbom: store %s: %w", ArtifactName, err)
		}
	}
	modules, pkgs := 0, len(inv.Packages)
	for _, b := range inv.Binaries {
		modules += len(b.Deps)
	}
	n := 0
	if bom.Components != nil {
		n = len(*bom.Components)
	}
	res := &step.Result{Outputs: map[string]any{
		"components": n, "modules": modules, "packages": pkgs, "artifact": ArtifactName,
		// digest names the exact SBOM made; the sign step attests the
		// attached SBOM only if it is this one.
		"digest": fmt.Sprintf("sha256:%x", sha256.Sum256(data)), "attached": "", "referrer": "",
	}}
	fmt.Fprintf(out, "SBOM of %s: %d components (%d Go modules in %d binaries, %d OS packages)\n", inv.Target, n, modules, len(inv.Binaries), pkgs)
	res.Summary = fmt.Sprintf("%d components", n)
	if s.cfg.Attach != nil && !*s.cfg.Attach {
		return res, nil
	}
	pushed, where, ok := env.OutputsOf(s.cfg.Push)
	if !ok {
		fmt.Fprintf(out, "not attached: step %s did not run\n", where)
		return res, nil
	}
	image, _ := pushed["image"].(string)
	if image == "" {
		return res, fmt.Errorf("sbom: step %s has no `image` output to attach to", where)
	}
	att, err := s.attach(ctx, env, image, data)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "attached %s\n", att.Tag)
	if att.Referrer != "" {
		fmt.Fprintf(out, "referrer %s\n", att.Referrer)
	}
	res.Outputs["attached"], res.Outputs["referrer"] = att.Tag, att.Referrer
	return res, nil
}

func (s *sbomStep) attach(ctx context.Context, env *step.Env, image string, data []byte) (*cdxsbom.Attached, error) {
	image, insecure, stop, err := registry.EnsureFor(ctx, env.StateDir, env.Vars, env.Log, image)
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	defer stop(context.WithoutCancel(ctx))
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewDigest(image, opts...)
	if err != nil {
		return nil, fmt.Errorf("sbom: image %q: %w", image, err)
	}
	referrer := s.cfg.Referrer == nil || *s.cfg.Referrer
	return cdxsbom.Attach(ctx, ref, data, referrer, nil)
}

var _ step.Cacheable = (*sbomStep)(nil)

// CacheKey implements step.Cacheable: an SBOM describes one image, named by
// digest in the image-build (and image-push) outputs, or a target given in
// the inputs. When the image was already attached to by an earlier run,
// that run's SBOM is reused.
func (s *sbomStep) CacheKey(_ context.Context, env *step.Env) (step.CacheKey, error) {
	extra := map[string]string{}
	if s.cfg.Target != "" {
		if !strings.Contains(s.cfg.Target, "@") {
			return step.CacheKey{}, step.ErrNotCacheable // a path whose content we do not digest
		}
		extra["target"] = s.cfg.Target
	} else {
		o, _, ok := env.OutputsOf(s.cfg.From)
		img, _ := o["image"].(string)
		if !ok || img == "" {
			return step.CacheKey{}, step.ErrNotCacheable
		}
		extra["image"] = img
	}
	if o, _, ok := env.OutputsOf(s.cfg.Push); ok {
		img, _ := o["image"].(string)
		extra["push"] = img
	}
	return step.CacheKey{Files: []string{}, Extra: extra}, nil
}
