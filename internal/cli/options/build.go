package options

import "github.com/spf13/pflag"

// Build are the flags of `gantry build`.
type Build struct {
	Image     string
	Push      bool
	Tags      []string
	Platforms []string
	Package   string
	Base      string
	NoCache   bool
}

// AddFlags registers the build flags.
func (o *Build) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Image, "image", "", "image reference REPO[:TAG]; REPO \"embedded/NAME\" means the embedded registry")
	fs.BoolVar(&o.Push, "push", false, "push the image to --image's registry")
	fs.StringSliceVar(&o.Tags, "tag", nil, "extra tags to push")
	fs.StringSliceVar(&o.Platforms, "platform", nil, "platforms os/arch (default linux/amd64,linux/arm64)")
	fs.StringVar(&o.Package, "package", "", "main package (default ./cmd/<only dir> or .)")
	fs.StringVar(&o.Base, "base", "", "base image reference (default: gantry's local distroless-style base)")
	fs.BoolVar(&o.NoCache, "no-cache", false, "compile even when the inputs are unchanged")
}
