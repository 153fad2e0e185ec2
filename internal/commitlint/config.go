package commitlint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// ConventionalPreset is the only shareable config gantry bundles.
const ConventionalPreset = "@commitlint/config-conventional"

// Config is a rule set and whether the default ignores apply.
type Config struct {
	Rules map[string]RuleConfig
	// NoDefaultIgnores turns off the merge/revert/fixup ignores
	// (commitlint's defaultIgnores: false).
	NoDefaultIgnores bool
	// CommentChar, when set, drops comment lines as commitlint --edit
	// does for .git/COMMIT_EDITMSG.
	CommentChar string
	// File is the config file the rules came from, "" for the defaults.
	File string
}

// ConventionalTypes are config-conventional's type-enum values.
var ConventionalTypes = []string{"build", "chore", "ci", "docs", "feat", "fix", "perf", "refactor", "revert", "style", "test"}

// Conventional returns @commitlint/config-conventional's rules.
func Conventional() Config {
	types := make([]any, len(ConventionalTypes))
	for i, t := range ConventionalTypes {
		types[i] = t
	}
	return Config{Rules: map[string]RuleConfig{
		"body-leading-blank":     {Warn, "always", nil},
		"body-max-line-length":   {Err, "always", 100},
		"footer-leading-blank":   {Warn, "always", nil},
		"footer-max-line-length": {Err, "always", 100},
		"header-max-length":      {Err, "always", 100},
		"header-trim":            {Err, "always", nil},
		"subject-case":           {Err, "never", []any{"sentence-case", "start-case", "pascal-case", "upper-case"}},
		"subject-empty":          {Err, "never", nil},
		"subject-full-stop":      {Err, "never", "."},
		"type-case":              {Err, "always", "lower-case"},
		"type-empty":             {Err, "never", nil},
		"type-enum":              {Err, "always", types},
	}}
}

// ConfigFiles are the names looked for in a repository's root, in order.
var ConfigFiles = []string{".commitlintrc.json", ".commitlintrc.yaml", ".commitlintrc.yml", ".commitlintrc", "commitlint.config.json"}

// LoadConfig reads the first commitlint config file in dir. Without one,
// the rules are config-conventional's.
func LoadConfig(dir string) (Config, error) {
	for _, name := range ConfigFiles {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Config{}, fmt.Errorf("read commitlint config: %w", err)
		}
		return ParseConfig(name, data)
	}
	return Conventional(), nil
}

// ParseConfig reads a commitlint config in JSON or YAML form: extends
// (only config-conventional is bundled), rules as [level, when, value],
// defaultIgnores. Like commitlint, a config that extends nothing starts
// from no rules.
func ParseConfig(file string, data []byte) (Config, error) {
	root, err := yamlx.Parse(file, data)
	if err != nil {
		return Config{}, err
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, yamlx.Errorf(file, root, "commitlint config must be an object")
	}
	cfg := Config{Rules: map[string]RuleConfig{}, File: file}
	var rulesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "extends":
			list := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				list = v.Content
			}
			for _, e := range list {
				switch e.Value {
				case ConventionalPreset, "config-conventional", "@commitlint/config-conventional/lib/index.js":
					for name, rc := range Conventional().Rules {
						cfg.Rules[name] = rc
					}
				default:
					return Config{}, yamlx.Errorf(file, e, "extends %q: gantry bundles only %s", e.Value, ConventionalPreset)
				}
			}
		case "rules":
			rulesNode = v
		case "defaultIgnores":
			b, err := strconv.ParseBool(v.Value)
			if err != nil {
				return Config{}, yamlx.Errorf(file, v, "defaultIgnores must be true or false")
			}
			cfg.NoDefaultIgnores = !b
		case "parserPreset", "formatter", "helpUrl", "prompt", "plugins", "ignores":
			// Accepted and not used: gantry's parser is the conventional
			// one; ignores/plugins are JavaScript functions.
		default:
			return Config{}, yamlx.Errorf(file, k, "unknown commitlint config field %q", k.Value)
		}
	}
	if rulesNode != nil {
		if rulesNode.Kind != yaml.MappingNode {
			return Config{}, yamlx.Errorf(file, rulesNode, "rules must be an object")
		}
		for i := 0; i+1 < len(rulesNode.Content); i += 2 {
			k, v := rulesNode.Content[i], rulesNode.Content[i+1]
			rc, err := parseRule(file, k, v)
			if err != nil {
				return Config{}, err
			}
			cfg.Rules[k.Value] = rc
		}
	}
	return cfg, nil
}

func parseRule(file string, k, v *yaml.Node) (RuleConfig, error) {
	if !Known(k.Value) {
		return RuleConfig{}, yamlx.Errorf(file, k, "rule %q is not implemented by gantry", k.Value)
	}
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return RuleConfig{}, yamlx.Errorf(file, v, "config for rule %s must be an array [level, when, value]", k.Value)
	}
	lvl, err := strconv.Atoi(v.Content[0].Value)
	if err != nil || lvl < 0 || lvl > 2 {
		return RuleConfig{}, yamlx.Errorf(file, v.Content[0], "level for rule %s must be 0, 1 or 2", k.Value)
	}
	if lvl == 0 && len(v.Content) == 1 {
		return RuleConfig{Level: Disabled}, nil
	}
	if len(v.Content) < 2 || len(v.Content) > 3 {
		return RuleConfig{}, yamlx.Errorf(file, v, "config for rule %s must be 2 or 3 items long", k.Value)
	}
	when := v.Content[1].Value
	if when != "always" && when != "never" {
		return RuleConfig{}, yamlx.Errorf(file, v.Content[1], "condition for rule %s must be \"always\" or \"never\"", k.Value)
	}
	rc := RuleConfig{Level: Level(lvl), When: when}
	if len(v.Content) == 3 {
		var val any
		if err := v.Content[2].Decode(&val); err != nil {
			return RuleConfig{}, yamlx.Errorf(file, v.Content[2], "value for rule %s: %v", k.Value, err)
		}
		rc.Value = val
	}
	return rc, nil
}

// Result is the verdict on one message.
type Result struct {
	Commit   Commit
	Ignored  bool
	Problems []Problem
}

// Valid reports whether no rule at error level failed.
func (r Result) Valid() bool {
	for _, p := range r.Problems {
		if p.Level == Err {
			return false
		}
	}
	return true
}

// Lint checks one commit message.
func (cfg Config) Lint(message string) Result {
	if !cfg.NoDefaultIgnores && Ignored(message) {
		return Result{Ignored: true}
	}
	c := Parse(message, cfg.CommentChar)
	res := Result{Commit: c}
	if c.Empty {
		return res
	}
	names := make([]string, 0, len(cfg.Rules))
	for n := range cfg.Rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rc := cfg.Rules[n]
		if rc.Level == Disabled {
			continue
		}
		when := rc.When
		if when == "" {
			when = "always"
		}
		ok, m := rules[n](c, when, rc.Value)
		if !ok {
			res.Problems = append(res.Problems, Problem{Rule: n, Level: rc.Level, Message: m})
		}
	}
	return res
}
