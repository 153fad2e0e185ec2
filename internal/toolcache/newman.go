package toolcache

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// NewmanVersion is the pinned newman (Postman's collection runner).
const NewmanVersion = "6.2.2"

// Newman is the pinned newman, installed with npm into the cache on first
// use. It runs on the Node.js on PATH (newman 6 needs Node.js >= 16).
var Newman = NPMTool{Name: "newman", Version: NewmanVersion, Packages: []string{"newman@" + NewmanVersion}}

// EnsureNewman returns the path of newman's command-line script
// (node_modules/newman/bin/newman.js), installing newman first if needed;
// once installed it needs no network. Progress of an install goes to
// progress (may be nil).
func (c *Cache) EnsureNewman(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := c.EnsureNPM(ctx, Newman, progress)
	if err != nil {
		return "", err
	}
	script := filepath.Join(dir, "node_modules", "newman", "bin", "newman.js")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("newman %s in the tool cache is incomplete (remove %s to reinstall it): %w", NewmanVersion, dir, err)
	}
	return script, nil
}
