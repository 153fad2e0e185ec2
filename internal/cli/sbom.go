package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/sbom"
)

func newSBOMCmd() *cobra.Command {
	o := &options.SBOM{}
	cmd := &cobra.Command{
		Use:   "sbom TARGET",
		Short: "Write a CycloneDX 1.6 SBOM of an image, Go binary or source tree",
		Long: `Write a CycloneDX 1.6 JSON SBOM of TARGET: LAYOUT@sha256:... (an OCI
layout), REPO@sha256:... or REPO:TAG in a registry, a Go binary, or a
directory with go.mod. It lists every Go module (purl, version, go.sum
hash), the Go toolchain, OS packages (dpkg, apk) and the dependency graph,
with the image digest as the subject. --attach pushes it next to a
REPO@DIGEST image.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSBOM(cmd, o, args[0]) },
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runSBOM(cmd *cobra.Command, o *options.SBOM, target string) error {
	ctx := cmd.Context()
	insecure := o.Insecure || isLocalRef(target)
	inv, err := inventory.Load(ctx, target, inventory.Options{Platform: o.Platform, Insecure: insecure})
	if err != nil {
		if errors.Is(err, inventory.ErrNoTarget) {
			return usageErr(err)
		}
		return err
	}
	data, err := sbom.Encode(sbom.Generate(inv, sbom.Options{ToolVersion: version()}))
	if err != nil {
		return err
	}
	if o.Validate != "" {
		v, err := sbom.NewValidator(o.Validate)
		if err != nil {
			return usageErr(err)
		}
		if err := v.Validate(data); err != nil {
			return failed(err)
		}
	}
	if o.Output == "" {
		if _, err := cmd.OutOrStdout().Write(data); err != nil {
			return err
		}
	} else if err := os.WriteFile(o.Output, data, 0o644); err != nil {
		return fmt.Errorf("write SBOM: %w", err)
	}
	if o.Attach {
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		ref, err := name.NewDigest(target, opts...)
		if err != nil {
			return usageErr(fmt.Errorf("--attach needs TARGET as REPO@sha256:...: %w", err))
		}
		att, err := sbom.Attach(ctx, ref, data, true, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "attached %s\nreferrer %s\n", att.Tag, att.Referrer)
	}
	return nil
}
