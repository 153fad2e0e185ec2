package commitlint

import (
	"slices"
	"strings"
	"testing"
)

func problemNames(r Result) []string {
	var out []string
	for _, p := range r.Problems {
		n := p.Rule
		if p.Level == Warn {
			n = "!" + n
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestLintConventional(t *testing.T) {
	cfg := Conventional()
	for _, tc := range messages {
		t.Run(tc.name, func(t *testing.T) {
			got := problemNames(cfg.Lint(tc.msg))
			if !slices.Equal(got, sorted(tc.want)) {
				t.Errorf("Lint(%q) = %v, want %v", tc.msg, got, sorted(tc.want))
			}
		})
	}
}

func TestMessages(t *testing.T) {
	r := Conventional().Lint("Feat: Add thing.\nbody")
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.Rule+": "+p.Message)
	}
	want := []string{
		"body-leading-blank: body must have leading blank line",
		"subject-case: subject must not be sentence-case, start-case, pascal-case, upper-case",
		"subject-full-stop: subject may not end with full stop",
		"type-case: type must be lower-case",
		"type-enum: type must be one of [build, chore, ci, docs, feat, fix, perf, refactor, revert, style, test]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Valid() {
		t.Error("Valid() = true, want false")
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		msg                               string
		typ, scope, subject, body, footer string
		breaking                          bool
	}{
		{"feat(api)!: drop v1", "feat", "api", "drop v1", "", "", true},
		{"fix: x\n\nbody one\nbody two\n\nCloses #4\nReviewed-by: me", "fix", "", "x", "body one\nbody two", "Closes #4\nReviewed-by: me", false},
		{"feat: x\n\nBREAKING CHANGE: gone\nreally", "feat", "", "x", "", "BREAKING CHANGE: gone\nreally", true},
		{"feat: x\n\nBREAKING-CHANGE: gone", "feat", "", "x", "", "BREAKING-CHANGE: gone", true},
		{"not conventional", "", "", "", "", "", false},
	} {
		c := Parse(tc.msg, "")
		if c.Type != tc.typ || c.Scope != tc.scope || c.Subject != tc.subject || c.Body != tc.body || c.Footer != tc.footer || c.Breaking != tc.breaking {
			t.Errorf("Parse(%q) = %+v", tc.msg, c)
		}
	}
}

func TestConfigOverrides(t *testing.T) {
	cfg, err := ParseConfig(".commitlintrc.json", []byte(`{
  "extends": ["@commitlint/config-conventional"],
  "rules": {
    "header-max-length": [2, "always", 72],
    "type-enum": [2, "always", ["feat", "fix", "deps"]],
    "subject-case": [0],
    "scope-enum": [1, "always", ["api", "db"]]
  }
}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		msg  string
		want []string
	}{
		{"deps: bump x", nil},
		{"chore: bump x", []string{"type-enum"}},
		{"feat: Sentence case is fine now", nil},
		{"feat(ui): x", []string{"!scope-enum"}},
		{"feat(api/db): x", nil},
		{"feat: " + repeat("a", 67), []string{"header-max-length"}},
	} {
		if got := problemNames(cfg.Lint(tc.msg)); !slices.Equal(got, sorted(tc.want)) {
			t.Errorf("Lint(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"unknown rule", `{"rules": {"no-such-rule": [2, "always"]}}`, `.commitlintrc.json:1:12: rule "no-such-rule" is not implemented by gantry`},
		{"bad level", `{"rules": {"type-enum": [3, "always", []]}}`, `.commitlintrc.json:1:26: level for rule type-enum must be 0, 1 or 2`},
		{"bad when", "rules:\n  type-enum: [2, sometimes, []]\n", `.commitlintrc.json:2:18: condition for rule type-enum must be "always" or "never"`},
		{"other preset", `{"extends": "@commitlint/config-angular"}`, `.commitlintrc.json:1:13: extends "@commitlint/config-angular": gantry bundles only @commitlint/config-conventional`},
		{"broken", `{"rules": `, `.commitlintrc.json:1:1:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(".commitlintrc.json", []byte(tc.data))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestEditStripsComments(t *testing.T) {
	cfg := Conventional()
	cfg.CommentChar = "#"
	msg := "feat: add x\n# Please enter the commit message\n# ------------------------ >8 ------------------------\nFeat: Y."
	if got := problemNames(cfg.Lint(msg)); len(got) != 0 {
		t.Errorf("got %v, want none", got)
	}
}

func TestNoExtendsHasNoRules(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("rules:\n  type-empty: [2, never]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := problemNames(cfg.Lint("Whatever Goes.")); !slices.Equal(got, []string{"type-empty"}) {
		t.Errorf("got %v", got)
	}
}

func FuzzLint(f *testing.F) {
	for _, m := range messages {
		f.Add(m.msg)
	}
	cfg := Conventional()
	f.Fuzz(func(t *testing.T, msg string) {
		_ = cfg.Lint(msg)
	})
}
