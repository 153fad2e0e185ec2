// Package store has planted SQL and file-inclusion issues.
package store

import (
	"database/sql"
	"fmt"
	"os"
)

// Find builds SQL with Sprintf (G201).
func Find(db *sql.DB, name string) (*sql.Rows, error) {
	q := fmt.Sprintf("SELECT id FROM users WHERE name = '%s'", name)
	rows, err := db.Query(q)
	return rows, err
}

// Sorted builds SQL by concatenation (G202).
func Sorted(db *sql.DB, order string) (*sql.Rows, error) {
	rows, err := db.Query("SELECT id FROM users ORDER BY " + order)
	return rows, err
}

// Read opens a file named by its caller (G304).
func Read(path string) ([]byte, error) {
	return os.ReadFile(path)
}

// ReadReport is the same, suppressed with a reason.
func ReadReport(path string) ([]byte, error) {
	// gantry:ignore G304 -- path comes from the fixed report directory listing
	return os.ReadFile(path)
}
