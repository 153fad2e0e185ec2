package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ResolveSecrets reads every declared secret: from its environment
// variable, or from its file (relative to dir, or ~/...). Unset secrets are
// left out; a file that exists but cannot be read is an error.
func ResolveSecrets(p *Pipeline, dir string) (map[string]string, error) {
	vals := map[string]string{}
	names := make([]string, 0, len(p.Secrets))
	for n := range p.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := p.Secrets[name]
		var v string
		switch {
		case s.Env != "":
			v = os.Getenv(s.Env)
		case s.File != "":
			path := s.File
			if strings.HasPrefix(path, "~/") {
				if home, err := os.UserHomeDir(); err == nil {
					path = filepath.Join(home, path[2:])
				}
			} else if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			b, err := os.ReadFile(path)
			if err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("secret %s: read %s: %w", name, s.File, err)
			}
			v = strings.TrimRight(string(b), "\r\n")
		}
		if v != "" {
			vals[name] = v
		}
	}
	return vals, nil
}
