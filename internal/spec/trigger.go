package spec

import "github.com/gantry-ci/gantry/internal/expression"

// Match applies the on: block to an event: for "push" the branch pushed
// to, for "pull_request" the target (base) branch. An empty block matches
// every event.
func (t Triggers) Match(event, branch, base string) bool {
	if t.Push == nil && t.PullRequest == nil {
		return true
	}
	var f *BranchFilter
	name := branch
	switch event {
	case "push":
		f = t.Push
	case "pull_request":
		f = t.PullRequest
		name = base
	}
	if f == nil {
		return false
	}
	for _, pat := range f.BranchesIgnore {
		if expression.GlobMatch(pat, name) {
			return false
		}
	}
	if len(f.Branches) == 0 {
		return true
	}
	for _, pat := range f.Branches {
		if expression.GlobMatch(pat, name) {
			return true
		}
	}
	return false
}

// CancelsPrevious reports whether a newer push to a branch cancels the
// older run of that branch on a server (on.push.cancel_previous, default
// true).
func (t Triggers) CancelsPrevious() bool {
	if t.Push == nil || t.Push.CancelPrevious == nil {
		return true
	}
	return *t.Push.CancelPrevious
}

// Limit is the most runs of the pipeline a server runs at once
// (on.concurrency); 0 is no limit.
func (t Triggers) Limit() int { return max(t.Concurrency, 0) }
