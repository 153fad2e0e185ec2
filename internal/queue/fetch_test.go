package queue

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestCheckBranch(t *testing.T) {
	good := []string{"main", "release/1.2", "feature/x-y_z", "a.b", "user@host", "ü"}
	bad := []string{"", "-x", "--upload-pack=touch /tmp/pwned", "$(touch /tmp/pwned)", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", `a\b`,
		"/a", "a/", "a//b", "a.", ".a", "a/.b", "a.lock", "a/b.lock/c", "a@{1}", "@", "a\x00b", "a\nb", "a\x7f", strings.Repeat("a", 256)}
	for _, b := range good {
		if err := CheckBranch(b); err != nil {
			t.Errorf("CheckBranch(%q) = %v, want nil", b, err)
		}
	}
	for _, b := range bad {
		if err := CheckBranch(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckBranch(%q) = %v, want ErrInvalid", b, err)
		}
	}
}

// TestCheckBranchAgreesWithGit compares CheckBranch with git
// check-ref-format --branch on names git accepts or refuses (git is
// laxer only on a leading "-", which gantry refuses too).
func TestCheckBranchAgreesWithGit(t *testing.T) {
	for _, b := range []string{"main", "a..b", "a b", "a.lock", "a//b", "x/.y", "a@{0}", "re/lease", "a~", "ok.ok"} {
		err := exec.Command("git", "check-ref-format", "--branch", b).Run()
		if got, want := CheckBranch(b) == nil, err == nil; got != want {
			t.Errorf("CheckBranch(%q) accepts=%v, git accepts=%v", b, got, want)
		}
	}
}

func TestCheckRepo(t *testing.T) {
	tests := []struct {
		repo  string
		local bool
		ok    bool
	}{
		{"https://github.com/acme/app.git", false, true},
		{"ssh://git@github.com/acme/app.git", false, true},
		{"git@github.com:acme/app.git", false, true},
		{"/srv/git/app", true, true},
		{"file:///srv/git/app", true, true},
		{"/srv/git/app", false, false},
		{"file:///srv/git/app", false, false},
		{"ext::sh -c touch% /tmp/pwned", false, false},
		{"ext::sh", true, false},
		{"fd::17", true, false},
		{"--upload-pack=touch /tmp/pwned", true, false},
		{"-c core.sshCommand=touch", true, false},
		{"http://example.com/app.git", false, false},
		{"git://example.com/app.git", false, false},
		{"https://-oProxyCommand=x/app", false, false},
		{"-oProxyCommand=x:app", false, false},
		{"https://example.com/a b", false, false},
		{"", true, false},
		{"relative/path", true, false},
	}
	for _, tt := range tests {
		err := CheckRepo(tt.repo, tt.local)
		if (err == nil) != tt.ok {
			t.Errorf("CheckRepo(%q, local=%v) = %v, want ok=%v", tt.repo, tt.local, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckRepo(%q) error %v does not wrap ErrInvalid", tt.repo, err)
		}
	}
}

func TestSameRepo(t *testing.T) {
	if !SameRepo("https://GitHub.com/acme/app.git", "https://github.com/acme/app") {
		t.Error("SameRepo ignores neither .git nor the host's case")
	}
	if SameRepo("https://github.com/acme/app", "https://github.com/acme/app2") {
		t.Error("SameRepo of two repositories")
	}
}

func TestFetchLocalCommit(t *testing.T) {
	src, sha := repo(t)
	dir := filepath.Join(t.TempDir(), "ws")
	f := &Fetcher{AllowLocal: true}
	if err := f.Fetch(context.Background(), src, sha, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".gantry", "pipeline.yaml")); err != nil {
		t.Errorf("the workspace has no pipeline file: %v", err)
	}
	// Local repositories are refused unless allowed.
	if err := (&Fetcher{}).Fetch(context.Background(), src, sha, filepath.Join(t.TempDir(), "ws")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Fetch of a local path without AllowLocal: %v, want ErrInvalid", err)
	}
}

// gitHTTP serves the repositories under root over smart HTTP through git
// http-backend, as a forge does.
func gitHTTP(t *testing.T, root string) *httptest.Server {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchOverHTTPSAndDefaultPipeline(t *testing.T) {
	src, sha := repo(t)
	root := t.TempDir()
	bare := filepath.Join(root, "app.git")
	gitIn(t, root, "clone", "-q", "--bare", src, bare)
	srv := gitHTTP(t, root)
	// The test server's certificate: trust it through git's own setting.
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	writeCert(t, srv, certFile)
	t.Setenv("GIT_SSL_CAINFO", certFile)
	url := srv.URL + "/app.git"
	f := &Fetcher{CacheDir: t.TempDir()}
	dir := filepath.Join(t.TempDir(), "ws")
	if err := f.Fetch(context.Background(), url, sha, dir); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(gitIn(t, dir, "rev-parse", "HEAD")); got != sha {
		t.Errorf("HEAD %s, want %s", got, sha)
	}
	b, err := f.DefaultPipeline(context.Background(), url, "main", ".gantry/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "name: t") {
		t.Errorf("default pipeline = %q", b)
	}
	if _, err := f.DefaultPipeline(context.Background(), url, "main", "nope.yaml"); !errors.Is(err, ErrNoPipeline) {
		t.Errorf("missing file: %v, want ErrNoPipeline", err)
	}
	// A commit that is not in the repository is not fetched.
	other := strings.Repeat("ab", 20)
	if err := f.Fetch(context.Background(), url, other, filepath.Join(t.TempDir(), "ws")); err == nil {
		t.Error("Fetch of an unknown commit succeeded")
	}
}

// TestHostileValuesNeverRun hands attacker-written values to every
// fetcher entry point: none may run anything (the marker never appears).
func TestHostileValuesNeverRun(t *testing.T) {
	src, sha := repo(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	hostile := []string{
		"$(touch " + marker + ")",
		"`touch " + marker + "`",
		"--upload-pack=touch " + marker,
		"-c core.sshCommand=touch " + marker,
		"ext::sh -c touch% " + marker,
		"--config=core.sshCommand=touch " + marker,
	}
	f := &Fetcher{AllowLocal: true, CacheDir: t.TempDir()}
	ctx := context.Background()
	for _, h := range hostile {
		t.Run(h, func(t *testing.T) {
			_ = f.Fetch(ctx, h, sha, filepath.Join(t.TempDir(), "ws"))
			_ = f.Fetch(ctx, src, h, filepath.Join(t.TempDir(), "ws"))
			_, _ = f.DefaultPipeline(ctx, src, h, ".gantry/pipeline.yaml")
			_, _ = f.DefaultPipeline(ctx, h, "main", ".gantry/pipeline.yaml")
			q := &Queue{cfg: Config{Fetcher: f}}
			if _, err := q.Submit(ctx, Request{Repo: src, Event: "push", Branch: h, SHA: sha}); !errors.Is(err, ErrInvalid) {
				t.Errorf("Submit with branch %q: %v, want ErrInvalid", h, err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("hostile value %q ran a command", h)
			}
		})
	}
}

func writeCert(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultPipelineFreshAndCoalesced: every answer reflects the
// branch as it was when the call arrived, and a burst of calls shares
// fetches instead of running one each.
func TestDefaultPipelineFreshAndCoalesced(t *testing.T) {
	src, _ := repo(t)
	dir := t.TempDir()
	count := filepath.Join(dir, "fetches")
	wrapper := filepath.Join(dir, "git")
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ncase \"$1\" in fetch) echo x >> '" + count + "';; esac\nexec '" + gitPath + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Git: wrapper, AllowLocal: true, CacheDir: t.TempDir()}
	ctx := context.Background()
	read := func() string {
		b, err := f.DefaultPipeline(ctx, src, "main", ".gantry/pipeline.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(); !strings.Contains(got, "name: t") {
		t.Fatalf("first read = %q", got)
	}
	if err := os.WriteFile(filepath.Join(src, ".gantry", "pipeline.yaml"), []byte("name: v2\nstages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, src, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "v2")
	if got := read(); !strings.Contains(got, "name: v2") {
		t.Fatalf("read after a push = %q, want the new file", got)
	}
	if err := os.Remove(count); err != nil {
		t.Fatal(err)
	}
	const n = 30
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := read(); !strings.Contains(got, "name: v2") {
				t.Errorf("concurrent read = %q", got)
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(count)
	if err != nil {
		t.Fatal(err)
	}
	if fetches := strings.Count(string(b), "x"); fetches >= n/2 {
		t.Errorf("%d concurrent reads ran %d fetches, want them to share", n, fetches)
	}
}

func TestSSHCommand(t *testing.T) {
	got := sshCommand("/keys/deploy key", "/etc/it's/known_hosts")
	want := `ssh -i '/keys/deploy key' -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='/etc/it'\''s/known_hosts' -o BatchMode=yes`
	if got != want {
		t.Errorf("sshCommand:\n got %s\nwant %s", got, want)
	}
	f := &Fetcher{SSHKey: "/keys/deploy"}
	if err := f.Fetch(context.Background(), "git@example.com:acme/app.git", strings.Repeat("a", 40), t.TempDir()); err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Errorf("Fetch with a key and no known_hosts: %v, want a refusal", err)
	}
	// The environment git runs with carries the key's command.
	var found bool
	for _, e := range f.env() {
		if strings.HasPrefix(e, "GIT_SSH_COMMAND=ssh -i '/keys/deploy'") {
			found = true
		}
	}
	if !found {
		t.Error("GIT_SSH_COMMAND not set for the deploy key")
	}
}
