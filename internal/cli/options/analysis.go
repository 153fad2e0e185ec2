package options

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Analysis are the flags of `gantry analysis run`.
type Analysis struct {
	Name     string
	Args     []string
	Timeout  time.Duration
	LoadURL  string
	LoadRate float64
}

// AddFlags registers the analysis flags.
func (o *Analysis) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Name, "name", "", "template to run when the file holds several")
	fs.StringArrayVar(&o.Args, "arg", nil, "template argument NAME=VALUE (repeatable)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "stop the run after this long (unfinished metrics are reported Stopped)")
	fs.StringVar(&o.LoadURL, "load-url", "", "send load to this URL during the run (feeds the gantry provider)")
	fs.Float64Var(&o.LoadRate, "load-rate", 50, "requests per second of --load-url")
}

// ArgMap parses the --arg values.
func (o *Analysis) ArgMap() (map[string]string, error) {
	out := map[string]string{}
	for _, a := range o.Args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q: want NAME=VALUE", a)
		}
		out[k] = v
	}
	return out, nil
}
