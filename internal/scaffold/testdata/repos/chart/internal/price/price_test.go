package price

import "testing"

func TestTotal(t *testing.T) {
	tests := []struct {
		name   string
		prices []string
		want   int64
	}{
		{"none", nil, 0},
		{"some", []string{"100", "250"}, 350},
		{"bad ones skipped", []string{"x", "-5", "7"}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Total(tt.prices); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
