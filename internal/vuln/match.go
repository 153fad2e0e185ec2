package vuln

import (
	"cmp"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/gantry-ci/gantry/internal/inventory"
)

// Finding is one vulnerability affecting one package version in one place.
type Finding struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Summary string   `json:"summary,omitempty"`
	// Ecosystem is the OSV ecosystem ("Go", "Debian", "Alpine").
	Ecosystem string `json:"ecosystem"`
	// Package is the module path ("stdlib" for the Go standard library)
	// or OS package name.
	Package string `json:"package"`
	Version string `json:"version"`
	// Fixed is the lowest fixed version above Version, "" if none.
	Fixed string `json:"fixed,omitempty"`
	// FixStatus is the vendor's fix status reported by Trivy (fixed,
	// affected, will_not_fix, fix_deferred, end_of_life, ...); "" for
	// gantry's own scanner.
	FixStatus string `json:"fix_status,omitempty"`
	// Location is the binary in the image, the binary file or go.mod.
	Location string `json:"location"`
	Platform string `json:"platform,omitempty"`
	Severity Score  `json:"severity"`
	// Published is the entry's publication date; nil when unknown (the
	// Go database's OSV export zeroes it).
	Published *time.Time `json:"published,omitempty"`
	URL       string     `json:"url,omitempty"`

	// Set by Gate.Apply.
	Status    Status     `json:"status,omitempty"`
	Fails     bool       `json:"fails"`
	Reason    string     `json:"reason,omitempty"`
	Exception *Exception `json:"exception,omitempty"`
}

// Exception is the risk exception a finding matched.
type Exception struct {
	File          string `json:"file"`
	Line          int    `json:"line"`
	Owner         string `json:"owner"`
	Justification string `json:"justification"`
	Expires       string `json:"expires"`
}

// Scan matches every Go module, Go toolchain (as module "stdlib") and OS
// package of inv against db. Findings are sorted by location, package, ID.
func Scan(inv *inventory.Inventory, db *DB) []Finding {
	var out []Finding
	seen := map[string]bool{}
	emit := func(fs []Finding) {
		for _, f := range fs {
			k := f.ID + "|" + f.Package + "|" + f.Version + "|" + f.Location + "|" + f.Platform
			if !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	}
	for _, b := range inv.Binaries {
		goos, goarch := targetPlatform(inv, b)
		match := func(path, v, shown string) []Finding {
			return matchGo(db, path, v, shown, b.Path, b.Platform, goos, goarch)
		}
		if v := goVersion(b.GoVersion); v != "" {
			shown, _, _ := strings.Cut(b.GoVersion, " ")
			emit(match("stdlib", v, shown))
		}
		mods := b.Deps
		if b.Main.Version != "" && b.Main.Version != "(devel)" {
			mods = append([]inventory.Module{b.Main}, mods...)
		}
		for _, m := range mods {
			m = m.Effective()
			if !semver.IsValid(m.Version) {
				continue // local replacements have no version
			}
			emit(match(m.Path, m.Version, m.Version))
		}
	}
	for _, p := range inv.Packages {
		emit(matchOS(db, p))
	}
	SortFindings(out)
	return out
}

// targetPlatform is the GOOS and GOARCH b was (or will be) built for: the
// image's platform, else the binary's build settings, else for a source
// tree the host's; "" when unknown (then nothing is filtered out).
func targetPlatform(inv *inventory.Inventory, b inventory.Binary) (goos, goarch string) {
	if b.Platform != "" {
		goos, rest, _ := strings.Cut(b.Platform, "/")
		goarch, _, _ := strings.Cut(rest, "/")
		return goos, goarch
	}
	if b.Settings["GOOS"] != "" || b.Settings["GOARCH"] != "" {
		return b.Settings["GOOS"], b.Settings["GOARCH"]
	}
	if inv.Kind == "source" {
		return runtime.GOOS, runtime.GOARCH
	}
	return "", ""
}

// goVersion turns a toolchain version ("go1.22.3", "go1.21rc2",
// "go1.26.8 X:nocoverageredesign") into semver ("v1.22.3", "v1.21.0-rc.2");
// "" for devel builds.
func goVersion(s string) string {
	s, _, _ = strings.Cut(s, " ")
	s, _, _ = strings.Cut(s, "-") // go1.22.0-bigcorp suffixes
	if !strings.HasPrefix(s, "go1") {
		return ""
	}
	s = strings.TrimPrefix(s, "go")
	pre := ""
	for _, tag := range []string{"rc", "beta"} {
		if i := strings.Index(s, tag); i > 0 {
			s, pre = s[:i], "-"+tag+"."+s[i+len(tag):]
			break
		}
	}
	switch strings.Count(s, ".") {
	case 0:
		s += ".0.0"
	case 1:
		s += ".0"
	}
	v := "v" + s + pre
	if !semver.IsValid(v) {
		return ""
	}
	return v
}

// osvSemver turns an OSV SEMVER event value into Go semver ("0" is v0.0.0).
func osvSemver(s string) string {
	if s == "0" {
		return "v0.0.0-0"
	}
	if !strings.HasPrefix(s, "v") {
		s = "v" + s
	}
	return s
}

// matchGo returns the findings for Go module path at version v (semver),
// shown as shown, built for goos/goarch ("" matches any).
func matchGo(db *DB, path, v, shown, loc, plat, goos, goarch string) []Finding {
	var found []Finding
	for _, e := range db.lookup("Go", path) {
		for i := range e.Affected {
			a := &e.Affected[i]
			if a.Package.Ecosystem != "Go" || a.Package.Name != path || !a.onPlatform(goos, goarch) {
				continue
			}
			ok, fixed := affectedSemver(a, v)
			if !ok {
				continue
			}
			if fixed != "" {
				// Shown as Go shows versions: v0.3.3, go1.22.3.
				fixed = osvSemver(fixed)
				if path == "stdlib" || path == "toolchain" {
					fixed = "go" + strings.TrimPrefix(fixed, "v")
				}
			}
			found = append(found, newFinding(e, a, shown, fixed, loc, plat))
			break
		}
	}
	return mergeAliases(found)
}

// affectedSemver reports whether v falls in a's SEMVER ranges or versions,
// and the lowest fixed version above v.
func affectedSemver(a *Affected, v string) (bool, string) {
	for _, s := range a.Versions {
		if osvSemver(s) == v {
			return true, lowestFixed(a, v)
		}
	}
	for _, r := range a.Ranges {
		if r.Type != "SEMVER" {
			continue
		}
		if inRange(r, v) {
			return true, lowestFixed(a, v)
		}
	}
	return false, ""
}

type event struct {
	v    string
	kind byte // i introduced, f fixed, l last_affected
}

func inRange(r Range, v string) bool {
	return inRangeCmp(r, v, osvSemver, semver.Compare)
}

// inRangeCmp walks r's events in version order (norm turns an event value
// into a comparable version, cmp orders versions) and reports whether v is
// affected.
func inRangeCmp(r Range, v string, norm func(string) string, cmp func(a, b string) int) bool {
	var evs []event
	for _, e := range r.Events {
		switch {
		case e.Introduced != "":
			evs = append(evs, event{e.Introduced, 'i'})
		case e.Fixed != "":
			evs = append(evs, event{e.Fixed, 'f'})
		case e.LastAffected != "":
			evs = append(evs, event{e.LastAffected, 'l'})
		}
	}
	order := func(a, b event) int {
		// "0" means the beginning of time in every ecosystem.
		switch {
		case a.v == "0" && b.v == "0":
			return 0
		case a.v == "0":
			return -1
		case b.v == "0":
			return 1
		}
		return cmp(norm(a.v), norm(b.v))
	}
	slices.SortStableFunc(evs, order)
	affected := false
	for _, e := range evs {
		c := 1
		if e.v != "0" {
			c = cmp(v, norm(e.v))
		}
		switch e.kind {
		case 'i':
			if c >= 0 {
				affected = true
			}
		case 'f':
			if c >= 0 {
				affected = false
			}
		case 'l':
			if c > 0 {
				affected = false
			}
		}
	}
	return affected
}

func lowestFixed(a *Affected, v string) string {
	best := ""
	for _, r := range a.Ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed == "" {
				continue
			}
			f := osvSemver(e.Fixed)
			if semver.Compare(f, v) > 0 && (best == "" || semver.Compare(f, osvSemver(best)) < 0) {
				best = e.Fixed
			}
		}
	}
	return best
}

// matchOS matches an OS package by the entries' version lists and, for
// Debian, by ECOSYSTEM ranges ordered as dpkg orders versions. Alpine
// ranges need apk's version ordering, which is not implemented: Alpine
// entries match only when they list the installed version.
func matchOS(db *DB, p inventory.Package) []Finding {
	eco := map[string]string{"deb": "Debian", "apk": "Alpine"}[p.Type]
	if eco == "" {
		return nil
	}
	var found []Finding
	names := []string{p.Name}
	if p.Source != "" && p.Source != p.Name {
		names = append(names, p.Source) // Debian advisories name source packages
	}
	ident := func(s string) string { return s }
	for _, name := range names {
		for _, e := range db.lookup(eco, name) {
			for i := range e.Affected {
				a := &e.Affected[i]
				hit, fixed := slices.Contains(a.Versions, p.Version), ""
				if eco == "Debian" {
					for _, r := range a.Ranges {
						if r.Type == "ECOSYSTEM" && inRangeCmp(r, p.Version, ident, compareDeb) {
							hit = true
							for _, ev := range r.Events {
								if ev.Fixed != "" && compareDeb(ev.Fixed, p.Version) > 0 && (fixed == "" || compareDeb(ev.Fixed, fixed) < 0) {
									fixed = ev.Fixed
								}
							}
						}
					}
				}
				if hit {
					f := newFinding(e, a, p.Version, fixed, p.DB, p.Platform)
					f.Package = p.Name
					found = append(found, f)
					break
				}
			}
		}
	}
	return mergeAliases(found)
}

func newFinding(e *Entry, a *Affected, version, fixed, loc, plat string) Finding {
	f := Finding{
		ID: e.ID, Aliases: e.Aliases, Summary: e.Summary, Ecosystem: a.Package.Ecosystem,
		Package: a.Package.Name, Version: version, Fixed: fixed, Location: loc, Platform: plat,
		Severity: score(e, a),
	}
	if i := strings.Index(f.Ecosystem, ":"); i > 0 {
		f.Ecosystem = f.Ecosystem[:i]
	}
	if !e.Published.IsZero() && e.Published.Year() > 1 {
		t := e.Published.UTC()
		f.Published = &t
	}
	if strings.HasPrefix(e.ID, "GO-") {
		f.URL = "https://pkg.go.dev/vuln/" + e.ID
	} else {
		f.URL = "https://osv.dev/vulnerability/" + e.ID
	}
	return f
}

// mergeAliases folds findings of one package that are the same
// vulnerability under several IDs (a GO- entry and its GHSA alias) into
// one, keeping the Go ID, the union of aliases, the highest severity and
// the earliest publication date.
func mergeAliases(fs []Finding) []Finding {
	if len(fs) < 2 {
		return fs
	}
	slices.SortFunc(fs, func(a, b Finding) int {
		// GO- IDs first so they become the primary record.
		return cmp.Or(cmp.Compare(goRank(a.ID), goRank(b.ID)), cmp.Compare(a.ID, b.ID))
	})
	var out []Finding
	for _, f := range fs {
		merged := false
		for i := range out {
			o := &out[i]
			if slices.Contains(o.Aliases, f.ID) || slices.Contains(f.Aliases, o.ID) {
				for _, al := range append([]string{f.ID}, f.Aliases...) {
					if al != o.ID && !slices.Contains(o.Aliases, al) {
						o.Aliases = append(o.Aliases, al)
					}
				}
				if f.Severity.Level > o.Severity.Level {
					o.Severity = f.Severity
				}
				if f.Published != nil && (o.Published == nil || f.Published.Before(*o.Published)) {
					o.Published = f.Published
				}
				if o.Fixed == "" {
					o.Fixed = f.Fixed
				}
				merged = true
				break
			}
		}
		if !merged {
			f.Aliases = slices.Clone(f.Aliases)
			out = append(out, f)
		}
	}
	return out
}

func goRank(id string) int {
	if strings.HasPrefix(id, "GO-") {
		return 0
	}
	return 1
}
