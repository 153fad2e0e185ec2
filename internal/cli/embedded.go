package cli

import (
	"context"
	"os"
	"strings"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/registry"
)

// reachEmbedded makes an image that a run pushed to the embedded registry
// reachable after the run: when image names a loopback registry that does
// not answer, the embedded registry is started from the state dir for the
// command (on its last address when free) and the reference is returned on
// that address. Any other image is returned as it is. stop ends what was
// started.
func reachEmbedded(ctx context.Context, g *options.Global, image string) (string, func(), error) {
	noop := func() {}
	host, _, ok := strings.Cut(image, "/")
	if !ok || !registry.IsLoopback(image) || registry.Ping(ctx, host) == nil {
		return image, noop, nil
	}
	stateDir, err := g.ResolveStateDir()
	if err != nil {
		return "", noop, err
	}
	if _, err := os.Stat(registry.Root(stateDir)); err != nil {
		return image, noop, nil // no embedded registry here; let the request fail as it will
	}
	ref, _, stop, err := registry.EnsureFor(ctx, stateDir, os.Environ(), nil, image)
	if err != nil {
		return "", noop, err
	}
	return ref, func() { _ = stop(context.WithoutCancel(ctx)) }, nil
}
