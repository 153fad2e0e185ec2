package calc

import "testing"

func TestDiv(t *testing.T) {
	if got, err := Div(6, 3); err != nil || got != 2 {
		t.Fatalf("Div(6, 3) = %d, %v", got, err)
	}
	if Double(2) != 4 {
		t.Fatal("Double")
	}
	var a Acc
	a.Add(2)
}

func TestSkipped(t *testing.T) { t.Skip("fixture skip") }
