// Package policy holds the repository's risk policy: exceptions that accept
// a known finding (a vulnerability ID or a licence) for a package until a
// date, with a justification and an owner.
package policy

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// DefaultExceptionsFile is where the exceptions live in a repository.
const DefaultExceptionsFile = ".gantry/exceptions.yaml"

// dateLayout is the expiry date format.
const dateLayout = "2006-01-02"

// Exception accepts one finding until Expires.
type Exception struct {
	// ID is a finding ID or alias (GO-2022-1059, CVE-..., GHSA-...) or a
	// licence identifier (GPL-3.0-only).
	ID string `yaml:"id"`
	// Package limits the exception to one package ("" for any).
	Package       string    `yaml:"package"`
	Justification string    `yaml:"justification"`
	Owner         string    `yaml:"owner"`
	Expires       Date      `yaml:"expires"`
	Pos           yamlx.Pos `yaml:"-"`

	// File is the exceptions file; Until is the first instant the
	// exception no longer applies (the day after Expires, 00:00 UTC).
	File  string    `yaml:"-"`
	Until time.Time `yaml:"-"`
}

// Exceptions is a parsed exceptions file.
type Exceptions struct {
	File string      `yaml:"-"`
	List []Exception `yaml:"exceptions"`
}

// LoadExceptions reads the exceptions file at path. A missing file is an
// empty list.
func LoadExceptions(path string) (*Exceptions, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Exceptions{File: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	return ParseExceptions(path, data)
}

// ParseExceptions decodes and validates an exceptions file: every entry
// needs an id, a justification, an owner and an expiry date (YYYY-MM-DD).
// Errors name file:line:col.
func ParseExceptions(file string, data []byte) (*Exceptions, error) {
	x := &Exceptions{File: file}
	if strings.TrimSpace(string(data)) == "" {
		return x, nil
	}
	if err := yamlx.Decode(file, data, x); err != nil {
		return nil, err
	}
	x.File = file
	var errs []error
	for i := range x.List {
		e := &x.List[i]
		e.File = file
		missing := func(field string) {
			errs = append(errs, e.Pos.Errorf(file, "exceptions[%d]: %s is required", i, field))
		}
		if strings.TrimSpace(e.ID) == "" {
			missing("id")
		}
		if strings.TrimSpace(e.Justification) == "" {
			missing("justification")
		}
		if strings.TrimSpace(e.Owner) == "" {
			missing("owner")
		}
		if e.Expires.Value == "" {
			missing("expires")
			continue
		}
		d, err := time.Parse(dateLayout, e.Expires.Value)
		if err != nil {
			errs = append(errs, e.Expires.Pos.Errorf(file, "exceptions[%d]: expires %q is not a date (YYYY-MM-DD)", i, e.Expires.Value))
			continue
		}
		e.Until = d.AddDate(0, 0, 1)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return x, nil
}

// Date is a YYYY-MM-DD scalar (YAML would read it as a timestamp) with
// its position.
type Date struct {
	Value string
	Pos   yamlx.Pos
}

// UnmarshalYAMLNode implements yamlx.Unmarshaler.
func (d *Date) UnmarshalYAMLNode(_ *yamlx.Decoder, n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expires: want a date (YYYY-MM-DD)")
	}
	d.Value, d.Pos = n.Value, yamlx.PosOf(n)
	return nil
}

// Match is the exception covering a finding, and whether it has expired.
type Match struct {
	Exception *Exception
	Expired   bool
}

// Lookup returns the exception for a finding with these IDs (its ID and
// aliases) in pkg at time now; an unexpired match wins over an expired one.
// It returns nil when no exception names the finding.
func (x *Exceptions) Lookup(ids []string, pkg string, now time.Time) *Match {
	if x == nil {
		return nil
	}
	var expired *Match
	for i := range x.List {
		e := &x.List[i]
		if e.Package != "" && e.Package != pkg {
			continue
		}
		if !slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, e.ID) }) {
			continue
		}
		if now.Before(e.Until) {
			return &Match{Exception: e}
		}
		if expired == nil {
			expired = &Match{Exception: e, Expired: true}
		}
	}
	return expired
}

// Expiring returns the exceptions still valid at now that expire within d.
func (x *Exceptions) Expiring(now time.Time, d time.Duration) []Exception {
	if x == nil {
		return nil
	}
	var out []Exception
	for _, e := range x.List {
		if now.Before(e.Until) && !now.Add(d).Before(e.Until) {
			out = append(out, e)
		}
	}
	return out
}

// Line returns "file:line" of the exception.
func (e *Exception) Line() string { return fmt.Sprintf("%s:%d", e.File, e.Pos.Line) }
