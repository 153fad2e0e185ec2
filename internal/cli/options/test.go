package options

import "github.com/spf13/pflag"

// Test are the flags of `gantry test`.
type Test struct {
	Packages    []string
	Race        bool
	Tags        []string
	NoCoverage  bool
	CoverPkg    string
	Timeout     string
	MinCoverage float64
	Services    []string
	Out         string
}

// AddFlags registers the test flags.
func (o *Test) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVarP(&o.Packages, "packages", "p", nil, "package patterns (default ./...)")
	fs.BoolVar(&o.Race, "race", true, "enable the race detector")
	fs.StringSliceVar(&o.Tags, "tags", nil, "build tags, e.g. integration")
	fs.BoolVar(&o.NoCoverage, "no-coverage", false, "do not collect coverage")
	fs.StringVar(&o.CoverPkg, "coverpkg", "", "go test -coverpkg value")
	fs.StringVar(&o.Timeout, "timeout", "", "go test -timeout value")
	fs.Float64Var(&o.MinCoverage, "min-coverage", 0, "fail below this coverage percentage")
	fs.StringSliceVar(&o.Services, "services", nil, "services to start for the tests: postgres, redis, sqs")
	fs.StringVar(&o.Out, "out", "", "directory for junit.xml, coverage.out and coverage.html (default: a temp dir, printed)")
}
