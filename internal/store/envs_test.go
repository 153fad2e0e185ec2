package store

import (
	"context"
	"errors"
	"testing"
)

func TestEnvironmentKeepsItsPort(t *testing.T) { eachBackend(t, testEnvironmentKeepsItsPort) }

func testEnvironmentKeepsItsPort(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	e, err := s.CreateEnvironment(ctx, "staging", 18080)
	if err != nil {
		t.Fatal(err)
	}
	if e.Port != 18080 {
		t.Errorf("port = %d, want 18080", e.Port)
	}
	// A second create (another deploy, another process) keeps the first port.
	again, err := s.CreateEnvironment(ctx, "staging", 18081)
	if err != nil {
		t.Fatal(err)
	}
	if again.Port != 18080 {
		t.Errorf("port after second create = %d, want 18080", again.Port)
	}
	if _, err := s.CreateEnvironment(ctx, "prod", 18080); !errors.Is(err, ErrPortTaken) {
		t.Errorf("create prod on staging's port: error %v, want ErrPortTaken", err)
	}
	s.Close()
	s = be.open(t, dir)
	got, err := s.Environment(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 18080 || got.Created.IsZero() {
		t.Errorf("after reopen: %+v, want port 18080 and a creation time", got)
	}
	if _, err := s.Environment(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown environment: error %v, want ErrNotFound", err)
	}
	all, err := s.Environments(ctx)
	if err != nil || len(all) != 1 || all[0].Name != "staging" {
		t.Errorf("Environments = %+v, %v; want [staging]", all, err)
	}
}

func TestEnvironmentNames(t *testing.T) { eachBackend(t, testEnvironmentNames) }

func testEnvironmentNames(t *testing.T, be *backend) {
	s := be.open(t, t.TempDir())
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"staging", true}, {"pr-12", true}, {"a", true},
		{"", false}, {"../x", false}, {"Staging", false}, {"-a", false}, {"a-", false}, {"a/b", false}, {"a.b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateEnvironment(context.Background(), tc.name, 20000+len(tc.name))
			if got := err == nil; got != tc.ok {
				t.Errorf("create %q: error %v, want ok=%v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestEnvRevisions(t *testing.T) { eachBackend(t, testEnvRevisions) }

func testEnvRevisions(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	if err := s.AddEnvRevision(ctx, &EnvRevision{Environment: "staging", Status: RevisionDeploying}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revision of a missing environment: error %v, want ErrNotFound", err)
	}
	if _, err := s.CreateEnvironment(ctx, "staging", 18090); err != nil {
		t.Fatal(err)
	}
	add := func(status string) int {
		t.Helper()
		r := &EnvRevision{Environment: "staging", Digest: "sha256:aa", Workloads: []byte(`[{"name":"app"}]`), Who: "ann", Reason: "deploy", Status: status}
		if err := s.AddEnvRevision(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Number
	}
	one, two := add(RevisionDeploying), add(RevisionDeploying)
	if one != 1 || two != 2 {
		t.Fatalf("numbers = %d, %d; want 1, 2", one, two)
	}
	if err := s.ServeEnvRevision(ctx, "staging", one); err != nil {
		t.Fatal(err)
	}
	if err := s.ServeEnvRevision(ctx, "staging", two); err != nil {
		t.Fatal(err)
	}
	three := add(RevisionDeploying)
	if err := s.SetEnvRevisionStatus(ctx, "staging", three, RevisionFailed, "GET /readyz: 503"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEnvRevisionStatus(ctx, "staging", 9, RevisionFailed, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("status of a missing revision: error %v, want ErrNotFound", err)
	}
	revs, err := s.EnvRevisions(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{RevisionSuperseded, RevisionServing, RevisionFailed}
	if len(revs) != len(want) {
		t.Fatalf("got %d revisions, want %d", len(revs), len(want))
	}
	for i, r := range revs {
		if r.Status != want[i] {
			t.Errorf("revision %d status = %q, want %q", r.Number, r.Status, want[i])
		}
	}
	if revs[2].Message != "GET /readyz: 503" || string(revs[0].Workloads) != `[{"name":"app"}]` || revs[0].Who != "ann" {
		t.Errorf("revision fields not kept: %+v", revs)
	}
	r, err := s.EnvRevision(ctx, "staging", 2)
	if err != nil || r.Status != RevisionServing {
		t.Errorf("EnvRevision(2) = %+v, %v", r, err)
	}
	if _, err := s.EnvRevision(ctx, "staging", 7); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing revision: error %v, want ErrNotFound", err)
	}
}

func TestLockEnvironment(t *testing.T) { eachBackend(t, testLockEnvironment) }

func testLockEnvironment(t *testing.T, be *backend) {
	dir := t.TempDir()
	s := be.open(t, dir)
	unlock, err := s.LockEnvironment("staging")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LockEnvironment("staging"); !errors.Is(err, ErrEnvLocked) {
		t.Errorf("second lock in this store: error %v, want ErrEnvLocked", err)
	}
	// Another store on the same directory stands for another process.
	other := be.open(t, dir)
	if _, err := other.LockEnvironment("staging"); !errors.Is(err, ErrEnvLocked) {
		t.Errorf("lock from another store: error %v, want ErrEnvLocked", err)
	}
	if u, err := other.LockEnvironment("prod"); err != nil {
		t.Errorf("lock of another environment: %v", err)
	} else {
		u()
	}
	unlock()
	u, err := other.LockEnvironment("staging")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u()
}
