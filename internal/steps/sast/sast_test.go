package sast

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	sastlib "github.com/gantry-ci/gantry/internal/sast"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"history: weekly\n", "history"},
		{"snyk: maybe\n", "snyk"},
		{"fail_on: fatal\n", "fail_on"},
		{"dir: ../x\n", "dir"},
		{"bogus: 1\n", "pipeline.yaml:1:1"},
	} {
		_, err := Kind.New(steptest.Inputs{YAML: tc.yaml})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want mention of %s", tc.yaml, err, tc.want)
		}
	}
}

func TestPlanted(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../sast/testdata/vulnapp", dir)
	st, err := Kind.New(steptest.Inputs{YAML: "history: none\n"})
	if err != nil {
		t.Fatal(err)
	}
	env, log, art := steptest.NewEnv(t, dir, "security", "sast")
	res, err := st.Run(context.Background(), env)
	var fe *checkstep.FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want gate failure\n%s", err, log)
	}
	// 6 gosec findings (one G304 suppressed with a reason) + the
	// reasonless suppression of G501.
	if got, want := res.Outputs["findings"], 7; got != want {
		t.Errorf("findings = %v, want %d\n%s", got, want, log)
	}
	if got, want := res.Outputs["suppressed"], 1; got != want {
		t.Errorf("suppressed = %v, want %d", got, want)
	}
	for _, want := range []string{"main.go:5:18: error: gantry:ignore G501 has no reason", "main.go:14:96: error: TLS InsecureSkipVerify", "store/store.go:30: suppressed G304"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	data, err := os.ReadFile(filepath.Join(art, "sast.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := findings.ReadSARIF(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Tool != "gosec" || len(rs[0].Findings) != 6 {
		t.Errorf("SARIF runs = %d, first %s with %d results", len(rs), rs[0].Tool, len(rs[0].Findings))
	}
}

func TestHistoryAndSnyk(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "apt-get install git")
	}
	dir := t.TempDir()
	gitEnv := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = gitEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "chore: init")
	base := git("rev-parse", "HEAD")
	key := "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	if err := os.WriteFile(filepath.Join(dir, "id_ed25519"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "feat: key")
	git("rm", "-q", "id_ed25519")
	git("commit", "-q", "-m", "fix: remove key")
	head := git("rev-parse", "HEAD")

	bin := t.TempDir()
	script := "#!/bin/sh\necho '{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"SnykCode\"}},\"results\":[{\"ruleId\":\"go/HardcodedCredential\",\"level\":\"warning\",\"message\":{\"text\":\"hardcoded\"},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\"go.mod\"},\"region\":{\"startLine\":1}}}]}]}]}'\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "snyk"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Kind.New(steptest.Inputs{YAML: "fail_on: error\n"})
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, dir, "security", "sast")
	env.Git.SHA, env.Git.BaseRef = head, base
	env.Vars = append(gitEnv, "PATH="+bin+":"+os.Getenv("PATH"), "SNYK_TOKEN=secret-token-value")
	res, err := st.Run(context.Background(), env)
	var fe *checkstep.FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want gate failure\n%s", err, log)
	}
	if got := res.Outputs["secrets"]; got != 1 {
		t.Errorf("secrets = %v, want 1\n%s", got, log)
	}
	if !strings.Contains(log.String(), "id_ed25519:1:1: error: private key") || !strings.Contains(log.String(), "go.mod:1: warning: hardcoded [go/HardcodedCredential]") {
		t.Errorf("log:\n%s", log)
	}
	if strings.Contains(log.String(), "secret-token-value") || strings.Contains(log.String(), "b3BlbnNzaC1rZXktdjEAAAAA") {
		t.Errorf("log leaks a secret:\n%s", log)
	}

	// The push of the last commit alone (no base) adds no secret.
	env.Git.BaseRef = ""
	env.Vars = gitEnv
	if _, err := st.Run(context.Background(), env); err != nil {
		t.Errorf("head commit alone: %v", err)
	}
}

func TestPaymentServiceClean(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the example's packages (about 20s)")
	}
	st, err := Kind.New(steptest.Inputs{YAML: "history: none\nfail_on: note\n"})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("../../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, dir, "security", "sast")
	res, err := st.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("payment-service: %v\n%s", err, log)
	}
	if res.Outputs["findings"] != 0 {
		t.Errorf("findings = %v\n%s", res.Outputs["findings"], log)
	}
}

func TestSecretSuppressed(t *testing.T) {
	dir := t.TempDir()
	val := "q8Z#v2Lm" + "!R7x@Kp4"
	src := "package cfg\n\n// gantry:ignore generic-secret -- fake value the parser tests need\nconst fixtureToken = \"" + val + "\"\n\nvar apiToken = \"" + val + "x\"\n"
	if err := os.WriteFile(filepath.Join(dir, "cfg.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Kind.New(steptest.Inputs{YAML: "history: none\n"})
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, dir, "security", "sast")
	res, err := st.Run(context.Background(), env)
	if err == nil {
		t.Fatalf("want gate failure for the unsuppressed secret\n%s", log)
	}
	if res.Outputs["secrets"] != 1 || res.Outputs["suppressed"] != 1 {
		t.Errorf("outputs = %v\n%s", res.Outputs, log)
	}
	if !strings.Contains(log.String(), "cfg.go:6:17: error: high-entropy secret assigned to a credential name q8Z#****") || strings.Contains(log.String(), val) {
		t.Errorf("log:\n%s", log)
	}
}

func TestSnykRequired(t *testing.T) {
	st, err := Kind.New(steptest.Inputs{YAML: "history: none\nsecrets: false\nsnyk: required\nrules: [G402]\n"})
	if err != nil {
		t.Fatal(err)
	}
	env, _, _ := steptest.NewEnv(t, t.TempDir(), "security", "sast")
	env.Vars = []string{"PATH=/nonexistent", "SNYK_TOKEN=tok"}
	if _, err := st.Run(context.Background(), env); !errors.Is(err, sastlib.ErrSnykUnavailable) {
		t.Errorf("err = %v, want ErrSnykUnavailable", err)
	}
}
