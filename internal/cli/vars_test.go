package cli

import (
	"bytes"
	"strings"
	"testing"
)

// runCLIIn is runCLI with a state dir the caller keeps between commands.
func runCLIIn(t *testing.T, state string, args ...string) (string, int) {
	t.Helper()
	root := New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--state-dir", state}, args...))
	err := root.Execute()
	if err != nil {
		out.WriteString(err.Error())
	}
	return out.String(), Code(err)
}

func TestRunVars(t *testing.T) {
	repo := gitRepo(t, `name: vars
vars: {profile: full}
stages:
  - name: build
    steps:
      - name: show
        env: {PROFILE: "${vars.profile}"}
        run: 'echo "profile=$PROFILE"'
  - name: prod
    approval: {required: true}
    steps:
      - {name: deploy, env: {PROFILE: "${vars.profile}"}, run: 'echo "deploy profile=$PROFILE"'}
`)
	state := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"default", []string{"run", "--dir", repo, "--progress", "plain"}, ExitWaiting, "profile=full"},
		{"override", []string{"run", "--dir", repo, "--progress", "plain", "--var", "profile=short"}, ExitWaiting, "profile=short"},
		{"unknown name", []string{"run", "--dir", repo, "--var", "profil=short"}, ExitUsage, `--var: variable "profil" is not declared in the pipeline's vars: block (it declares profile)`},
		{"no equals sign", []string{"run", "--dir", repo, "--var", "profile"}, ExitUsage, `--var "profile": want NAME=VALUE`},
		{"with resume", []string{"run", "--resume", "1", "--var", "profile=x"}, ExitUsage, "--var cannot be combined with --resume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCLIIn(t, state, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and output containing %q", code, out, tt.code, tt.want)
			}
		})
	}
	// Run 2 set profile=short; approved and resumed, prod sees it again.
	if out, code := runCLIIn(t, state, "approve", "2", "--dir", repo); code != 0 {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}
	out, code := runCLIIn(t, state, "logs", "2")
	if code != 0 || !strings.Contains(out, "deploy profile=short") {
		t.Errorf("logs of the resumed run: exit %d\n%s\nwant deploy profile=short", code, out)
	}
}
