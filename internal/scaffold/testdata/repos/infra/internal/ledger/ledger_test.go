package ledger

import "testing"

func TestBalance(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    int64
	}{
		{"empty", nil, 0},
		{"credit and debit", []string{"+100", "-30"}, 70},
		{"ignored", []string{"+", "+x", "*5"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Balance(tt.entries); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
