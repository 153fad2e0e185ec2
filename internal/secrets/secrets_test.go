package secrets

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// Secrets are assembled at run time so that this file holds none.
var (
	awsKey    = "AKIA" + "IOSFODNN7EXAMPLE"
	ghToken   = "ghp" + "_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
	ghPAT     = "github" + "_pat_" + "11ABCDEFG0" + strings.Repeat("aZ9_xQ3", 10)
	slackTok  = "xox" + "b-" + "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
	slackHook = "https://hooks.slack.com/" + "services/" + "T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX"
	pemBegin  = "-----BEGIN " + "RSA PRIVATE KEY-----"
	highEnt   = "q8Z#v2Lm!R7x@Kp4"
)

func TestScanLine(t *testing.T) {
	for _, tc := range []struct {
		name, line, rule string
		col              int
	}{
		{"aws", `key := "` + awsKey + `"`, "aws-access-key-id", 9},
		{"github classic", `GITHUB_TOKEN=` + ghToken, "github-token", 14},
		{"github fine-grained", `token: ` + ghPAT, "github-fine-grained-token", 8},
		{"slack token", `bot = ` + slackTok, "slack-token", 7},
		{"slack webhook", `url: ` + slackHook, "slack-webhook", 6},
		{"private key", pemBegin, "private-key", 1},
		{"generic go", `dbPassword := "` + highEnt + `"`, "generic-secret", 16},
		{"generic yaml", `api_key: '` + highEnt + `'`, "generic-secret", 11},
		{"low entropy", `password = "passwordpassword"`, "", 0},
		{"placeholder", `password = "${DB_PASSWORD}"`, "", 0},
		{"no assignment", `the token is somewhere`, "", 0},
		{"aws lookalike", `AKIAshort`, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := ScanLine(Rules(), tc.line)
			if tc.rule == "" {
				if len(ms) != 0 {
					t.Errorf("got %d matches (%s), want none", len(ms), ms[0].Rule.ID)
				}
				return
			}
			if len(ms) != 1 {
				t.Fatalf("got %d matches, want 1 %s", len(ms), tc.rule)
			}
			if ms[0].Rule.ID != tc.rule || ms[0].Column != tc.col {
				t.Errorf("got %s at column %d, want %s at %d", ms[0].Rule.ID, ms[0].Column, tc.rule, tc.col)
			}
			f := ms[0].Finding("a.go", 3, "")
			if tc.rule != "private-key" && strings.Contains(f.Message, tc.line[tc.col+3:]) {
				t.Errorf("message %q leaks the secret", f.Message)
			}
		})
	}
}

func TestEntropy(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want float64
	}{{"", 0}, {"aaaa", 0}, {"ab", 1}, {"abcd", 2}} {
		if got := Entropy(tc.s); got != tc.want {
			t.Errorf("Entropy(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHistorySecretCommittedThenRemoved(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "apt-get install git")
	}
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "feat: start")
	base := git(t, dir, "rev-parse", "HEAD")
	write(t, filepath.Join(dir, "config", "app.yaml"), "name: app\nregion: eu-west-1\naws_key: "+awsKey+"\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "feat: config")
	added := git(t, dir, "rev-parse", "HEAD")
	write(t, filepath.Join(dir, "config", "app.yaml"), "name: app\nregion: eu-west-1\n")
	git(t, dir, "commit", "-q", "-am", "fix: drop key")

	sc := &Scanner{}
	r := &findings.Report{Tool: Tool}
	if err := sc.ScanTree(context.Background(), dir, r); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("tree findings = %v, want none", r.Findings)
	}
	if err := sc.ScanHistory(context.Background(), dir, []string{base + "..HEAD"}, r); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("history findings = %v, want 1", r.Findings)
	}
	f := r.Findings[0]
	if f.Rule != "aws-access-key-id" || f.File != "config/app.yaml" || f.Line != 3 || f.Column != 10 {
		t.Errorf("got %s, want aws-access-key-id at config/app.yaml:3:10", f)
	}
	if !strings.Contains(f.Message, added[:12]) || strings.Contains(f.Message, awsKey) {
		t.Errorf("message %q: want commit %s and no secret", f.Message, added[:12])
	}

	// Scanning a subdirectory: paths relative to it, other directories left out.
	sub := &findings.Report{Tool: Tool}
	if err := (&Scanner{}).ScanHistory(context.Background(), filepath.Join(dir, "config"), []string{base + "..HEAD"}, sub); err != nil {
		t.Fatal(err)
	}
	if len(sub.Findings) != 1 || sub.Findings[0].Location() != "app.yaml:3:10" {
		t.Errorf("config/ history findings = %v, want one at app.yaml:3:10", sub.Findings)
	}
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "other", "x.txt"), "x\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "chore: other")
	none := &findings.Report{Tool: Tool}
	if err := (&Scanner{}).ScanHistory(context.Background(), filepath.Join(dir, "other"), []string{base + "..HEAD"}, none); err != nil {
		t.Fatal(err)
	}
	if len(none.Findings) != 0 {
		t.Errorf("other/ history findings = %v, want none", none.Findings)
	}

	// Only the last commit: the secret was removed there, not added.
	r2 := &findings.Report{Tool: Tool}
	if err := (&Scanner{}).ScanHistory(context.Background(), dir, []string{"HEAD~1^!"}, r2); err != nil {
		t.Fatal(err)
	}
	if len(r2.Findings) != 0 {
		t.Errorf("HEAD^! findings = %v, want none", r2.Findings)
	}
	if err := (&Scanner{}).ScanHistory(context.Background(), dir, []string{"nosuchrev..HEAD"}, r2); err == nil {
		t.Error("bad range: want error")
	}
}

func TestTreeExclude(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "testdata", "k.txt"), awsKey+"\n")
	write(t, filepath.Join(dir, "app", "k.txt"), "\n"+awsKey+"\n")
	write(t, filepath.Join(dir, "bin"), "\x00"+awsKey)
	r := &findings.Report{Tool: Tool}
	if err := (&Scanner{Exclude: []string{"**/testdata/**"}}).ScanTree(context.Background(), dir, r); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Location() != "app/k.txt:2:1" {
		t.Errorf("got %v, want one finding at app/k.txt:2:1", r.Findings)
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add("commit abc\ndiff --git a/x b/x\n+++ b/x\n@@ -0,0 +1,2 @@\n+a\n+" + awsKey + "\n")
	f.Add("@@ broken\n")
	f.Fuzz(func(t *testing.T, log string) {
		r := &findings.Report{}
		_ = (&Scanner{seen: map[string]bool{}}).parseLog(strings.NewReader(log), Rules(), r)
	})
}

func TestParseLogLongLine(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	log := "commit 0123456789abcdef\ndiff --git a/a.min.js b/a.min.js\n+++ b/a.min.js\n@@ -0,0 +1,2 @@\n+" + long + "\n+k = " + awsKey
	r := &findings.Report{}
	if err := (&Scanner{seen: map[string]bool{}}).parseLog(strings.NewReader(log), Rules(), r); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Location() != "a.min.js:2:5" {
		t.Errorf("got %v, want one finding at a.min.js:2:5", r.Findings)
	}
}
