// Package clean has nothing to report.
package clean

import "os"

// Remove deletes path.
func Remove(path string) error {
	return os.Remove(path)
}
