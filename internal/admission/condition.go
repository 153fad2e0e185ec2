package admission

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmespath-community/go-jmespath"
	"go.yaml.in/yaml/v3"
)

// ConditionBlock is one entry of an attestation's conditions: every
// condition of All holds and, when Any is not empty, one of Any holds.
type ConditionBlock struct {
	All []Condition
	Any []Condition
}

// Condition compares Key, a JMESPath over the attestation's predicate
// written in {{ }}, with Value.
type Condition struct {
	Key      template
	Operator string
	Value    any
	// Message is the policy's explanation when the condition fails.
	Message string
	Line    int
}

// operators gantry evaluates, as Kyverno names them.
var operators = []string{
	"Equals", "NotEquals", "In", "AnyIn", "AllIn", "NotIn", "AnyNotIn", "AllNotIn",
	"GreaterThan", "GreaterThanOrEquals", "LessThan", "LessThanOrEquals",
}

// template is a string that may hold {{ JMESPath }} variables.
type template struct {
	text string
	// whole is set when the text is one variable: its value keeps its
	// type (a list stays a list).
	whole jmespath.JMESPath
	parts []templatePart
}

type templatePart struct {
	lit  string
	expr jmespath.JMESPath
	src  string
}

var varRE = regexp.MustCompile(`\{\{(.*?)\}\}`)

// compileTemplate compiles the variables of s.
func compileTemplate(s string) (template, error) {
	t := template{text: s}
	locs := varRE.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 0 {
		return t, nil
	}
	last := 0
	for _, l := range locs {
		src := strings.TrimSpace(s[l[2]:l[3]])
		if strings.Contains(src, "{{") {
			return t, fmt.Errorf("nested variables in %q", s)
		}
		if strings.HasPrefix(src, "@") || strings.HasPrefix(src, "request.") || strings.HasPrefix(src, "images.") || strings.HasPrefix(src, "element") {
			return t, fmt.Errorf("variable %q: only the attestation's predicate is available to conditions on the local runtime", src)
		}
		expr, err := jmespath.Compile(src)
		if err != nil {
			return t, fmt.Errorf("JMESPath %q: %v", src, err)
		}
		t.parts = append(t.parts, templatePart{lit: s[last:l[0]]}, templatePart{expr: expr, src: src})
		last = l[1]
	}
	t.parts = append(t.parts, templatePart{lit: s[last:]})
	if len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(s) {
		t.whole = t.parts[1].expr
	}
	return t, nil
}

// eval returns the template's value over data.
func (t template) eval(data any) (any, error) {
	if t.parts == nil {
		return t.text, nil
	}
	if t.whole != nil {
		return t.whole.Search(data)
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.expr.Search(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.src, err)
		}
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case nil:
		default:
			j, _ := json.Marshal(v)
			b.Write(j)
		}
	}
	return b.String(), nil
}

func (d *decoder) conditionBlock(n *yaml.Node, what string) ConditionBlock {
	f := d.fields(n, what, map[string]fieldKind{"all": read, "any": read}, nil)
	var b ConditionBlock
	if f == nil {
		return b
	}
	for i, cn := range d.list(f["all"], what+".all") {
		b.All = append(b.All, d.condition(cn, fmt.Sprintf("%s.all[%d]", what, i)))
	}
	for i, cn := range d.list(f["any"], what+".any") {
		b.Any = append(b.Any, d.condition(cn, fmt.Sprintf("%s.any[%d]", what, i)))
	}
	if len(b.All)+len(b.Any) == 0 {
		d.errorf(n, "%s: no condition in all or any", what)
	}
	return b
}

func (d *decoder) condition(n *yaml.Node, what string) Condition {
	f := d.fields(n, what, map[string]fieldKind{"key": read, "operator": read, "value": read, "message": read}, nil)
	c := Condition{Line: n.Line}
	if f == nil {
		return c
	}
	c.Message = d.str(f["message"], what+".message")
	c.Operator = d.str(f["operator"], what+".operator")
	if !slices.Contains(operators, c.Operator) {
		if f["operator"] == nil {
			d.errorf(n, "%s.operator: missing", what)
		} else {
			d.unsupported(f["operator"], "%s.operator: %q (gantry evaluates %s)", what, c.Operator, strings.Join(operators, ", "))
		}
	}
	kn := f["key"]
	if kn == nil {
		d.errorf(n, "%s.key: missing", what)
	} else {
		var key any
		if err := kn.Decode(&key); err != nil {
			d.errorf(kn, "%s.key: %v", what, err)
		}
		s, ok := key.(string)
		if !ok {
			j, _ := json.Marshal(key)
			s = string(j)
		}
		t, err := compileTemplate(s)
		if err != nil {
			d.unsupported(kn, "%s.key: %v", what, err)
		}
		c.Key = t
	}
	vn := f["value"]
	if vn == nil {
		d.errorf(n, "%s.value: missing", what)
		return c
	}
	var raw any
	if err := vn.Decode(&raw); err != nil {
		d.errorf(vn, "%s.value: %v", what, err)
		return c
	}
	v, err := normalize(raw)
	if err != nil {
		d.errorf(vn, "%s.value: %v", what, err)
		return c
	}
	if s, ok := v.(string); ok && strings.Contains(s, "{{") {
		t, err := compileTemplate(s)
		if err != nil {
			d.unsupported(vn, "%s.value: %v", what, err)
		}
		v = t
	}
	c.Value = v
	return c
}

// normalize turns a decoded YAML value into JSON's types (float64
// numbers, map[string]any objects).
func normalize(v any) (any, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// holds evaluates the block over predicate.
func (b ConditionBlock) holds(predicate any) (bool, *Condition, error) {
	for i := range b.All {
		ok, err := b.All[i].holds(predicate)
		if err != nil || !ok {
			return false, &b.All[i], err
		}
	}
	if len(b.Any) == 0 {
		return true, nil, nil
	}
	var lastErr error
	for i := range b.Any {
		ok, err := b.Any[i].holds(predicate)
		if ok {
			return true, nil, nil
		}
		if err != nil {
			lastErr = err
		}
	}
	return false, &b.Any[len(b.Any)-1], lastErr
}

// holds evaluates the condition over predicate.
func (c *Condition) holds(predicate any) (bool, error) {
	key, err := c.Key.eval(predicate)
	if err != nil {
		return false, fmt.Errorf("key %s: %w", c.Key.text, err)
	}
	value := c.Value
	if t, ok := value.(template); ok {
		if value, err = t.eval(predicate); err != nil {
			return false, fmt.Errorf("value %s: %w", t.text, err)
		}
	}
	return compare(c.Operator, key, value)
}

// String shows the condition as the policy writes it.
func (c *Condition) String() string {
	v := c.Value
	if t, ok := v.(template); ok {
		v = t.text
	}
	j, _ := json.Marshal(v)
	return fmt.Sprintf("%s %s %s", c.Key.text, c.Operator, j)
}

func compare(op string, key, value any) (bool, error) {
	switch op {
	case "Equals":
		return equals(key, value), nil
	case "NotEquals":
		return !equals(key, value), nil
	case "In", "AllIn":
		return all(asList(key), func(k any) bool { return contains(value, k) }), nil
	case "AnyIn":
		return slices.ContainsFunc(asList(key), func(k any) bool { return contains(value, k) }), nil
	case "NotIn", "AllNotIn":
		return all(asList(key), func(k any) bool { return !contains(value, k) }), nil
	case "AnyNotIn":
		return slices.ContainsFunc(asList(key), func(k any) bool { return !contains(value, k) }), nil
	case "GreaterThan", "GreaterThanOrEquals", "LessThan", "LessThanOrEquals":
		c, err := order(key, value)
		if err != nil {
			return false, err
		}
		switch op {
		case "GreaterThan":
			return c > 0, nil
		case "GreaterThanOrEquals":
			return c >= 0, nil
		case "LessThan":
			return c < 0, nil
		default:
			return c <= 0, nil
		}
	}
	return false, fmt.Errorf("operator %q", op)
}

func all(xs []any, f func(any) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// contains reports whether set (a list, or one value) holds k.
func contains(set, k any) bool {
	return slices.ContainsFunc(asList(set), func(s any) bool { return equals(k, s) })
}

// equals compares as Kyverno's Equals: a string value is a wildcard
// pattern for a string key; numbers compare by value, whether written as
// numbers or strings; anything else compares deeply.
func equals(key, value any) bool {
	if vs, ok := value.(string); ok {
		if ks, ok := key.(string); ok {
			return Match(vs, ks)
		}
	}
	if kf, ok := number(key); ok {
		if vf, ok := number(value); ok {
			return kf == vf
		}
	}
	return reflect.DeepEqual(key, value)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// order compares two numbers, or two durations (1h30m).
func order(key, value any) (int, error) {
	if kf, ok := number(key); ok {
		if vf, ok := number(value); ok {
			return cmpFloat(kf, vf), nil
		}
	}
	ks, kok := key.(string)
	vs, vok := value.(string)
	if kok && vok {
		kd, kerr := time.ParseDuration(ks)
		vd, verr := time.ParseDuration(vs)
		if kerr == nil && verr == nil {
			return cmpFloat(float64(kd), float64(vd)), nil
		}
	}
	return 0, fmt.Errorf("cannot order %s and %s (want two numbers or two durations)", show(key), show(value))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func show(v any) string {
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(j)
}
