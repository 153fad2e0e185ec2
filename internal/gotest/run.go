package gotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/gantry-ci/gantry/internal/proc"
)

// Options configures one `go test` invocation.
type Options struct {
	// Dir is the module directory the command runs in.
	Dir string
	// Packages are the package patterns; empty means ./... .
	Packages []string
	Race     bool
	Tags     []string
	// CoverProfile is where the coverage profile is written; "" runs
	// without coverage.
	CoverProfile string
	// CoverPkg is passed as -coverpkg when set.
	CoverPkg string
	// Timeout is passed as -timeout when set (a Go duration).
	Timeout string
	// Args are further arguments to `go test`, placed before the packages.
	Args []string
	// Env is the child's environment; nil means the current one.
	Env []string
	// Log receives one line per finished package, as they finish.
	Log io.Writer
}

// Args returns the `go test` arguments for o.
func (o Options) args() []string {
	a := []string{"test", "-json"}
	if o.Race {
		a = append(a, "-race")
	}
	if len(o.Tags) > 0 {
		a = append(a, "-tags="+strings.Join(o.Tags, ","))
	}
	if o.CoverProfile != "" {
		a = append(a, "-covermode=atomic", "-coverprofile="+o.CoverProfile)
		if o.CoverPkg != "" {
			a = append(a, "-coverpkg="+o.CoverPkg)
		}
	}
	if o.Timeout != "" {
		a = append(a, "-timeout="+o.Timeout)
	}
	a = append(a, o.Args...)
	if len(o.Packages) == 0 {
		return append(a, "./...")
	}
	return append(a, o.Packages...)
}

// ErrNoGo is returned when the go command is not on PATH.
var ErrNoGo = errors.New("the go command is not on PATH (install Go)")

// Run runs `go test -json` and returns the parsed report. Failing tests
// are not an error: they are in the report. An error means go test could
// not be run or was cancelled.
func Run(ctx context.Context, o Options) (*Report, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, ErrNoGo
	}
	cmd := proc.Command(ctx, goBin, o.args()...)
	cmd.Dir = o.Dir
	cmd.Env = o.Env
	if cmd.Env != nil && o.Race {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("run go test: %w", err)
	}
	run, err := proc.Start(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("run go test: %w", err)
	}
	p := NewParser()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		p.Line(line)
		if o.Log != nil {
			logPackageEnd(o.Log, line)
		}
	}
	scanErr := sc.Err()
	waitErr := run.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("go test: %w", ctx.Err())
	}
	if scanErr != nil {
		return nil, fmt.Errorf("read go test output: %w", scanErr)
	}
	r := p.Report()
	r.BuildErrors += stderr.String()
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return nil, fmt.Errorf("go test: %w", waitErr)
	}
	if waitErr != nil && len(r.Packages) == 0 {
		return r, fmt.Errorf("go test %s: %w\n%s", strings.Join(o.Packages, " "), waitErr, strings.TrimSpace(r.BuildErrors))
	}
	return r, nil
}

func logPackageEnd(w io.Writer, line []byte) {
	if !bytes.Contains(line, []byte(`"Test"`)) && (bytes.Contains(line, []byte(`"Action":"pass"`)) || bytes.Contains(line, []byte(`"Action":"fail"`)) || bytes.Contains(line, []byte(`"Action":"skip"`))) {
		var ev Event
		if err := json.Unmarshal(line, &ev); err == nil && ev.Package != "" {
			word := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[ev.Action]
			fmt.Fprintf(w, "%s %s %.2fs\n", word, ev.Package, ev.Elapsed)
		}
	}
}

// HTML renders the coverage profile as HTML with `go tool cover -html`,
// run in the module directory so the sources are found.
func HTML(ctx context.Context, dir, profile, out string, env []string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return ErrNoGo
	}
	cmd := proc.Command(ctx, goBin, "tool", "cover", "-html="+profile, "-o", out)
	cmd.Dir = dir
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go tool cover -html: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// ModulePath returns the module path declared by dir/go.mod.
func ModulePath(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("read module path: %w", err)
	}
	mp := modfile.ModulePath(b)
	if mp == "" {
		return "", fmt.Errorf("%s: no module line", filepath.Join(dir, "go.mod"))
	}
	return mp, nil
}
