// Command newdigest pushes a new digest of an image for bench/deploy.sh:
// the same layers, with one label of the image config changed, pushed to
// the same repository of a plain-HTTP (loopback) registry. It prints the
// new reference by digest.
//
//	newdigest REPO@sha256:... N
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: newdigest REPO@sha256:... N")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ref, err := newDigest(ctx, os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "newdigest:", err)
		os.Exit(1)
	}
	fmt.Println(ref)
}

// newDigest reads the image or index src, sets the label gantry.bench/n
// to n in the config of every image in it and pushes the result by digest
// to src's repository.
func newDigest(ctx context.Context, src, n string) (string, error) {
	ref, err := name.NewDigest(src, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", src, err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", src, err)
	}
	var out remote.Taggable
	var digest func() (v1.Hash, error)
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return "", fmt.Errorf("read index %s: %w", src, err)
		}
		newIdx, err := relabelIndex(idx, n)
		if err != nil {
			return "", err
		}
		out, digest = newIdx, newIdx.Digest
	} else {
		img, err := desc.Image()
		if err != nil {
			return "", fmt.Errorf("read image %s: %w", src, err)
		}
		newImg, err := relabel(img, n)
		if err != nil {
			return "", err
		}
		out, digest = newImg, newImg.Digest
	}
	d, err := digest()
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	dst := ref.Context().Digest(d.String())
	switch o := out.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(dst, o, remote.WithContext(ctx))
	case v1.Image:
		err = remote.Write(dst, o, remote.WithContext(ctx))
	}
	if err != nil {
		return "", fmt.Errorf("push %s: %w", dst, err)
	}
	return dst.String(), nil
}

// relabelIndex relabels every image of idx, keeping their platforms.
func relabelIndex(idx v1.ImageIndex, n string) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index manifest: %w", err)
	}
	out := mutate.IndexMediaType(empty.Index, im.MediaType)
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() {
			return nil, fmt.Errorf("index entry %s is a %s, not an image", m.Digest, m.MediaType)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", m.Digest, err)
		}
		newImg, err := relabel(img, n)
		if err != nil {
			return nil, err
		}
		out = mutate.AppendManifests(out, mutate.IndexAddendum{
			Add:        newImg,
			Descriptor: v1.Descriptor{MediaType: m.MediaType, Platform: m.Platform, Annotations: m.Annotations},
		})
	}
	return out, nil
}

// relabel sets the label gantry.bench/n to n in img's config.
func relabel(img v1.Image, n string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read the image config: %w", err)
	}
	cfg := *cf.Config.DeepCopy()
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	labels["gantry.bench/n"] = n
	cfg.Labels = labels
	out, err := mutate.Config(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("set the label: %w", err)
	}
	return out, nil
}
