package shell_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/shell"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func newEnv(t *testing.T, out *bytes.Buffer) *step.Env {
	t.Helper()
	return &step.Env{Stage: "s", Step: "bg", Dir: t.TempDir(), TempDir: t.TempDir(), Vars: os.Environ(), Stdout: out}
}

// running reports whether pid is a live process; a zombie waiting for a
// parent that does not reap it counts as gone.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

var pidLine = regexp.MustCompile(`(?m)^pid=(\d+)$`)

func printedPid(t *testing.T, log string) int {
	t.Helper()
	m := pidLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no pid=N line in the log:\n%s", log)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// startSleep backgrounds a sleep and waits (a bounded number of polls)
// until the forked shell has become sleep, so that the log names it
// whatever the scheduler does.
const startSleep = `sleep 100 &
pid=$!
i=0
while [ "$(cat /proc/$pid/comm 2>/dev/null)" != sleep ] && [ $i -lt 10000 ]; do i=$((i+1)); done
echo pid=$pid
`

func TestBackgroundProcesses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		wantErr string // "" for a pass
	}{
		{name: "step passes", script: startSleep},
		{name: "main status decides", script: startSleep + "exit 3\n", wantErr: "script exited with status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := (&shell.Step{Script: tc.script}).Run(context.Background(), newEnv(t, &out))
			log := out.String()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: got error %v, want none; log:\n%s", err, log)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("Run: got error %v, want %q", err, tc.wantErr)
			}
			pid := printedPid(t, log)
			if running(pid) {
				t.Errorf("background sleep %d still runs after the step ended", pid)
			}
			if want := "killed 1 process left running by the step: sleep"; !strings.Contains(log, want) {
				t.Errorf("log does not say %q; got:\n%s", want, log)
			}
		})
	}
}

func TestNoLeftoversNoMessage(t *testing.T) {
	var out bytes.Buffer
	if _, err := (&shell.Step{Script: "echo hello"}).Run(context.Background(), newEnv(t, &out)); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "hello\n"; got != want {
		t.Errorf("log: got %q, want %q", got, want)
	}
}

func TestMissingWorkingDirectory(t *testing.T) {
	var out bytes.Buffer
	env := newEnv(t, &out)
	env.Dir = filepath.Join(env.Dir, "deploy", "terraform")
	_, err := (&shell.Step{Script: "true"}).Run(context.Background(), env)
	var de *proc.DirError
	if !errors.As(err, &de) {
		t.Fatalf("Run: got error %v (%T), want a *proc.DirError", err, err)
	}
	if de.Dir != env.Dir {
		t.Errorf("DirError.Dir: got %q, want %q", de.Dir, env.Dir)
	}
	if want := "working directory " + env.Dir + " does not exist"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		with    string
		want    *shell.Step
		wantErr string
	}{
		{name: "script only", with: "run: echo hi\n", want: &shell.Step{Script: "echo hi"}},
		{
			name: "shell and inputs",
			with: "run: |\n  echo one\n  echo two\nshell: bash\ninputs: ['**/*.go', go.sum]\n",
			want: &shell.Step{Script: "echo one\necho two\n", Shell: "bash", Inputs: []string{"**/*.go", "go.sum"}},
		},
		{name: "empty script", with: "shell: bash\n", wantErr: "the script is empty"},
		{name: "unknown input", with: "run: echo hi\nscript: echo hi\n", wantErr: "script"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shell.Kind.New(steptest.Inputs{YAML: tc.with})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: got error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("New: got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestKindRunsScript runs a script built through the kind, as the engine
// builds every run: step, and reads the outputs it sets.
func TestKindRunsScript(t *testing.T) {
	impl, err := shell.Kind.New(steptest.Inputs{YAML: "run: |\n  echo version=1.2.3 >> \"$GANTRY_OUTPUT\"\n  echo done\n"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := impl.Run(context.Background(), newEnv(t, &out))
	if err != nil {
		t.Fatalf("Run: %v (log %q)", err, out.String())
	}
	if got, want := res.Outputs["version"], any("1.2.3"); got != want {
		t.Errorf("output version: got %v, want %v", got, want)
	}
	if got, want := out.String(), "done\n"; got != want {
		t.Errorf("log: got %q, want %q", got, want)
	}
}
