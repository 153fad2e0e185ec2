package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/steps/vulnscan"
	"github.com/gantry-ci/gantry/internal/vuln"
	"github.com/gantry-ci/gantry/internal/vuln/trivy"
)

func newScanCmd(g *options.Global) *cobra.Command {
	o := &options.Scan{}
	cmd := &cobra.Command{
		Use:   "scan [TARGET]",
		Short: "Scan an image, Go binary or source tree for known vulnerabilities",
		Long: `Scan TARGET against OSV vulnerability data and apply the severity gate.

TARGET is LAYOUT@sha256:... (an OCI layout, as image-build outputs it),
REPO@sha256:... or REPO:TAG in a registry, a Go binary, or a directory with
go.mod. Go modules and the Go standard library are matched by version
ranges; OS packages from dpkg and apk databases are listed.

--scanner trivy has Trivy scan TARGET instead (auto: Trivy when it is on
PATH), and --trivy-report FILE gates an existing Trivy JSON report; either
way the same gate, exceptions and report formats apply. Trivy never
downloads its database unless --trivy-download is given.

Exit status: 0 passed, 1 findings failed the gate, 2 bad usage or config.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return runScan(cmd, g, o, target)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// checkScanTarget refuses a TARGET that names nothing: a path (it starts
// with /, ./, ../ or ~, or is . or .., also before an @digest) that does
// not exist, or text that is neither an existing file nor an image
// reference. Only a reference that is not path-like goes to a registry.
func checkScanTarget(target string) error {
	if target == "" {
		return nil
	}
	path := target
	if dir, _, ok := strings.Cut(target, "@"); ok && pathLike(dir) {
		path = dir // LAYOUT@sha256:...
	}
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil
	case pathLike(path) && errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("scan %s: no such file or directory", path)
	case pathLike(path):
		return fmt.Errorf("scan %s: %w", path, err)
	}
	if _, err := name.ParseReference(target); err != nil {
		return fmt.Errorf("scan: %q is neither a file nor an image reference (want a path, LAYOUT@sha256:..., REPO@sha256:... or REPO:TAG)", target)
	}
	return nil
}

func pathLike(s string) bool {
	return s == "." || s == ".." || s == "~" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") ||
		strings.HasPrefix(s, "../") || strings.HasPrefix(s, "~/")
}

func runScan(cmd *cobra.Command, g *options.Global, o *options.Scan, target string) error {
	if err := checkScanTarget(target); err != nil {
		return usageErr(err)
	}
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
	scanner, err := scanScanner(cmd, o, target)
	if err != nil {
		return usageErr(err)
	}
	var rep *vuln.Report
	if scanner == vuln.ScannerTrivy {
		rep, err = scanWithTrivy(cmd, o, gate, target)
	} else {
		rep, err = scanWithGantry(cmd, g, o, gate, target)
	}
	if err != nil {
		return err
	}
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

// scanScanner checks the scanner flags and resolves auto.
func scanScanner(cmd *cobra.Command, o *options.Scan, target string) (string, error) {
	scanner := o.Scanner
	switch scanner {
	case vuln.ScannerGantry, vuln.ScannerTrivy, vulnscan.ScannerAuto:
	default:
		return "", fmt.Errorf("--scanner %q: want gantry, trivy or auto", scanner)
	}
	if o.TrivyReport != "" {
		if cmd.Flags().Changed("scanner") && scanner != vuln.ScannerTrivy {
			return "", fmt.Errorf("--trivy-report needs --scanner trivy (or no --scanner)")
		}
		if target != "" {
			return "", fmt.Errorf("--trivy-report gates an existing report: give no TARGET")
		}
		return vuln.ScannerTrivy, nil
	}
	if target == "" {
		return "", fmt.Errorf("scan: TARGET is required (or --trivy-report FILE)")
	}
	if scanner == vulnscan.ScannerAuto {
		scanner = vuln.ScannerGantry
		if trivy.Available(os.Environ()) {
			scanner = vuln.ScannerTrivy
		}
	}
	if scanner == vuln.ScannerTrivy && o.DB != "" {
		return "", fmt.Errorf("--db is gantry's OSV database; --scanner trivy uses Trivy's own (--trivy-cache)")
	}
	if scanner == vuln.ScannerGantry && cmd.Flags().Changed("scanner") && (o.TrivyCache != "" || o.TrivyDownload) {
		return "", fmt.Errorf("--trivy-cache and --trivy-download need --scanner trivy or auto")
	}
	return scanner, nil
}

// scanWithTrivy runs trivy on target, or reads --trivy-report, and gates
// the findings.
func scanWithTrivy(cmd *cobra.Command, o *options.Scan, gate vuln.Gate, target string) (*vuln.Report, error) {
	exc, err := vulnscan.LoadExceptions(".", o.Exceptions)
	if err != nil {
		return nil, usageErr(err)
	}
	gate.Exceptions = exc
	var scan *trivy.Scan
	if o.TrivyReport != "" {
		if scan, err = trivy.ReadReport(o.TrivyReport); err != nil {
			return nil, usageErr(err)
		}
	} else {
		scan, err = trivy.Run(cmd.Context(), trivy.Options{
			Target: target, Platform: o.Platform, Insecure: o.Insecure || isLocalRef(target),
			CacheDir: o.TrivyCache, AllowDownload: o.TrivyDownload, Log: cmd.ErrOrStderr(),
		})
		if errors.Is(err, trivy.ErrNotInstalled) || errors.Is(err, trivy.ErrNoDB) {
			return nil, usageErr(err)
		}
		if err != nil {
			return nil, err
		}
	}
	now := time.Now()
	return scan.NewReport(gate.Apply(scan.Findings(), now), now), nil
}

// scanWithGantry matches target against the OSV database.
func scanWithGantry(cmd *cobra.Command, g *options.Global, o *options.Scan, gate vuln.Gate, target string) (*vuln.Report, error) {
	var err error
	stateDir := ""
	if o.DB == "" {
		if stateDir, err = g.ResolveStateDir(); err != nil {
			return nil, usageErr(err)
		}
	}
	dbPath, err := vulnscan.DBPath(o.DB, os.Environ(), stateDir)
	if err != nil {
		return nil, usageErr(err)
	}
	exc, err := vulnscan.LoadExceptions(".", o.Exceptions)
	if err != nil {
		return nil, usageErr(err)
	}
	gate.Exceptions = exc
	db, err := vuln.Open(dbPath)
	if err != nil {
		return nil, usageErr(err)
	}
	ctx := cmd.Context()
	inv, err := inventory.Load(ctx, target, inventory.Options{Platform: o.Platform, Insecure: o.Insecure || isLocalRef(target)})
	if err != nil {
		if errors.Is(err, inventory.ErrNoTarget) {
			return nil, usageErr(err)
		}
		return nil, err
	}
	now := time.Now()
	return vuln.NewReport(inv, db, gate.Apply(vuln.Scan(inv, db), now), now), nil
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
