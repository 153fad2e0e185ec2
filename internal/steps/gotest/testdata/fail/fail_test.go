package fail

import "testing"

func TestPasses(t *testing.T) {}

func TestFails(t *testing.T) {
	t.Log("the fixture's own output")
	t.Errorf("got 1, want 2")
}
