package analysis

import (
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Condition is a compiled successCondition or failureCondition in Argo's
// expression language (expr), with Argo's helpers asInt, asFloat, isNaN,
// isInf, isNil and default.
type Condition struct {
	src  string
	prog *vm.Program
}

func exprOptions() []expr.Option {
	return []expr.Option{
		expr.AllowUndefinedVariables(),
		expr.Function("asInt", func(p ...any) (any, error) {
			if len(p) != 1 {
				return nil, fmt.Errorf("asInt takes one argument")
			}
			return asInt(p[0])
		}),
		expr.Function("asFloat", func(p ...any) (any, error) {
			if len(p) != 1 {
				return nil, fmt.Errorf("asFloat takes one argument")
			}
			return asFloat(p[0])
		}),
		expr.Function("isNaN", func(p ...any) (any, error) {
			if len(p) != 1 {
				return nil, fmt.Errorf("isNaN takes one argument")
			}
			f, err := asFloat(p[0])
			if err != nil {
				return false, nil
			}
			return math.IsNaN(f), nil
		}),
		expr.Function("isInf", func(p ...any) (any, error) {
			if len(p) != 1 {
				return nil, fmt.Errorf("isInf takes one argument")
			}
			f, err := asFloat(p[0])
			if err != nil {
				return false, nil
			}
			return math.IsInf(f, 0), nil
		}),
		expr.Function("isNil", func(p ...any) (any, error) {
			if len(p) != 1 {
				return nil, fmt.Errorf("isNil takes one argument")
			}
			return isNil(p[0]), nil
		}),
		expr.Function("default", func(p ...any) (any, error) {
			if len(p) != 2 {
				return nil, fmt.Errorf("default takes two arguments")
			}
			if isNil(p[0]) {
				return p[1], nil
			}
			return p[0], nil
		}),
	}
}

// CompileCondition checks a condition's syntax.
func CompileCondition(src string) (*Condition, error) {
	prog, err := expr.Compile(src, exprOptions()...)
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	return &Condition{src: src, prog: prog}, nil
}

// Eval runs the condition with result bound to the measured value; the
// condition must yield a boolean.
func (c *Condition) Eval(result any) (bool, error) {
	out, err := expr.Run(c.prog, map[string]any{"result": result})
	if err != nil {
		return false, fmt.Errorf("evaluate %q: %w", c.src, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("condition %q returned %T (%v), not a boolean", c.src, out, out)
	}
	return b, nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("asInt(%q): %w", x, err)
		}
		return i, nil
	case float64:
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	}
	return 0, fmt.Errorf("asInt: cannot convert %T", v)
}

func asFloat(v any) (float64, error) {
	switch x := v.(type) {
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, fmt.Errorf("asFloat(%q): %w", x, err)
		}
		return f, nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("asFloat: cannot convert %T", v)
}

// assess applies Argo's rules to one measured value: with only a success
// condition, not meeting it fails; with only a failure condition, not
// meeting it succeeds; with both, meeting neither is inconclusive; with
// none, every measurement succeeds.
func assess(result any, success, failure *Condition) (Phase, error) {
	var ok, bad bool
	var err error
	if success != nil {
		if ok, err = success.Eval(result); err != nil {
			return PhaseError, err
		}
	}
	if failure != nil {
		if bad, err = failure.Eval(result); err != nil {
			return PhaseError, err
		}
	}
	switch {
	case success == nil && failure == nil:
		return PhaseSuccessful, nil
	case failure == nil:
		bad = !ok
	case success == nil:
		ok = !bad
	}
	if bad {
		return PhaseFailed, nil
	}
	if !ok {
		return PhaseInconclusive, nil
	}
	return PhaseSuccessful, nil
}
