package options

import (
	"fmt"

	"github.com/spf13/pflag"
)

// Output selects how listing commands print.
type Output struct {
	Format string
}

// AddFlags registers --output.
func (o *Output) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.Format, "output", "o", "table", "output format: table, json or yaml")
}

// Validate rejects unknown formats.
func (o *Output) Validate() error {
	switch o.Format {
	case "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output must be table, json or yaml, not %q", o.Format)
}
