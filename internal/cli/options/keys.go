package options

import "github.com/spf13/pflag"

// Keys are the flags of `gantry keys generate`.
type Keys struct {
	Dir string
}

// AddFlags registers the keys flags.
func (o *Keys) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", ".", "directory to write cosign.key and cosign.pub into")
}
