package spec

import (
	"errors"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// ApproversPath is where a repository says who holds which approval role.
const ApproversPath = ".gantry/approvers.yaml"

// Approvers maps each role to the people who hold it:
//
//	oncall-lead: [alice, bob]
//	release-manager: [carol]
type Approvers map[string][]string

// ParseApprovers decodes an approvers file strictly: a mapping from role
// names to lists of user names. Every problem is reported at file:line:col.
func ParseApprovers(file string, data []byte) (Approvers, error) {
	n, err := yamlx.Parse(file, data)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, yamlx.Errorf(file, n, "expected a mapping of roles to lists of people")
	}
	d := &yamlx.Decoder{File: file}
	var errs []error
	out := Approvers{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var role string
		var people []yamlx.String
		k, val := n.Content[i], n.Content[i+1]
		if err := d.Decode(k, &role); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := d.Decode(val, &people); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case !nameRE.MatchString(role):
			errs = append(errs, yamlx.Errorf(file, k, "role %q must start with a letter and hold only letters, digits, - and _", role))
		case out[role] != nil:
			errs = append(errs, yamlx.Errorf(file, k, "role %q is listed twice", role))
		case len(people) == 0:
			errs = append(errs, yamlx.Errorf(file, k, "role %q lists nobody", role))
		}
		list := []string{}
		for _, p := range people {
			if !userRE(p.Value) {
				errs = append(errs, p.Pos.Errorf(file, "user name %q of role %q must be a login name (no spaces or control characters)", p.Value, role))
				continue
			}
			list = append(list, p.Value)
		}
		out[role] = list
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Holds reports whether user holds one of roles.
func (a Approvers) Holds(user string, roles []string) bool {
	for _, r := range roles {
		if slices.Contains(a[r], user) {
			return true
		}
	}
	return false
}

// RolesOf lists the roles user holds, sorted.
func (a Approvers) RolesOf(user string) []string {
	var out []string
	for r, people := range a {
		if slices.Contains(people, user) {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

func userRE(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
