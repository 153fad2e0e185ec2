package greet

import "testing"

func TestHello(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{nil, "hello, world"},
		{[]string{" "}, "hello, nobody"},
		{[]string{"ada", "", "alan"}, "hello, ada and alan"},
	}
	for _, tt := range tests {
		if got := Hello(tt.names...); got != tt.want {
			t.Errorf("Hello(%q): got %q, want %q", tt.names, got, tt.want)
		}
	}
}
