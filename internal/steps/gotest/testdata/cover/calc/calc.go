// Package calc is a coverage fixture.
package calc

import "errors"

// Double is assigned a function literal at package level: cover -func
// attributes its blocks to no function.
var Double = func(x int) int {
	if x < 0 {
		return -2 * x
	}
	return 2 * x
}

// Div divides.
func Div(a, b int) (int, error) {
	if b == 0 {
		return 0, errors.New("divide by zero")
	}
	return a / b, nil
}

// Abs is covered only by the integration tests.
func Abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

type Acc struct{ n int }

// Add adds.
func (a *Acc) Add(x int) { a.n += x }

// Total returns the sum.
func (a *Acc) Total() int { return a.n }
