// Package ledger keeps a balance.
package ledger

import "strconv"

// Balance sums credits ("+N") and debits ("-N"); other entries are
// ignored.
func Balance(entries []string) int64 {
	var b int64
	for _, e := range entries {
		if len(e) < 2 {
			continue
		}
		n, err := strconv.ParseInt(e[1:], 10, 64)
		if err != nil {
			continue
		}
		switch e[0] {
		case '+':
			b += n
		case '-':
			b -= n
		}
	}
	return b
}
