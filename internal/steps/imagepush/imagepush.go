// Package imagepush is the `image-push` step kind: it pushes the image an
// image-build step made to an OCI registry (the embedded one by default)
// under the given tags, with its provenance as an OCI 1.1 referrer, and
// records repo@digest.
package imagepush

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/provenance"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/step"
)

// Kind is `uses: image-push`.
var Kind = step.Kind{
	Name:    "image-push",
	Summary: "push the built image to an OCI registry (embedded by default) with tags and provenance",
	Outputs: []string{"digest", "image", "repository", "tags", "provenance"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// From is the image-build step of the same stage (default "image").
	From string `yaml:"from"`
	// Registry is "embedded" (default) or a registry host such as
	// 123456789012.dkr.ecr.us-east-1.amazonaws.com.
	Registry string `yaml:"registry"`
	// Repository is the path in the registry (default: the image name).
	Repository string `yaml:"repository"`
	// Tags, e.g. ["${git.sha}", "${stages.commit.steps.version.outputs.version}"].
	// Empty entries are skipped.
	Tags []string `yaml:"tags"`
	// Insecure allows plain HTTP to the registry (always on for the
	// embedded one and loopback addresses).
	Insecure bool `yaml:"insecure"`
}

type pushStep struct{ cfg Config }

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.From == "" {
		c.From = "image"
	}
	if in.Resolved() {
		for i, t := range c.Tags {
			if t == "" {
				continue
			}
			if _, err := name.NewTag("example.com/x:" + sanitize(t)); err != nil {
				return nil, in.Errorf(fmt.Sprintf("tags.%d", i), "tag %q is not a valid image tag", t)
			}
		}
	}
	return &pushStep{cfg: c}, nil
}

// sanitize turns a version like v1.2.0+build into a valid tag (+ → _).
func sanitize(t string) string { return strings.ReplaceAll(t, "+", "_") }

// Run pushes the image.
func (s *pushStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	var built map[string]any
	ok := false
	if env.Outputs != nil {
		built, ok = env.Outputs(env.Stage, s.cfg.From)
	}
	if !ok {
		return nil, fmt.Errorf("image-push: step %q of stage %q has not run (set with.from to the image-build step)", s.cfg.From, env.Stage)
	}
	layout, _ := built["layout"].(string)
	digest, _ := built["digest"].(string)
	imgName, _ := built["name"].(string)
	if layout == "" || digest == "" {
		return nil, fmt.Errorf("image-push: step %q did not output layout and digest: is it an image-build step?", s.cfg.From)
	}
	d, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("image-push: digest from %q: %w", s.cfg.From, err)
	}
	idx, err := oci.ReadLayout(layout, d)
	if err != nil {
		return nil, err
	}
	host := s.cfg.Registry
	insecure := s.cfg.Insecure
	if host == "" || host == "embedded" {
		addr, stop, err := registry.Ensure(ctx, env.StateDir, env.Vars, env.Log)
		if err != nil {
			return nil, fmt.Errorf("image-push: embedded registry: %w", err)
		}
		defer stop(context.WithoutCancel(ctx))
		host, insecure = addr, true
	} else if isLoopback(host) {
		insecure = true
	}
	repoPath := s.cfg.Repository
	if repoPath == "" {
		repoPath = imgName
	}
	repo, err := oci.Repository(host+"/"+repoPath, insecure)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, t := range s.cfg.Tags {
		if t = sanitize(strings.TrimSpace(t)); t != "" {
			tags = append(tags, t)
		}
	}
	opts := oci.PushOptions{Keychain: authn.DefaultKeychain, Insecure: insecure}
	ref, err := oci.PushIndex(ctx, idx, repo, tags, opts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Stdout, "pushed %s\n", ref)
	for _, t := range tags {
		fmt.Fprintf(env.Stdout, "tagged %s:%s\n", repo, t)
	}
	out := map[string]any{"digest": d.String(), "image": ref.String(), "repository": repo.String(), "tags": tags}
	if prov, _ := built["provenance"].(string); prov != "" {
		pref, err := pushProvenance(ctx, idx, repo, prov, opts)
		if err != nil {
			return nil, err
		}
		out["provenance"] = pref
		fmt.Fprintf(env.Stdout, "provenance %s (referrer of %s)\n", pref, d)
	}
	return &step.Result{Outputs: out, Summary: ref.String()}, nil
}

func pushProvenance(ctx context.Context, idx v1.ImageIndex, repo name.Repository, file string, o oci.PushOptions) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read provenance: %w", err)
	}
	if _, err := provenance.Parse(b); err != nil {
		return "", err
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return "", err
	}
	d, _ := idx.Digest()
	mt, _ := idx.MediaType()
	art, err := oci.NewArtifact(v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))},
		provenance.MediaType, provenance.MediaType, b,
		map[string]string{"in-toto.io/predicate-type": provenance.PredicateType})
	if err != nil {
		return "", err
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ref, err := art.Push(ctx, repo, kc)
	if err != nil {
		return "", fmt.Errorf("push provenance: %w", err)
	}
	return ref.String(), nil
}

func isLoopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
