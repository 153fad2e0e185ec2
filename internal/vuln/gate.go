package vuln

import (
	"fmt"
	"slices"
	"time"

	"github.com/gantry-ci/gantry/internal/policy"
)

// Status is what the gate decided about one finding.
type Status string

// Statuses.
const (
	// StatusOpen: not excepted; it fails the gate if its severity does.
	StatusOpen Status = "open"
	// StatusExcepted: covered by an unexpired exception.
	StatusExcepted Status = "excepted"
	// StatusExpired: its exception expired; treated like Open.
	StatusExpired Status = "expired"
)

// Unscored policies: how findings without a usable severity count.
const (
	UnscoredFail   = "fail"   // as HIGH (the default: the Go database has no severities)
	UnscoredWarn   = "warn"   // reported and warned about, never failing
	UnscoredIgnore = "ignore" // reported only
)

// Gate decides which findings fail a scan: the seed's rule by default,
// HIGH or CRITICAL findings not covered by an unexpired exception.
type Gate struct {
	// FailOn lists the failing severities (default HIGH, CRITICAL).
	FailOn []Level
	// Unscored is UnscoredFail (default), UnscoredWarn or UnscoredIgnore.
	Unscored string
	// FixedOnly makes findings without a fixed version never fail.
	FixedOnly bool
	// NoFixOlderThan, when > 0, lets a finding without a fix fail only
	// once it was published longer ago than this; findings of unknown
	// publication date count as old.
	NoFixOlderThan time.Duration
	// Exceptions are the repository's risk exceptions.
	Exceptions *policy.Exceptions
	// WarnWithin warns about exceptions expiring this soon (default 14 days).
	WarnWithin time.Duration
}

// Verdict is the gate's result.
type Verdict struct {
	Findings []Finding `json:"findings"`
	// Failing counts findings that fail the gate.
	Failing  int      `json:"failing"`
	Excepted int      `json:"excepted"`
	Warnings []string `json:"warnings,omitempty"`
	// Counts by severity level name (CRITICAL, HIGH, ..., UNSCORED).
	Counts map[string]int `json:"counts"`
}

// Passed reports whether no finding fails.
func (v *Verdict) Passed() bool { return v.Failing == 0 }

// Check validates the gate's settings.
func (g Gate) Check() error {
	switch g.Unscored {
	case "", UnscoredFail, UnscoredWarn, UnscoredIgnore:
	default:
		return fmt.Errorf("unscored: %q is not fail, warn or ignore", g.Unscored)
	}
	if g.NoFixOlderThan < 0 {
		return fmt.Errorf("no_fix_older_than: must not be negative")
	}
	return nil
}

// Apply decides every finding at time now.
func (g Gate) Apply(fs []Finding, now time.Time) *Verdict {
	failOn := g.FailOn
	if len(failOn) == 0 {
		failOn = []Level{High, Critical}
	}
	unscored := g.Unscored
	if unscored == "" {
		unscored = UnscoredFail
	}
	within := g.WarnWithin
	if within == 0 {
		within = 14 * 24 * time.Hour
	}
	v := &Verdict{Findings: []Finding{}, Counts: map[string]int{}}
	unscoredWarned := 0
	for _, f := range fs {
		f.Status, f.Fails, f.Reason, f.Exception = StatusOpen, false, "", nil
		v.Counts[f.Severity.Level.String()]++
		severe := slices.Contains(failOn, f.Severity.Level)
		if f.Severity.Level == Unscored {
			severe = unscored == UnscoredFail
			if unscored == UnscoredWarn {
				unscoredWarned++
			}
		}
		if m := g.Exceptions.Lookup(append([]string{f.ID}, f.Aliases...), f.Package, now); m != nil {
			e := m.Exception
			f.Exception = &Exception{File: e.File, Line: e.Pos.Line, Owner: e.Owner, Justification: e.Justification, Expires: e.Expires.Value}
			if m.Expired {
				f.Status = StatusExpired
				f.Reason = fmt.Sprintf("exception %s (owner %s) expired on %s", e.Line(), e.Owner, e.Expires.Value)
			} else {
				f.Status = StatusExcepted
				f.Reason = fmt.Sprintf("excepted until %s by %s (%s)", e.Expires.Value, e.Owner, e.Line())
				v.Excepted++
			}
		}
		if f.Status != StatusExcepted && severe {
			switch {
			case f.Fixed == "" && g.FixedOnly:
				f.Reason = join(f.Reason, "no fix available (fixed_only)")
			case f.Fixed == "" && g.NoFixOlderThan > 0 && f.Published != nil && now.Sub(*f.Published) < g.NoFixOlderThan:
				f.Reason = join(f.Reason, fmt.Sprintf("no fix yet, published %s (within no_fix_older_than)", f.Published.Format("2006-01-02")))
			default:
				f.Fails = true
				v.Failing++
			}
		}
		v.Findings = append(v.Findings, f)
	}
	if unscoredWarned > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d finding(s) have no severity in the database (unscored: warn)", unscoredWarned))
	}
	for _, e := range g.Exceptions.Expiring(now, within) {
		v.Warnings = append(v.Warnings, fmt.Sprintf("exception for %s (%s, owner %s) expires on %s", e.ID, e.Line(), e.Owner, e.Expires.Value))
	}
	return v
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
