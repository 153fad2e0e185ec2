package commitlint

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
)

// Level is a rule's severity as commitlint numbers it.
type Level int

// Rule levels.
const (
	Disabled Level = 0
	Warn     Level = 1
	Err      Level = 2
)

// RuleConfig is one rule's [level, when, value] setting.
type RuleConfig struct {
	Level Level
	// When is "always" or "never".
	When  string
	Value any
}

// Problem is one failed rule.
type Problem struct {
	Rule    string
	Level   Level
	Message string
}

// ruleFunc reports whether c passes and the message for a failure.
type ruleFunc func(c Commit, when string, value any) (bool, string)

var rules = map[string]ruleFunc{
	"body-leading-blank":     bodyLeadingBlank,
	"footer-leading-blank":   footerLeadingBlank,
	"body-max-line-length":   maxLineLen(func(c Commit) string { return c.Body }, "body's lines"),
	"footer-max-line-length": maxLineLen(func(c Commit) string { return c.Footer }, "footer's lines"),
	"body-max-length":        maxLen(func(c Commit) string { return c.Body }, "body"),
	"footer-max-length":      maxLen(func(c Commit) string { return c.Footer }, "footer"),
	"header-max-length":      headerMaxLength,
	"header-min-length":      minLen(func(c Commit) string { return c.Header }, "header"),
	"subject-max-length":     maxLen(func(c Commit) string { return c.Subject }, "subject"),
	"subject-min-length":     minLen(func(c Commit) string { return c.Subject }, "subject"),
	"type-max-length":        maxLen(func(c Commit) string { return c.Type }, "type"),
	"type-min-length":        minLen(func(c Commit) string { return c.Type }, "type"),
	"header-trim":            headerTrim,
	"subject-case":           caseRule(func(c Commit) string { return c.Subject }, "subject", true),
	"type-case":              caseRule(func(c Commit) string { return c.Type }, "type", false),
	"scope-case":             caseRule(func(c Commit) string { return c.Scope }, "scope", false),
	"subject-empty":          emptyRule(func(c Commit) string { return c.Subject }, "subject"),
	"type-empty":             emptyRule(func(c Commit) string { return c.Type }, "type"),
	"scope-empty":            emptyRule(func(c Commit) string { return c.Scope }, "scope"),
	"body-empty":             emptyRule(func(c Commit) string { return c.Body }, "body"),
	"footer-empty":           emptyRule(func(c Commit) string { return c.Footer }, "footer"),
	"subject-full-stop":      subjectFullStop,
	"type-enum":              typeEnum,
	"scope-enum":             scopeEnum,
}

// Known reports whether gantry implements the rule name.
func Known(name string) bool { _, ok := rules[name]; return ok }

func msg(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func neg(when string) bool { return when == "never" }

func mustOr(when string) string {
	if neg(when) {
		return "may not"
	}
	return "must"
}

func toLines(s string) []string { return lineBreak.Split(s, -1) }

// jsLen is a string's length in UTF-16 code units, as JavaScript counts.
func jsLen(s string) int { return len(utf16.Encode([]rune(s))) }

func intValue(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

func bodyLeadingBlank(c Commit, when string, _ any) (bool, string) {
	if c.Body == "" {
		return true, ""
	}
	lines := toLines(c.Raw)
	ok := len(lines) > 1 && lines[1] == ""
	return ok != neg(when), msg("body", mustOr(when), "have leading blank line")
}

func footerLeadingBlank(c Commit, when string, _ any) (bool, string) {
	if c.Footer == "" {
		return true, ""
	}
	raw := toLines(c.Raw)
	first := toLines(c.Footer)[0]
	off := indexOf(raw, first)
	// JavaScript's rawLines.slice(off-1)[0], negative offsets counting from the end.
	i := off - 1
	if i < 0 {
		i += len(raw)
	}
	ok := i >= 0 && i < len(raw) && raw[i] == ""
	return ok != neg(when), msg("footer", mustOr(when), "have leading blank line")
}

var longLineURL = regexp.MustCompile(`\bhttps?://\S+`)

func maxLineLen(field func(Commit) string, what string) ruleFunc {
	return func(c Commit, _ string, v any) (bool, string) {
		s := field(c)
		if s == "" {
			return true, ""
		}
		max := intValue(v)
		for _, l := range toLines(s) {
			if !longLineURL.MatchString(l) && jsLen(l) > max {
				return false, fmt.Sprintf("%s must not be longer than %d characters", what, max)
			}
		}
		return true, ""
	}
}

func maxLen(field func(Commit) string, what string) ruleFunc {
	return func(c Commit, _ string, v any) (bool, string) {
		s := field(c)
		if s == "" {
			return true, ""
		}
		max := intValue(v)
		return jsLen(s) <= max, fmt.Sprintf("%s must not be longer than %d characters", what, max)
	}
}

func minLen(field func(Commit) string, what string) ruleFunc {
	return func(c Commit, _ string, v any) (bool, string) {
		s := field(c)
		if s == "" {
			return true, ""
		}
		min := intValue(v)
		return jsLen(s) >= min, fmt.Sprintf("%s must not be shorter than %d characters", what, min)
	}
}

func headerMaxLength(c Commit, _ string, v any) (bool, string) {
	max := intValue(v)
	n := jsLen(c.Header)
	return n <= max, fmt.Sprintf("header must not be longer than %d characters, current length is %d", max, n)
}

func isJSSpace(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' }

func headerTrim(c Commit, _ string, _ any) (bool, string) {
	h := c.Header
	if h == "" {
		return true, ""
	}
	start := strings.TrimLeftFunc(h, isJSSpace) != h
	end := strings.TrimRightFunc(h, isJSSpace) != h
	switch {
	case start && end:
		return false, "header must not be surrounded by whitespace"
	case start:
		return false, "header must not start with whitespace"
	case end:
		return false, "header must not end with whitespace"
	}
	return true, ""
}

func emptyRule(field func(Commit) string, what string) ruleFunc {
	return func(c Commit, when string, _ any) (bool, string) {
		notEmpty := field(c) != ""
		if neg(when) {
			return notEmpty, msg(what, "may not be empty")
		}
		return !notEmpty, msg(what, "must be empty")
	}
}

func subjectFullStop(c Commit, when string, v any) (bool, string) {
	stop, _ := v.(string)
	if stop == "" {
		stop = "."
	}
	h := c.Header
	if i := strings.Index(h, ":"); i > 0 && i == len(h)-1 {
		return true, ""
	}
	has := h != "" && strings.HasSuffix(h, stop) && len(h) >= len(stop)
	if strings.HasSuffix(h, "...") {
		has = false
	}
	return has != neg(when), msg("subject", mustOr(when), "end with full stop")
}

func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		var out []string
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return []string{l}
	}
	return nil
}

func typeEnum(c Commit, when string, v any) (bool, string) {
	if c.Type == "" {
		return true, ""
	}
	list := stringList(v)
	in := slices.Contains(list, c.Type)
	not := ""
	if neg(when) {
		not = "not"
	}
	return in != neg(when), msg("type must", not, "be one of ["+strings.Join(list, ", ")+"]")
}

var scopeDelims = regexp.MustCompile(`/|\\|, ?`)

func scopeEnum(c Commit, when string, v any) (bool, string) {
	list := stringList(v)
	if c.Scope == "" || len(list) == 0 {
		return true, ""
	}
	parts := scopeDelims.Split(c.Scope, -1)
	in := func(s string) bool { return slices.Contains(list, s) }
	m := "scope must be one of [" + strings.Join(list, ", ") + "]"
	if neg(when) {
		return !slices.ContainsFunc(parts, in) && !in(c.Scope), "scope must not be one of [" + strings.Join(list, ", ") + "]"
	}
	all := true
	for _, p := range parts {
		all = all && in(p)
	}
	return all || in(c.Scope), m
}

var startsWithCasedLetter = regexp.MustCompile(`^[\p{Ll}\p{Lu}\p{Lt}]`)

func caseRule(field func(Commit) string, what string, needLetter bool) ruleFunc {
	return func(c Commit, when string, v any) (bool, string) {
		s := field(c)
		if s == "" || needLetter && !startsWithCasedLetter.MatchString(s) {
			return true, ""
		}
		cases := stringList(v)
		matched := false
		for _, cs := range cases {
			if ensureCase(s, cs) {
				matched = true
				break
			}
		}
		not := ""
		if neg(when) {
			not = "not"
		}
		return matched != neg(when), msg(what+" must", not, "be "+strings.Join(cases, ", "))
	}
}

var quoted = regexp.MustCompile("`.*?`|\".*?\"|'.*?'")

// ensureCase is @commitlint/ensure's case check: quoted parts are ignored,
// and an input that becomes empty or starts with a digit passes.
func ensureCase(raw, target string) bool {
	in := strings.TrimFunc(quoted.ReplaceAllString(raw, ""), isJSSpace)
	got := toCase(in, target)
	if got == "" || got[0] >= '0' && got[0] <= '9' {
		return true
	}
	return got == in
}

func toCase(s, target string) string {
	switch target {
	case "lower-case", "lowercase", "lowerCase":
		return strings.ToLower(s)
	case "upper-case", "uppercase":
		return strings.ToUpper(s)
	case "sentence-case", "sentencecase":
		return upperFirst(s)
	case "start-case":
		ws := words(s)
		for i, w := range ws {
			ws[i] = upperFirst(w)
		}
		return strings.Join(ws, " ")
	case "pascal-case":
		return upperFirst(camel(s))
	case "camel-case":
		return camel(s)
	case "kebab-case":
		return strings.ToLower(strings.Join(words(s), "-"))
	case "snake-case":
		return strings.ToLower(strings.Join(words(s), "_"))
	}
	return s
}

func upperFirst(s string) string {
	for i, r := range s {
		return string(unicode.ToUpper(r)) + s[i+len(string(r)):]
	}
	return s
}

func camel(s string) string {
	ws := words(s)
	for i, w := range ws {
		if i == 0 {
			ws[i] = strings.ToLower(w)
		} else {
			ws[i] = upperFirst(strings.ToLower(w))
		}
	}
	return strings.Join(ws, "")
}

// words splits s like es-toolkit's words: an optional capital and
// lower-case letters, digit runs, capital runs not followed by a lower-case
// letter, other letter runs.
func words(s string) []string {
	rs := []rune(s)
	var out []string
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsUpper(r) && i+1 < len(rs) && unicode.IsLower(rs[i+1]), unicode.IsLower(r):
			j := i + 1
			for j < len(rs) && unicode.IsLower(rs[j]) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		case r >= '0' && r <= '9':
			j := i
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		case unicode.IsUpper(r):
			j := i
			for j < len(rs) && unicode.IsUpper(rs[j]) {
				j++
			}
			if j < len(rs) && unicode.IsLower(rs[j]) && j-1 > i {
				j--
			}
			out = append(out, string(rs[i:j]))
			i = j
		case unicode.IsLetter(r):
			j := i
			for j < len(rs) && unicode.IsLetter(rs[j]) && !unicode.IsUpper(rs[j]) && !unicode.IsLower(rs[j]) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		default:
			i++
		}
	}
	return out
}
