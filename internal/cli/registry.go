package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/registry"
)

func newRegistryCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "The embedded OCI registry",
	}
	o := &options.Registry{}
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the embedded OCI registry (persistent, OCI distribution spec 1.1 with referrers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			root := o.Root
			if root == "" {
				root = registry.Root(stateDir)
			}
			level := slog.LevelInfo
			if g.Verbose {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			s, err := registry.Serve(ctx, root, o.Addr, registry.StateFile(stateDir), logger)
			if err != nil {
				return failed(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registry listening on %s (content in %s)\n", s.Addr(), root)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return s.Close(sctx)
		},
	}
	o.AddFlags(serve.Flags())
	cmd.AddCommand(serve)
	return cmd
}
