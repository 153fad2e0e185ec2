package options

import "github.com/spf13/pflag"

// Registry are the flags of `gantry registry serve`.
type Registry struct {
	Addr string
	Root string
}

// AddFlags registers the registry flags.
func (o *Registry) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:5000", "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&o.Root, "root", "", "directory for the registry's content (default STATE_DIR/registry/data)")
}
