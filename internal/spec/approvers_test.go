package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

func TestParseApprovers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Approvers
		wantErr string
	}{
		{name: "roles", in: "oncall-lead: [alice, bob]\nrelease: [carol]\n",
			want: Approvers{"oncall-lead": {"alice", "bob"}, "release": {"carol"}}},
		{name: "not a map", in: "- alice\n", wantErr: "approvers.yaml:1:1: expected a mapping of roles"},
		{name: "people not a list", in: "oncall-lead: alice\n", wantErr: "approvers.yaml:1:14:"},
		{name: "empty role", in: "oncall-lead: []\n", wantErr: `approvers.yaml:1:1: role "oncall-lead" lists nobody`},
		{name: "bad role", in: "on call: [alice]\n", wantErr: `approvers.yaml:1:1: role "on call" must start`},
		{name: "bad user", in: "oncall-lead:\n  - alice\n  - \"bob smith\"\n", wantErr: `approvers.yaml:3:5: user name "bob smith"`},
		{name: "duplicate role", in: "a: [x]\na: [y]\n", wantErr: `approvers.yaml:2:1: role "a" is listed twice`},
		{name: "empty file", in: "", wantErr: "approvers.yaml:1:1: empty document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseApprovers("approvers.yaml", []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error: got %v, want one containing %q", err, tc.wantErr)
				}
				var ye *yamlx.Error
				if !errors.As(err, &ye) {
					t.Errorf("error %v is not a located *yamlx.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApproversHolds(t *testing.T) {
	a := Approvers{"oncall-lead": {"alice", "bob"}, "release": {"carol", "alice"}}
	for _, tc := range []struct {
		user  string
		roles []string
		want  bool
	}{
		{"alice", []string{"oncall-lead"}, true},
		{"carol", []string{"oncall-lead"}, false},
		{"carol", []string{"oncall-lead", "release"}, true},
		{"mallory", []string{"oncall-lead", "release"}, false},
		{"alice", nil, false},
	} {
		if got := a.Holds(tc.user, tc.roles); got != tc.want {
			t.Errorf("Holds(%q, %v) = %v, want %v", tc.user, tc.roles, got, tc.want)
		}
	}
	if got := a.RolesOf("alice"); !reflect.DeepEqual(got, []string{"oncall-lead", "release"}) {
		t.Errorf("RolesOf(alice) = %v", got)
	}
}

func FuzzParseApprovers(f *testing.F) {
	f.Add([]byte("oncall-lead: [alice, bob]\n"))
	f.Add([]byte("a: [x]\na: [y]\n"))
	f.Add([]byte("a: &x [b]\nc: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseApprovers("f.yaml", data)
		if err != nil {
			return
		}
		for role, people := range got {
			if !nameRE.MatchString(role) || len(people) == 0 {
				t.Fatalf("accepted role %q with %v", role, people)
			}
		}
	})
}

func TestValidateRollbackAndApproval(t *testing.T) {
	base := "name: p\nstages:\n  - name: s\n    steps: [{name: a, run: 'true'}]\n"
	tests := []struct {
		name      string
		extra     string
		rollbacks []string
		wantErr   string
	}{
		{name: "rollback without handler", extra: "    on_failure: [{rollback: staging}]\n",
			wantErr: `pipeline.yaml:5:18: no rollback handler is registered for environment "staging"`},
		{name: "rollback with handler", extra: "    on_failure: [{rollback: staging}]\n", rollbacks: []string{"staging"}},
		{name: "timeout", extra: "    approval: {required: true, roles: [oncall-lead], timeout: 24h}\n"},
		{name: "timeout not required", extra: "    approval: {timeout: 24h}\n", wantErr: "pipeline.yaml:5:15: approval lists roles or a timeout but required is false"},
		{name: "bad role", extra: "    approval: {required: true, roles: [\"on call\"]}\n", wantErr: `approval role "on call"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := NewRegistry(nil, nil)
			reg.Rollbacks = tc.rollbacks
			p, err := Parse("pipeline.yaml", []byte(base+tc.extra), reg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if string(p.Source) != base+tc.extra {
					t.Errorf("Source: got %q, want the file's bytes", p.Source)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error: got %v, want %q", err, tc.wantErr)
			}
		})
	}
}
