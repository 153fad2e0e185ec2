package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/steps/vulnscan"
	"github.com/gantry-ci/gantry/internal/vuln"
)

func newScanCmd(g *options.Global) *cobra.Command {
	o := &options.Scan{}
	cmd := &cobra.Command{
		Use:   "scan TARGET",
		Short: "Scan an image, Go binary or source tree for known vulnerabilities",
		Long: `Scan TARGET against OSV vulnerability data and apply the severity gate.

TARGET is LAYOUT@sha256:... (an OCI layout, as image-build outputs it),
REPO@sha256:... or REPO:TAG in a registry, a Go binary, or a directory with
go.mod. Go modules and the Go standard library are matched by version
ranges; OS packages from dpkg and apk databases are listed.

Exit status: 0 passed, 1 findings failed the gate, 2 bad usage or config.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runScan(cmd *cobra.Command, g *options.Global, o *options.Scan, target string) error {
	switch o.Output {
	case "table", "json", "sarif":
	default:
		return usageErr(fmt.Errorf("--output %q: want table, json or sarif", o.Output))
	}
	levels, err := vuln.ParseLevels(o.FailOn)
	if err != nil {
		return usageErr(fmt.Errorf("--fail-on: %w", err))
	}
	age, err := vuln.ParseAge(o.NoFixOlderThan)
	if err != nil {
		return usageErr(fmt.Errorf("--no-fix-older-than: %w", err))
	}
	gate := vuln.Gate{FailOn: levels, Unscored: o.Unscored, FixedOnly: o.FixedOnly, NoFixOlderThan: age}
	if err := gate.Check(); err != nil {
		return usageErr(err)
	}
	stateDir := ""
	if o.DB == "" {
		if stateDir, err = g.ResolveStateDir(); err != nil {
			return usageErr(err)
		}
	}
	dbPath, err := vulnscan.DBPath(o.DB, os.Environ(), stateDir)
	if err != nil {
		return usageErr(err)
	}
	exc, err := vulnscan.LoadExceptions(".", o.Exceptions)
	if err != nil {
		return usageErr(err)
	}
	gate.Exceptions = exc
	db, err := vuln.Open(dbPath)
	if err != nil {
		return usageErr(err)
	}
	ctx := cmd.Context()
	inv, err := inventory.Load(ctx, target, inventory.Options{Platform: o.Platform, Insecure: o.Insecure || isLocalRef(target)})
	if err != nil {
		if errors.Is(err, inventory.ErrNoTarget) {
			return usageErr(err)
		}
		return err
	}
	now := time.Now()
	rep := vuln.NewReport(inv, db, gate.Apply(vuln.Scan(inv, db), now), now)
	w := cmd.OutOrStdout()
	switch o.Output {
	case "json":
		data, err := rep.JSON()
		if err != nil {
			return err
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			return err
		}
	case "sarif":
		data, err := rep.SARIF()
		if err != nil {
			return err
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			return err
		}
	default:
		if err := rep.WriteTable(w); err != nil {
			return err
		}
	}
	if !rep.Passed {
		return failed(fmt.Errorf("%d vulnerability finding(s) failed the gate", rep.Failing))
	}
	return nil
}

// isLocalRef reports whether a registry reference names this machine.
func isLocalRef(ref string) bool {
	for _, p := range []string{"localhost", "127.0.0.1", "[::1]"} {
		if len(ref) > len(p) && ref[:len(p)] == p && (ref[len(p)] == ':' || ref[len(p)] == '/') {
			return true
		}
	}
	return false
}
