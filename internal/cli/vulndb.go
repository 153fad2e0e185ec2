package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/vulndb"
)

func newVulnDBCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vulndb",
		Short: "Fetch and inspect the OSV vulnerability database vuln-scan reads",
		Long: `gantry keeps an OSV vulnerability database in STATE_DIR/vulndb for the
vuln-scan step and gantry scan. vuln-scan fetches it on first use and
updates it when it is more than a day old; "vulndb update" does it now,
from the default sources (the Go and Debian exports of osv.dev) or from
--from URL|FILE (a mirror, or an archive carried to an offline machine).`,
		Args: vulndbNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr(errors.New("vulndb: name a subcommand: update or status"))
		},
	}
	cmd.AddCommand(newVulnDBUpdateCmd(g), newVulnDBStatusCmd(g))
	return cmd
}

func newVulnDBUpdateCmd(g *options.Global) *cobra.Command {
	o := &options.VulnDB{}
	cmd := &cobra.Command{
		Use:   "update [--from URL|FILE]...",
		Short: "Fetch the vulnerability database into the state dir",
		Args:  vulndbNoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runVulnDBUpdate(cmd, g, o) },
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runVulnDBUpdate(cmd *cobra.Command, g *options.Global, o *options.VulnDB) error {
	offline := vulndb.Offline(os.Getenv)
	for _, src := range o.From {
		if isURL(src) {
			if offline {
				return usageErr(fmt.Errorf("vulndb update: %s is set: refusing to fetch %s; use --from FILE", vulndb.OfflineEnv, redactURL(src)))
			}
			continue
		}
		fi, err := os.Stat(src)
		if err != nil {
			return usageErr(fmt.Errorf("vulndb update: --from %s: %w", src, err))
		}
		if !fi.Mode().IsRegular() {
			return usageErr(fmt.Errorf("vulndb update: --from %s: not a regular file (want a .zip or .tar.gz of OSV JSON files)", src))
		}
	}
	if len(o.From) == 0 && offline {
		return usageErr(fmt.Errorf("vulndb update: %s is set: nothing is fetched; use --from FILE", vulndb.OfflineEnv))
	}
	dir, err := g.ResolveStateDir()
	if err != nil {
		return usageErr(err)
	}
	m, err := vulndb.Update(cmd.Context(), vulndb.Options{StateDir: dir, Sources: o.From, Progress: cmd.ErrOrStderr()})
	if err != nil {
		return failed(fmt.Errorf("%w (the stored database, if any, is unchanged)", err))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "vulnerability database updated: %d entries from %d source(s) in %s\n", m.Entries(), len(m.Sources), vulndb.Dir(dir))
	return nil
}

func newVulnDBStatusCmd(g *options.Global) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show where the vulnerability database is, when it was fetched and from where",
		Args:  vulndbNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			out := cmd.OutOrStdout()
			if p := os.Getenv(vulndb.OverrideEnv); p != "" {
				fmt.Fprintf(out, "%s is set: vuln-scan reads %s and fetches nothing\n", vulndb.OverrideEnv, p)
			}
			m, err := vulndb.ReadMeta(vulndb.Dir(dir))
			if errors.Is(err, os.ErrNotExist) {
				return failed(fmt.Errorf("%w fetched in %s: run `gantry vulndb update`", vulndb.ErrNoDB, vulndb.Dir(dir)))
			}
			if err != nil {
				return failed(err)
			}
			age := time.Since(m.FetchedAt).Round(time.Minute)
			state := "fresh"
			if age >= vulndb.DefaultMaxAge {
				state = "stale: vuln-scan updates it on its next run"
			}
			if vulndb.Offline(os.Getenv) {
				state += " (" + vulndb.OfflineEnv + " is set: never fetched automatically)"
			}
			fmt.Fprintf(out, "database: %s\nfetched:  %s (%s ago, %s)\nentries:  %d\n", vulndb.Dir(dir), m.FetchedAt.Format(time.RFC3339), age, state, m.Entries())
			for _, s := range m.Sources {
				fmt.Fprintf(out, "source:   %s (%d entries, sha256 %s)\n", s.Source, s.Entries, s.SHA256)
			}
			return nil
		},
	}
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "the URL given"
}

// vulndbNoArgs refuses arguments as bad usage (exit 2).
func vulndbNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " ")))
	}
	return nil
}
