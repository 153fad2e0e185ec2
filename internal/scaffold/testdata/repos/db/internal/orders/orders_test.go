package orders

import "testing"

func TestID(t *testing.T) {
	if got, want := ID(" Book "), ID("book"); got != want {
		t.Errorf("got %s, want %s: IDs ignore case and spaces", got, want)
	}
	if got := ID("book"); len(got) != 16 {
		t.Errorf("got %q, want ord_ and 12 hex digits", got)
	}
}
