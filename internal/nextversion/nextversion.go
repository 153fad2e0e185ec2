// Package nextversion computes the next semantic version from the
// Conventional Commits made since the last vX.Y.Z tag: a breaking change
// bumps the major version, a feat the minor, a fix the patch.
package nextversion

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/commitlint"
	"github.com/gantry-ci/gantry/internal/gitutil"
)

// Bump is the kind of release the commits call for.
type Bump int

// Bumps, smallest first.
const (
	None Bump = iota
	Patch
	Minor
	Major
)

func (b Bump) String() string {
	return [...]string{"none", "patch", "minor", "major"}[b]
}

// Version is a release version without pre-release or build parts.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// ParseTag reads "vX.Y.Z" (the "v" is required, as are all three numbers
// without leading zeros); pre-release tags are not release tags.
func ParseTag(tag string) (Version, bool) {
	rest, ok := strings.CutPrefix(tag, "v")
	if !ok {
		return Version{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return Version{}, false
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || len(p) > 1 && p[0] == '0' {
			return Version{}, false
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Version{}, false
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, true
}

// Less orders versions.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

// Apply returns v bumped by b.
func (v Version) Apply(b Bump) Version {
	switch b {
	case Major:
		return Version{v.Major + 1, 0, 0}
	case Minor:
		return Version{v.Major, v.Minor + 1, 0}
	case Patch:
		return Version{v.Major, v.Minor, v.Patch + 1}
	}
	return v
}

// BumpFor returns the bump one commit message calls for.
func BumpFor(message string) Bump {
	if commitlint.Ignored(message) {
		return None
	}
	c := commitlint.Parse(message, "")
	switch {
	case c.Breaking:
		return Major
	case c.Type == "feat":
		return Minor
	case c.Type == "fix":
		return Patch
	}
	return None
}

// Result is the computed version.
type Result struct {
	// Previous is the last release tag's version; "" when there is none.
	Previous string
	// Tag is the last release tag ("v1.3.2"); "" when there is none.
	Tag     string
	Version string
	Bump    Bump
	// Commits is how many commits were considered.
	Commits int
}

// Initial is the version released first when no tag exists and the
// commits call for no bump.
var Initial = Version{0, 1, 0}

// Compute finds the highest vX.Y.Z tag reachable from rev and bumps it by
// the commits since. Without a tag every commit counts, starting from
// 0.0.0 (and at least Initial).
func Compute(ctx context.Context, repo gitutil.Repo, rev string) (Result, error) {
	if rev == "" {
		rev = "HEAD"
	}
	tags, err := repo.TagsMerged(ctx, rev, "v*")
	if err != nil {
		return Result{}, fmt.Errorf("list release tags: %w", err)
	}
	var res Result
	var prev Version
	for _, t := range tags {
		if v, ok := ParseTag(t); ok && (res.Tag == "" || prev.Less(v)) {
			prev, res.Tag = v, t
		}
	}
	commits, err := repo.Commits(ctx, res.Tag, rev)
	if err != nil {
		return Result{}, fmt.Errorf("read commits since %s: %w", cmpOr(res.Tag, "the first commit"), err)
	}
	for _, c := range commits {
		res.Bump = max(res.Bump, BumpFor(c.Message))
	}
	res.Commits = len(commits)
	next := prev.Apply(res.Bump)
	if res.Tag == "" {
		if next.Less(Initial) {
			next = Initial
		}
	} else {
		res.Previous = prev.String()
	}
	res.Version = next.String()
	return res, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
