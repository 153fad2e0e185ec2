//go:build integration

package calc

import "testing"

func TestAbs(t *testing.T) {
	if Abs(-3) != 3 || Abs(2) != 2 {
		t.Fatal("Abs")
	}
	if _, err := Div(1, 0); err == nil {
		t.Fatal("want error")
	}
}
