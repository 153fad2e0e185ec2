// Package price adds up prices.
package price

import "strconv"

// Total adds up the prices in cents, skipping what is not a number.
func Total(prices []string) int64 {
	var sum int64
	for _, p := range prices {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			continue
		}
		sum += n
	}
	return sum
}
