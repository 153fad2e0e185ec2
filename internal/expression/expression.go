// Package expression evaluates the expressions of pipeline files: `when:`,
// `if:` and `gate:` conditions and ${...} templates in strings.
//
// The language is expr (github.com/expr-lang/expr), the one Argo Rollouts
// uses for analysis conditions, with a few functions added (glob).
package expression

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Program is a compiled expression.
type Program struct {
	src  string
	prog *vm.Program
}

// String returns the source.
func (p *Program) String() string { return p.src }

var functions = []expr.Option{
	expr.Function("glob", func(params ...any) (any, error) {
		if len(params) != 2 {
			return nil, errors.New("glob(name, pattern) takes two arguments")
		}
		name, ok := params[0].(string)
		if !ok {
			return nil, fmt.Errorf("glob: the name must be a string, not %T", params[0])
		}
		pattern, ok := params[1].(string)
		if !ok {
			return nil, fmt.Errorf("glob: the pattern must be a string, not %T", params[1])
		}
		return globMatch(pattern, name), nil
	}, new(func(name, pattern string) bool)),
}

// Compile parses src.
func Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	prog, err := expr.Compile(src, append(slices.Clone(functions), checkedOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("invalid expression %q: %s", src, firstLine(err.Error()))
	}
	return &Program{src: src, prog: prog}, nil
}

// Eval runs p against env.
func (p *Program) Eval(env map[string]any) (any, error) {
	out, err := expr.Run(p.prog, env)
	if err != nil {
		return nil, &EvalError{Src: p.src, Err: err}
	}
	return out, nil
}

// EvalError is an expression that failed while it was evaluated. It wraps
// the cause: ErrArithmetic, *UnsetError, or an error of the language.
type EvalError struct {
	Src string
	Err error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("evaluate %q: %s", e.Src, firstLine(e.Err.Error()))
}

func (e *EvalError) Unwrap() error { return e.Err }

// EvalBool runs p and requires a boolean result.
func (p *Program) EvalBool(env map[string]any) (bool, error) {
	out, err := p.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q gave %v (%T), not true or false", p.src, out, out)
	}
	return b, nil
}

// Ref is a static member path in an expression, such as
// steps.unit.outputs.coverage → ["steps" "unit" "outputs" "coverage"].
type Ref []string

func (r Ref) String() string { return strings.Join(r, ".") }

// Refs returns every static member path in src, once each and only the
// whole chain: steps.unit.outputs.coverage yields that path alone, not
// also steps.unit and steps. A path read with a computed key yields its
// static start (secrets[name] yields secrets, and name). Names of called
// functions, such as glob, are not references.
func Refs(src string) ([]Ref, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invalid expression %q: %s", src, firstLine(err.Error()))
	}
	c := &refCollector{inner: map[ast.Node]bool{}, seen: map[string]bool{}}
	ast.Walk(&tree.Node, &innerMarker{c.inner})
	ast.Walk(&tree.Node, c)
	return c.refs, nil
}

// OptionalRefs returns the static member paths of src that are read with
// optional chaining somewhere along them (env?.NAME): reading such a path
// gives nil when a name on it is not set, instead of failing.
func OptionalRefs(src string) ([]Ref, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invalid expression %q: %s", src, firstLine(err.Error()))
	}
	c := &optionalCollector{seen: map[string]bool{}}
	ast.Walk(&tree.Node, c)
	return c.refs, nil
}

type optionalCollector struct {
	seen map[string]bool
	refs []Ref
}

func (c *optionalCollector) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || !optionalChain(m) {
		return
	}
	r, ok := chain(m)
	if !ok {
		return
	}
	if key := strings.Join(r, "\x00"); !c.seen[key] {
		c.seen[key] = true
		c.refs = append(c.refs, r)
	}
}

// optionalChain reports whether a member read of the chain ending at m is
// optional (?.).
func optionalChain(m *ast.MemberNode) bool {
	for {
		if m.Optional {
			return true
		}
		next, ok := m.Node.(*ast.MemberNode)
		if !ok {
			return false
		}
		m = next
	}
}

// innerMarker marks the nodes that are part of a longer static chain, and
// the names of called functions.
type innerMarker struct{ inner map[ast.Node]bool }

func (m *innerMarker) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.MemberNode:
		if _, ok := chain(v); ok {
			m.inner[v.Node] = true
		}
	case *ast.CallNode:
		if _, ok := v.Callee.(*ast.IdentifierNode); ok {
			m.inner[v.Callee] = true
		}
	}
}

type refCollector struct {
	inner map[ast.Node]bool
	seen  map[string]bool
	refs  []Ref
}

func (c *refCollector) Visit(n *ast.Node) {
	if c.inner[*n] {
		return
	}
	var r Ref
	switch v := (*n).(type) {
	case *ast.MemberNode:
		var ok bool
		if r, ok = chain(v); !ok {
			return
		}
	case *ast.IdentifierNode:
		r = Ref{v.Value}
	default:
		return
	}
	if key := strings.Join(r, "\x00"); !c.seen[key] {
		c.seen[key] = true
		c.refs = append(c.refs, r)
	}
}

func chain(n ast.Node) (Ref, bool) {
	switch v := n.(type) {
	case *ast.IdentifierNode:
		return Ref{v.Value}, true
	case *ast.MemberNode:
		base, ok := chain(v.Node)
		if !ok {
			return nil, false
		}
		switch p := v.Property.(type) {
		case *ast.StringNode:
			return append(base, p.Value), true
		case *ast.IntegerNode:
			return append(base, strconv.Itoa(p.Value)), true
		}
	}
	return nil, false
}

// Template is a string with ${...} expressions in it.
type Template struct {
	parts []part
}

type part struct {
	lit  string
	prog *Program
}

// ParseTemplate splits s into literal text and ${...} expressions. "$${"
// stands for a literal "${".
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	var lit strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			lit.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			lit.WriteByte(s[i])
			i++
			continue
		}
		end := matchBrace(s, i+2)
		if end < 0 {
			return nil, fmt.Errorf("unterminated ${ in %q", s)
		}
		prog, err := Compile(s[i+2 : end])
		if err != nil {
			return nil, err
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{prog: prog})
		i = end + 1
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// matchBrace returns the index of the } closing an expression that starts
// at i, skipping braces inside string literals and nested maps.
func matchBrace(s string, i int) int {
	depth := 0
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '{':
			depth++
		case c == '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// HasExpr reports whether the template contains any expression.
func (t *Template) HasExpr() bool {
	for _, p := range t.parts {
		if p.prog != nil {
			return true
		}
	}
	return false
}

// Programs returns the template's expressions.
func (t *Template) Programs() []*Program {
	var out []*Program
	for _, p := range t.parts {
		if p.prog != nil {
			out = append(out, p.prog)
		}
	}
	return out
}

// Eval renders the template. A template that is exactly one expression
// returns the expression's value with its type (a number stays a number);
// otherwise values are formatted into the string.
func (t *Template) Eval(env map[string]any) (any, error) {
	if len(t.parts) == 1 && t.parts[0].prog != nil {
		return t.parts[0].prog.Eval(env)
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.prog.Eval(env)
		if err != nil {
			return nil, err
		}
		b.WriteString(Format(v))
	}
	return b.String(), nil
}

// EvalString renders the template as a string.
func (t *Template) EvalString(env map[string]any) (string, error) {
	v, err := t.Eval(env)
	if err != nil {
		return "", err
	}
	return Format(v), nil
}

// Format renders a value the way templates print it.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = Format(rv.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// globMatch matches name against a branch glob: "*" stays within one path
// segment, "**" crosses segments.
func globMatch(pattern, name string) bool {
	if pattern == "**" {
		return true
	}
	if strings.Contains(pattern, "**") {
		prefix, suffix, _ := strings.Cut(pattern, "**")
		if !strings.HasPrefix(name, prefix) {
			return false
		}
		rest := name[len(prefix):]
		for i := 0; i <= len(rest); i++ {
			if globMatch(suffix, rest[i:]) {
				return true
			}
		}
		return suffix == ""
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// GlobMatch is the branch matcher used by triggers and glob().
func GlobMatch(pattern, name string) bool { return globMatch(pattern, name) }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
