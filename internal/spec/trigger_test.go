package spec

import "testing"

func TestTriggersMatch(t *testing.T) {
	no := false
	on := Triggers{
		Push:        &BranchFilter{Branches: []string{"main", "release/*"}, BranchesIgnore: []string{"release/old"}, CancelPrevious: &no},
		PullRequest: &BranchFilter{Branches: []string{"main"}},
	}
	tests := []struct {
		name                string
		t                   Triggers
		event, branch, base string
		want                bool
	}{
		{"empty block matches push", Triggers{}, "push", "anything", "", true},
		{"empty block matches pr", Triggers{}, "pull_request", "x", "y", true},
		{"push to main", on, "push", "main", "", true},
		{"push to glob", on, "push", "release/1.2", "", true},
		{"push ignored", on, "push", "release/old", "", false},
		{"push elsewhere", on, "push", "feature/x", "", false},
		{"pr into main", on, "pull_request", "feature/x", "main", true},
		{"pr into dev", on, "pull_request", "main", "dev", false},
		{"pr only block refuses push", Triggers{PullRequest: &BranchFilter{}}, "push", "main", "", false},
		{"unknown event", on, "tag", "main", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.Match(tt.event, tt.branch, tt.base); got != tt.want {
				t.Errorf("Match(%s, %s, %s) = %v, want %v", tt.event, tt.branch, tt.base, got, tt.want)
			}
		})
	}
	if on.CancelsPrevious() {
		t.Errorf("CancelsPrevious with cancel_previous: false = true")
	}
	if !(Triggers{}).CancelsPrevious() {
		t.Errorf("CancelsPrevious by default = false, want true")
	}
	if got := (Triggers{}).Limit(); got != 0 {
		t.Errorf("Limit without on.concurrency = %d, want 0 (no limit)", got)
	}
	if got := (Triggers{Concurrency: 3}).Limit(); got != 3 {
		t.Errorf("Limit with on.concurrency: 3 = %d, want 3", got)
	}
}
