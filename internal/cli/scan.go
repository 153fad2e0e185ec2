package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/policy"
	"github.com/gantry-ci/gantry/internal/steps/vulnscan"
	"github.com/gantry-ci/gantry/internal/vuln"
	"github.com/gantry-ci/gantry/internal/vuln/trivy"
)

func newScanCmd(g *options.Global) *cobra.Command {
	o := &options.Scan{}
	sf := &oneOffFlags{}
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

It runs as a one-step pipeline through the engine, as gantry run would run
the step: recorded in gantry runs, cached when unchanged, --secret NAME masked.

Exit status: 0 passed, 1 findings failed the gate, 2 bad usage or config.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return runScan(cmd, g, o, sf, target)
		},
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
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

func runScan(cmd *cobra.Command, g *options.Global, o *options.Scan, sf *oneOffFlags, target string) error {
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
	if o.Insecure && target != "" && !isLocalRef(target) {
		return usageErr(fmt.Errorf("--insecure: the vuln-scan step reaches a registry over plain HTTP only on this machine (localhost, 127.0.0.1, [::1])"))
	}
	var paths []string
	if o.Exceptions != policy.DefaultExceptionsFile {
		paths = append(paths, o.Exceptions)
	}
	ws, rel := commonDir(paths)
	with := map[string]any{"fail_on": o.FailOn, "unscored": o.Unscored, "fixed_only": o.FixedOnly,
		"scanner": scanner, "platform": o.Platform}
	if o.NoFixOlderThan != "" {
		with["no_fix_older_than"] = o.NoFixOlderThan
	}
	if len(paths) > 0 {
		with["exceptions"] = rel(o.Exceptions)
	}
	if target != "" {
		with["target"] = localTarget(target)
	}
	if o.DB != "" {
		with["db"] = absPath(o.DB)
	}
	if o.TrivyReport != "" {
		with["trivy_report"] = absPath(o.TrivyReport)
	}
	if o.TrivyCache != "" {
		with["trivy_cache"] = absPath(o.TrivyCache)
	}
	if o.TrivyDownload {
		with["trivy_download"] = true
	}
	job := &oneOff{command: "scan", stage: "security", dir: ws, secrets: sf.secrets,
		steps: []oneOffStep{{name: "scan", uses: vulnscan.Kind.Name, with: with}}}
	if o.Output != "table" {
		job.out = io.Discard
	}
	r, err := job.run(cmd, g)
	if err != nil {
		return err
	}
	defer r.close()
	// A step that failed before it had a report (no database, a bad
	// exceptions file or Trivy report, no such target) is bad usage.
	if r.step("scan").Outputs == nil {
		return r.failure(ExitUsage)
	}
	if o.Output != "table" {
		name := "vuln-report.json"
		if o.Output == "sarif" {
			name = "vuln-scan.sarif"
		}
		data, err := r.artifactBytes(name)
		if err != nil {
			return err
		}
		if _, err := cmd.OutOrStdout().Write(append(data, '\n')); err != nil {
			return err
		}
	}
	return r.failure(ExitFailed)
}

// localTarget makes a TARGET that names a file (or LAYOUT@sha256:...)
// absolute, so that the step finds it whatever its workspace; image
// references stay as they are.
func localTarget(target string) string {
	if _, err := os.Stat(target); err == nil {
		return absPath(target)
	}
	if dir, digest, ok := strings.Cut(target, "@"); ok && pathLike(dir) {
		return absPath(dir) + "@" + digest
	}
	return target
}

// absPath is path made absolute (as given when that fails).
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
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

// isLocalRef reports whether a registry reference names this machine.
func isLocalRef(ref string) bool {
	for _, p := range []string{"localhost", "127.0.0.1", "[::1]"} {
		if len(ref) > len(p) && ref[:len(p)] == p && (ref[len(p)] == ':' || ref[len(p)] == '/') {
			return true
		}
	}
	return false
}
