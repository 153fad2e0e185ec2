package options

import (
	"github.com/spf13/pflag"
)

// Check are the flags of `gantry check`.
type Check struct {
	FailOn    string
	SARIF     string
	Artifacts string
	// golangci-lint, tflint
	Config string
	// kubeconform
	Kustomize    []string
	Helm         []string
	CRDs         []string
	UnknownKinds string
	SkipKinds    []string
	// helm-lint, helm-template, kubeconform --helm
	Values []string
	Set    []string
	Strict bool
	// commitlint
	From string
	To   string
	Edit string
}

// AddFlags registers the check flags.
func (o *Check) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.FailOn, "fail-on", "error", "lowest severity that fails the check: error, warning or note")
	fs.StringVar(&o.SARIF, "sarif", "", "write the findings as SARIF 2.1.0 to this file")
	fs.StringVar(&o.Artifacts, "artifacts", "", "write the check's other artifacts (diffs, renderings) to this directory")
	fs.StringVar(&o.Config, "config", "", "golangci-lint or tflint config file")
	fs.StringArrayVar(&o.Kustomize, "kustomize", nil, "kubeconform: kustomization directory to build and validate (repeatable)")
	fs.StringArrayVar(&o.Helm, "helm", nil, "kubeconform: chart to render and validate (repeatable)")
	fs.StringArrayVar(&o.CRDs, "crd", nil, "kubeconform: CustomResourceDefinition file whose schema applies (repeatable)")
	fs.StringVar(&o.UnknownKinds, "unknown-kinds", "reject", "kubeconform: kinds without a schema: reject or skip")
	fs.StringArrayVar(&o.SkipKinds, "skip-kind", nil, "kubeconform: kind never validated (repeatable)")
	fs.StringArrayVarP(&o.Values, "values", "f", nil, "helm: values file (repeatable)")
	fs.StringArrayVar(&o.Set, "set", nil, "helm: key=value override (repeatable)")
	fs.BoolVar(&o.Strict, "strict", false, "helm-lint: fail on warnings")
	fs.StringVar(&o.From, "from", "", "commitlint: lint commits after this revision")
	fs.StringVar(&o.To, "to", "", "commitlint: lint commits up to this revision (default HEAD)")
	fs.StringVar(&o.Edit, "edit", "", "commitlint: lint the message in this file (comments stripped), e.g. .git/COMMIT_EDITMSG")
}
