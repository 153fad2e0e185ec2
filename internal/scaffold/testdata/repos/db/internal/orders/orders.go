// Package orders names orders.
package orders

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ID is a stable order ID for an item: its normalised name's digest.
func ID(item string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(item))))
	return "ord_" + hex.EncodeToString(sum[:6])
}
