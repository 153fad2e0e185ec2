package cli

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/steps/imagebuild"
	"github.com/gantry-ci/gantry/internal/steps/imagepush"
)

func newBuildCmd(g *options.Global) *cobra.Command {
	o := &options.Build{}
	sf := &oneOffFlags{}
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a reproducible multi-arch OCI image of a Go program without a daemon (the image-build step on its own)",
		Long: "Builds the Go module at DIR (default .) with CGO_ENABLED=0 -trimpath for each platform on a distroless-style\n" +
			"nonroot base into gantry's OCI layout, writes SLSA provenance, and prints the image index digest.\n" +
			"With --push, pushes to --image (REPO[:TAG]; \"embedded/NAME\" is the embedded registry) with the\n" +
			"provenance as an OCI referrer, and prints REPO@DIGEST.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			var repo, tag string
			if o.Image != "" {
				ref, err := name.ParseReference(o.Image, name.WithDefaultRegistry(""))
				if err != nil {
					return usageErr(fmt.Errorf("--image: %w", err))
				}
				repo = ref.Context().Name()
				if t, ok := ref.(name.Tag); ok && strings.Contains(o.Image, ":"+t.TagStr()) {
					tag = t.TagStr()
				}
			} else if o.Push {
				return usageErr(fmt.Errorf("--push needs --image"))
			}
			with := map[string]any{}
			if o.Package != "" {
				with["package"] = o.Package
			}
			if len(o.Platforms) > 0 {
				with["platforms"] = o.Platforms
			}
			if o.Base != "" {
				with["base"] = o.Base
			}
			if repo != "" {
				with["name"] = repo[strings.LastIndex(repo, "/")+1:]
			}
			if o.NoCache {
				with["cache"] = false
			}
			steps := []oneOffStep{{name: "image", uses: imagebuild.Kind.Name, with: with}}
			if o.Push {
				host, path, _ := strings.Cut(repo, "/")
				tags := append(append([]string{}, o.Tags...), tag)
				steps = append(steps, oneOffStep{name: "push", uses: imagepush.Kind.Name, needs: []string{"image"},
					with: map[string]any{"from": "image", "registry": host, "repository": path, "tags": tags}})
			}
			job := &oneOff{command: "build", stage: "build", dir: dir, secrets: sf.secrets, noCache: o.NoCache,
				steps: steps, out: cmd.ErrOrStderr()}
			r, err := job.run(cmd, g)
			if err != nil {
				return err
			}
			defer r.close()
			if err := r.failure(ExitFailed); err != nil {
				return err
			}
			if o.Push {
				fmt.Fprintln(cmd.OutOrStdout(), r.step("push").Outputs["image"])
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), r.step("image").Outputs["digest"])
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
	return cmd
}
