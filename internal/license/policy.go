package license

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// PolicyFile is the repository file holding the policy.
const PolicyFile = ".gantry/licenses.yaml"

// DefaultThreshold is the coverage percentage below which a licence is
// unknown.
const DefaultThreshold = 75

// Rule is one policy rule: a dependency for which Deny is true violates it.
type Rule struct {
	Name    string       `yaml:"name"`
	Deny    yamlx.String `yaml:"deny"`
	Message string       `yaml:"message"`
	Pos     yamlx.Pos
}

// Allow exempts a module from the policy.
type Allow struct {
	Module string `yaml:"module"`
	Reason string `yaml:"reason"`
	// Expires (YYYY-MM-DD, optional) ends the exemption after that day
	// (UTC), as risk exceptions do.
	Expires string `yaml:"expires"`
	Pos     yamlx.Pos
}

// Override sets the licence of a module the classifier cannot detect.
type Override struct {
	Module  string `yaml:"module"`
	License string `yaml:"license"`
	Pos     yamlx.Pos
}

// Config is the content of .gantry/licenses.yaml.
type Config struct {
	// Threshold is the lowest coverage percentage of a detected licence
	// (default 75).
	Threshold *float64 `yaml:"threshold"`
	// Rules replace the default rules when given.
	Rules     []Rule     `yaml:"rules"`
	Allow     []Allow    `yaml:"allow"`
	Overrides []Override `yaml:"overrides"`
}

// DefaultRules flag copyleft dependencies of a non-copyleft project and
// licences that could not be identified.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "copyleft", Message: "GPL-family licence in a project that is not GPL-licensed",
			Deny: yamlx.String{Value: `licenses.exists(l, l.matches("^(A|L)?GPL")) && !project.exists(l, l.matches("^(A|L)?GPL"))`}},
		{Name: "unknown", Message: "licence unknown or not identified with enough confidence",
			Deny: yamlx.String{Value: `licenses.size() == 0 || coverage < threshold`}},
	}
}

// Policy is a compiled configuration.
type Policy struct {
	Threshold float64
	// Now is the clock allow entries expire by (default time.Now).
	Now       func() time.Time
	rules     []compiled
	allow     map[string]allowed
	overrides map[string]string
}

type allowed struct {
	reason string
	until  time.Time // zero: no expiry
}

type compiled struct {
	Rule
	prg cel.Program
}

// LoadPolicy reads file (relative paths under dir); a missing file gives
// the default policy. Errors name file:line:col.
func LoadPolicy(dir, file string) (*Policy, error) {
	var c Config
	data, err := os.ReadFile(dir + "/" + file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read licence policy: %w", err)
	case len(strings.TrimSpace(string(data))) == 0:
	default:
		if err := yamlx.Decode(file, data, &c); err != nil {
			return nil, err
		}
	}
	return Compile(file, c)
}

// Compile checks and compiles a configuration read from file.
func Compile(file string, c Config) (*Policy, error) {
	env, err := cel.NewEnv(
		cel.Variable("module", cel.StringType),
		cel.Variable("version", cel.StringType),
		cel.Variable("licenses", cel.ListType(cel.StringType)),
		cel.Variable("coverage", cel.DoubleType),
		cel.Variable("threshold", cel.DoubleType),
		cel.Variable("project", cel.ListType(cel.StringType)),
	)
	if err != nil {
		return nil, fmt.Errorf("licence policy environment: %w", err)
	}
	p := &Policy{Threshold: DefaultThreshold, allow: map[string]allowed{}, overrides: map[string]string{}}
	if c.Threshold != nil {
		p.Threshold = *c.Threshold
	}
	rules := c.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	for _, r := range rules {
		if r.Name == "" || r.Deny.Value == "" {
			return nil, r.Pos.Errorf(file, "a rule needs a name and a deny expression")
		}
		ast, iss := env.Compile(r.Deny.Value)
		if iss != nil && iss.Err() != nil {
			return nil, r.Deny.Pos.Errorf(file, "rule %s: %v", r.Name, strings.ReplaceAll(iss.Err().Error(), "\n", " "))
		}
		if ast.OutputType() != cel.BoolType {
			return nil, r.Deny.Pos.Errorf(file, "rule %s: deny must be a bool expression, not %s", r.Name, ast.OutputType())
		}
		prg, err := env.Program(ast)
		if err != nil {
			return nil, r.Deny.Pos.Errorf(file, "rule %s: %v", r.Name, err)
		}
		p.rules = append(p.rules, compiled{Rule: r, prg: prg})
	}
	for _, a := range c.Allow {
		if a.Module == "" || strings.TrimSpace(a.Reason) == "" {
			return nil, a.Pos.Errorf(file, "allow entry %q needs a module and a reason", a.Module)
		}
		e := allowed{reason: a.Reason}
		if a.Expires != "" {
			d, err := time.Parse("2006-01-02", a.Expires)
			if err != nil {
				return nil, a.Pos.Errorf(file, "allow entry %q: expires %q is not a date (YYYY-MM-DD)", a.Module, a.Expires)
			}
			e.until = d.AddDate(0, 0, 1)
		}
		p.allow[a.Module] = e
	}
	for _, o := range c.Overrides {
		if o.Module == "" || o.License == "" {
			return nil, o.Pos.Errorf(file, "override entry %q needs a module and a license", o.Module)
		}
		p.overrides[o.Module] = o.License
	}
	return p, nil
}

// Violation is a dependency that breaks a rule.
type Violation struct {
	Module  string `json:"module"`
	Version string `json:"version,omitempty"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Override applies the override for m, if any.
func (p *Policy) Override(m *Module) {
	if l, ok := p.overrides[m.Path]; ok {
		m.Licenses, m.Coverage, m.Source = []string{l}, 100, "override"
	}
}

// Unknown reports whether m's licence is unknown under the threshold.
func (p *Policy) Unknown(m Module) bool {
	return len(m.Licenses) == 0 || m.Coverage < p.Threshold
}

// Allowed returns the allowlist reason for a module; an entry past its
// expiry date allows nothing.
func (p *Policy) Allowed(module string) (string, bool) {
	a, ok := p.allow[module]
	if !ok {
		return "", false
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if !a.until.IsZero() && !now().Before(a.until) {
		return "", false
	}
	return a.reason, true
}

// Evaluate returns the rules m breaks in a project licensed under
// project (SPDX ids).
func (p *Policy) Evaluate(m Module, project []string) ([]Violation, error) {
	licenses := m.Licenses
	if licenses == nil {
		licenses = []string{}
	}
	if project == nil {
		project = []string{}
	}
	vars := map[string]any{"module": m.Path, "version": m.Version, "licenses": licenses,
		"coverage": m.Coverage, "threshold": p.Threshold, "project": project}
	var out []Violation
	for _, r := range p.rules {
		v, _, err := r.prg.Eval(vars)
		if err != nil {
			return nil, fmt.Errorf("licence rule %s on %s: %w", r.Name, m.Path, err)
		}
		if b, ok := v.Value().(bool); ok && b {
			msg := r.Message
			if msg == "" {
				msg = "denied by rule " + r.Name
			}
			out = append(out, Violation{Module: m.Path, Version: m.Version, Rule: r.Name, Message: msg})
		}
	}
	return out, nil
}
