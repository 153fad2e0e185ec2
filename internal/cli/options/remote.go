package options

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Remote selects a gantry server to talk to instead of the local state
// dir: --server URL (or $GANTRY_SERVER), authenticated with the API
// token of $GANTRY_TOKEN or --token-file.
type Remote struct {
	Server    string
	TokenFile string
}

// AddFlags registers the flags.
func (o *Remote) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Server, "server", "", "talk to the gantry server at this URL (https://, or http:// on the loopback) instead of the local state dir (default $GANTRY_SERVER)")
	fs.StringVar(&o.TokenFile, "token-file", "", "read the API token for --server from this file (mode 0600; default $GANTRY_TOKEN)")
}

// URL is the server to talk to: --server, else $GANTRY_SERVER; "" means
// the local state dir.
func (o *Remote) URL() string {
	if o.Server != "" {
		return o.Server
	}
	return os.Getenv("GANTRY_SERVER")
}

// Enabled reports whether a server was asked for.
func (o *Remote) Enabled() bool { return o.URL() != "" }

// Validate checks flag combinations.
func (o *Remote) Validate() error {
	if o.TokenFile != "" && !o.Enabled() {
		return errors.New("--token-file goes with --server (or GANTRY_SERVER)")
	}
	return nil
}

// Token returns the API token: the contents of --token-file (which must
// be readable by its owner only), else $GANTRY_TOKEN.
func (o *Remote) Token() (string, error) {
	if o.TokenFile == "" {
		tok := strings.TrimSpace(os.Getenv("GANTRY_TOKEN"))
		if tok == "" {
			return "", errors.New("no API token for the server: set GANTRY_TOKEN or --token-file (gantry token create makes one)")
		}
		return tok, nil
	}
	f, err := os.Open(o.TokenFile)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", o.TokenFile)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by other users (mode %v); gantry will not use it (chmod 600 %s)", o.TokenFile, perm, o.TokenFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("token file %s: longer than 4096 bytes, not a token", o.TokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", o.TokenFile)
	}
	return tok, nil
}
