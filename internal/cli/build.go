package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/steps/imagebuild"
	"github.com/gantry-ci/gantry/internal/steps/imagepush"
)

func newBuildCmd(g *options.Global) *cobra.Command {
	o := &options.Build{}
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
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
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
			art, err := os.MkdirTemp("", "gantry-build-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(art)
			ctx := cmd.Context()
			env, cleanup, err := localEnv(ctx, dir, stateDir, art, cmd.ErrOrStderr(), g.Verbose)
			if err != nil {
				return err
			}
			defer cleanup()
			cfg := imagebuild.Config{Package: o.Package, Platforms: o.Platforms, Base: o.Base}
			if repo != "" {
				cfg.Name = repo[strings.LastIndex(repo, "/")+1:]
			}
			if o.NoCache {
				f := false
				cfg.Cache = &f
			}
			b, err := imagebuild.New(structInputs{cfg})
			if err != nil {
				return usageErr(err)
			}
			env.Step = "image"
			built, err := b.Run(ctx, env)
			if err != nil {
				return failed(err)
			}
			if !o.Push {
				fmt.Fprintln(cmd.OutOrStdout(), built.Outputs["digest"])
				return nil
			}
			host, path, _ := strings.Cut(repo, "/")
			pcfg := imagepush.Config{Registry: host, Repository: path, Tags: append(append([]string{}, o.Tags...), tag)}
			p, err := imagepush.New(structInputs{pcfg})
			if err != nil {
				return usageErr(err)
			}
			env.Outputs = func(_, s string) (map[string]any, bool) {
				if s == "image" {
					return built.Outputs, true
				}
				return nil, false
			}
			pushed, err := p.Run(ctx, env)
			if err != nil {
				return failed(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), pushed.Outputs["image"])
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
