package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Secrets gives the sink the signing secret of an environment.
type Secrets interface {
	// Secret returns env's secret, or an error wrapping
	// ErrUnknownEnvironment when the sink serves no such environment.
	Secret(ctx context.Context, env string) (string, error)
}

// ErrUnknownEnvironment is returned for an environment the sink does not
// serve; the handler answers 404.
var ErrUnknownEnvironment = errors.New("unknown environment")

// SecretPrefix starts every generated secret, as the example service's
// endpoint secrets do.
const SecretPrefix = "whsec_"

var envName = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// ValidEnvironment reports whether env can name an environment's sink
// (lower-case letters, digits, '-' and '_', at most 63 characters): it is
// used in URLs and file names.
func ValidEnvironment(env string) bool { return envName.MatchString(env) }

// FileSecrets keeps one secret per environment in Dir (STATE_DIR/sink
// usually), as ENV.secret with mode 0600, generated on first use (256
// random bits). A secret once written never changes, so a restarted
// serve process hands its services the same one.
type FileSecrets struct {
	Dir string
	// Known, when set, says which environments exist; others are
	// ErrUnknownEnvironment, so requests for made-up names create no
	// files. The serve process sets it from its environments.
	Known func(env string) bool
}

var _ Secrets = FileSecrets{}

// Secret returns env's secret, creating it on first use. Two processes
// creating it at once agree: the file is linked into place only if absent.
func (f FileSecrets) Secret(_ context.Context, env string) (string, error) {
	if !ValidEnvironment(env) {
		return "", fmt.Errorf("sink secret of %q: %w (want lower-case letters, digits, '-' and '_')", env, ErrUnknownEnvironment)
	}
	if f.Known != nil && !f.Known(env) {
		return "", fmt.Errorf("sink secret of %s: %w", env, ErrUnknownEnvironment)
	}
	path := filepath.Join(f.Dir, env+".secret")
	if s, err := readSecret(path); err == nil {
		return s, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	secret := SecretPrefix + hex.EncodeToString(b)
	tmp, err := os.CreateTemp(f.Dir, ".secret-*")
	if err != nil {
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create sink secret of %s: %w", env, err)
	}
	return readSecret(path)
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read sink secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("read sink secret: %s is empty", path)
	}
	return s, nil
}
