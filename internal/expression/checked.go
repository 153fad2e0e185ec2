package expression

import (
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// ErrArithmetic is wrapped by every arithmetic failure: integer overflow,
// division by zero and results that are not finite numbers.
var ErrArithmetic = errors.New("arithmetic error")

// UnsetError is a read of env.NAME where the env has no NAME.
type UnsetError struct{ Name string }

func (e *UnsetError) Error() string { return fmt.Sprintf("env.%s is not set", e.Name) }

// Names of the functions the patchers call. They cannot be written in an
// expression (the parser reads "$" only as part of $env).
const (
	fnEnv   = "$gantry_env"
	fnArith = "$gantry_"
)

var arithOps = map[string]func(a, b any) any{
	"+":  runtime.Add,
	"-":  runtime.Subtract,
	"*":  runtime.Multiply,
	"/":  func(a, b any) any { return runtime.Divide(a, b) },
	"%":  func(a, b any) any { return runtime.Modulo(a, b) },
	"**": func(a, b any) any { return runtime.Exponent(a, b) },
	"^":  func(a, b any) any { return runtime.Exponent(a, b) },
}

// checkedOptions make arithmetic and env reads strict.
func checkedOptions() []expr.Option {
	opts := []expr.Option{
		expr.Patch(strictPatcher{}),
		expr.Function(fnEnv, envGet),
	}
	for op := range arithOps {
		opts = append(opts, expr.Function(fnArith+op, func(params ...any) (any, error) {
			return arith(op, params[0], params[1])
		}))
	}
	return opts
}

// strictPatcher rewrites arithmetic into calls that check their result,
// and env.NAME (env["NAME"], env[name]) into a read that fails when the
// name is not set. env?.NAME stays a read that may give nil.
type strictPatcher struct{}

func (strictPatcher) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.BinaryNode:
		if _, ok := arithOps[v.Operator]; ok {
			ast.Patch(n, &ast.CallNode{
				Callee:    &ast.IdentifierNode{Value: fnArith + v.Operator},
				Arguments: []ast.Node{v.Left, v.Right},
			})
		}
	case *ast.MemberNode:
		if id, ok := v.Node.(*ast.IdentifierNode); ok && id.Value == "env" && !v.Optional && !v.Method {
			ast.Patch(n, &ast.CallNode{
				Callee:    &ast.IdentifierNode{Value: fnEnv},
				Arguments: []ast.Node{v.Node, v.Property},
			})
		}
	}
}

func envGet(params ...any) (any, error) {
	if len(params) != 2 {
		return nil, errors.New("env read takes a name")
	}
	name, ok := params[1].(string)
	if !ok {
		return nil, fmt.Errorf("env names are strings, not %T", params[1])
	}
	m, _ := params[0].(map[string]any)
	v, ok := m[name]
	if !ok {
		return nil, &UnsetError{Name: name}
	}
	if err, ok := v.(error); ok {
		return nil, err
	}
	return v, nil
}

// arith applies op with the expr runtime, but refuses what would wrap or
// give a number that is not finite.
func arith(op string, a, b any) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%v", r)
		}
	}()
	x, xok := asInt(a)
	y, yok := asInt(b)
	if xok && yok {
		switch op {
		case "+", "-", "*":
			return checkedInt(op, x, y)
		case "%":
			if y == 0 {
				return nil, fmt.Errorf("%w: %d %% 0: modulo by zero", ErrArithmetic, x)
			}
		}
	}
	if op == "/" || op == "%" {
		if f, ok := asFloat(b); ok && f == 0 {
			return nil, fmt.Errorf("%w: %v %s 0: division by zero", ErrArithmetic, Format(a), op)
		}
	}
	out := arithOps[op](a, b)
	if f, ok := out.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
		return nil, fmt.Errorf("%w: %v %s %v is out of range", ErrArithmetic, Format(a), op, Format(b))
	}
	return out, nil
}

func checkedInt(op string, x, y int64) (any, error) {
	var r int64
	ok := true
	switch op {
	case "+":
		r = x + y
		ok = (y >= 0) == (r >= x)
	case "-":
		r = x - y
		ok = (y >= 0) == (r <= x)
	case "*":
		r = x * y
		ok = x == 0 || (r/x == y && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64))
	}
	if !ok {
		return nil, fmt.Errorf("%w: %d %s %d overflows a 64-bit integer", ErrArithmetic, x, op, y)
	}
	return int(r), nil
}

func asInt(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if rv.Type().PkgPath() != "" { // a named type such as time.Duration
			return 0, false
		}
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Type().PkgPath() != "" {
			return 0, false
		}
		u := rv.Uint()
		if u > math.MaxInt64 {
			return 0, false
		}
		return int64(u), true
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	switch f := v.(type) {
	case float64:
		return f, true
	case float32:
		return float64(f), true
	}
	return 0, false
}
