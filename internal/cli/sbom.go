package cli

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/sbom"
	sbomstep "github.com/gantry-ci/gantry/internal/steps/sbom"
)

func newSBOMCmd(g *options.Global) *cobra.Command {
	o := &options.SBOM{}
	sf := &oneOffFlags{}
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
		RunE: func(cmd *cobra.Command, args []string) error { return runSBOM(cmd, g, o, sf, args[0]) },
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
	return cmd
}

func runSBOM(cmd *cobra.Command, g *options.Global, o *options.SBOM, sf *oneOffFlags, target string) error {
	ctx := cmd.Context()
	insecure := o.Insecure || isLocalRef(target)
	if o.Insecure && !isLocalRef(target) {
		return usageErr(fmt.Errorf("--insecure: the sbom step reaches a registry over plain HTTP only on this machine (localhost, 127.0.0.1, [::1])"))
	}
	var validator *sbom.Validator
	if o.Validate != "" {
		v, err := sbom.NewValidator(o.Validate)
		if err != nil {
			return usageErr(err)
		}
		validator = v
	}
	var ref name.Digest
	if o.Attach {
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		d, err := name.NewDigest(target, opts...)
		if err != nil {
			return usageErr(fmt.Errorf("--attach needs TARGET as REPO@sha256:...: %w", err))
		}
		ref = d
	}
	with := map[string]any{"target": localTarget(target), "platform": o.Platform, "attach": false}
	job := &oneOff{command: "sbom", stage: "security", dir: ".", secrets: sf.secrets,
		steps: []oneOffStep{{name: "sbom", uses: sbomstep.Kind.Name, with: with}}, out: cmd.ErrOrStderr()}
	r, err := job.run(cmd, g)
	if err != nil {
		return err
	}
	defer r.close()
	if r.step("sbom").Outputs == nil {
		// No SBOM: the target could not be read.
		return r.failure(ExitUsage)
	}
	if err := r.failure(ExitFailed); err != nil {
		return err
	}
	data, err := r.artifactBytes(sbomstep.ArtifactName)
	if err != nil {
		return err
	}
	if validator != nil {
		if err := validator.Validate(data); err != nil {
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
		att, err := sbom.Attach(ctx, ref, data, true, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "attached %s\nreferrer %s\n", att.Tag, att.Referrer)
	}
	return nil
}
