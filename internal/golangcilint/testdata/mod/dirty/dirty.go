// Package dirty has one errcheck and one govet finding.
package dirty

import (
	"fmt"
	"os"
)

// Remove deletes path and ignores the error.
func Remove(path string) {
	os.Remove(path)
}

// Say prints a number with the wrong verb.
func Say(n int) string {
	return fmt.Sprintf("%s", n)
}
