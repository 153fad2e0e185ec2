package sast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
)

// SnykTokenVar is the environment variable (usually a pipeline secret)
// that enables the Snyk adapter.
const SnykTokenVar = "SNYK_TOKEN"

// ErrSnykUnavailable says the Snyk adapter cannot run: no token or no
// snyk binary on PATH.
var ErrSnykUnavailable = errors.New("snyk: no SNYK_TOKEN or no snyk on PATH")

// Snyk runs `snyk code test --sarif` in dir with the environment env
// (which must hold SNYK_TOKEN and a PATH where snyk is found) and returns
// its findings. Exit status 1 (issues found) is success; any other
// failure is an error that carries snyk's stderr, never the token.
func Snyk(ctx context.Context, dir string, env []string) ([]*findings.Report, error) {
	if lookupEnv(env, SnykTokenVar) == "" {
		return nil, ErrSnykUnavailable
	}
	bin, err := lookPath("snyk", lookupEnv(env, "PATH"))
	if err != nil {
		return nil, ErrSnykUnavailable
	}
	cmd := proc.Command(ctx, bin, "code", "test", "--sarif")
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return nil, fmt.Errorf("snyk code test in %s: %w: %s", dir, err, redact(strings.TrimSpace(stderr.String()), lookupEnv(env, SnykTokenVar)))
	}
	reports, err := findings.ReadSARIF(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("snyk code test output: %w", err)
	}
	for _, r := range reports {
		if r.Tool == "" {
			r.Tool = "snyk"
		}
		for i := range r.Findings {
			r.Findings[i].File = relPath(dir, r.Findings[i].File)
		}
		r.Sort()
	}
	return reports, nil
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}

func lookupEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// lookPath finds an executable in the PATH of a child environment.
func lookPath(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
