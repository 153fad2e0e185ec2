package options

import (
	"github.com/spf13/pflag"
)

// SAST are the flags of `gantry sast`.
type SAST struct {
	FailOn       string
	SARIF        string
	Rules        []string
	ExcludeRules []string
	Tests        bool
	NoSecrets    bool
	History      string
	From         string
	To           string
	Snyk         string
}

// AddFlags registers the sast flags.
func (o *SAST) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.FailOn, "fail-on", "warning", "lowest severity that fails: error, warning or note (gosec HIGH=error, MEDIUM=warning, LOW=note)")
	fs.StringVar(&o.SARIF, "sarif", "", "write the findings as SARIF 2.1.0 to this file")
	fs.StringArrayVar(&o.Rules, "rule", nil, "run only this gosec rule, e.g. G402 (repeatable)")
	fs.StringArrayVar(&o.ExcludeRules, "exclude-rule", nil, "do not run this gosec rule (repeatable)")
	fs.BoolVar(&o.Tests, "tests", false, "also analyse _test.go files")
	fs.BoolVar(&o.NoSecrets, "no-secrets", false, "skip the secrets detector")
	fs.StringVar(&o.History, "history", "range", "git history scanned for secrets: range (--from..--to, or --to alone), all or none")
	fs.StringVar(&o.From, "from", "", "scan the commits after this revision for secrets")
	fs.StringVar(&o.To, "to", "HEAD", "scan the commits up to this revision for secrets")
	fs.StringVar(&o.Snyk, "snyk", "auto", "snyk code test: auto (when SNYK_TOKEN is set and snyk is on PATH), off or required")
}
