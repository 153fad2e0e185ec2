package e2e

// The probe of bad inputs (issue #10, "Done means"): a few hundred inputs a
// careless or hostile user can hand gantry, in the classes the first probe
// used — pipeline files, expressions, secrets, injection through git values,
// the run store, artifacts, the CLI and the embedded registry — each run
// against the built binary and held to what the docs promise: the
// documented exit code, no Go panic, file:line:col for pipeline files, no
// secret (nor its base64 or URL-encoded forms) anywhere a user can read,
// no command run from a value, and 4xx with an OCI error code from the
// registry. Run it alone with: go test ./e2e -run 'TestProbe' -v

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// Exit codes the docs give (docs/cli/*.md).
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitDamaged = 3 // the run history in the state dir is damaged (docs/store.md)
)

// probeRun runs gantry in dir with args as given (no implicit --state-dir),
// bounded by timeout; a command still running then counts as a failure.
func probeRun(t *testing.T, dir string, extraEnv []string, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gantryBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), extraEnv...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("gantry %s: still running after %s (killed)\nstdout:\n%s\nstderr:\n%s", shortArgs(args), timeout, tail(out.String(), 20), tail(errb.String(), 20))
		return result{code: -1, stdout: out.String(), stderr: errb.String()}
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gantry %s: %v", shortArgs(args), err)
	}
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	noPanic(t, args, r)
	return r
}

func shortArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// noPanic fails when a Go panic or a goroutine dump reached the output.
func noPanic(t *testing.T, args []string, r result) {
	t.Helper()
	for _, s := range []string{r.stdout, r.stderr} {
		if strings.Contains(s, "panic:") || strings.Contains(s, "goroutine ") {
			t.Errorf("gantry %s: a Go panic or stack trace reached the output:\n%s", shortArgs(args), tail(s, 30))
		}
	}
}

func wantCode(t *testing.T, args []string, r result, codes ...int) {
	t.Helper()
	if r.code == -1 {
		return // already reported as a timeout
	}
	if !slices.Contains(codes, r.code) {
		t.Errorf("gantry %s: exit %d, want %v\nstdout:\n%s\nstderr:\n%s", shortArgs(args), r.code, codes, tail(r.stdout, 15), tail(r.stderr, 15))
	}
}

// --- pipeline files and expressions ---------------------------------------

// probeBase is a small valid pipeline; mutations address its lines by number.
const probeBase = `name: probe
on:
  push: {branches: ["**"]}
env:
  GREETING: hello
secrets:
  TOKEN: {env: PROBE_TOKEN}
jobs: 2
stages:
  - name: first
    steps:
      - name: a
        run: echo "$GREETING"
        env: {X: "${env.GREETING}"}
        secrets: [TOKEN]
        outputs: [v]
        timeout: 1m
        retries: 0
      - name: b
        needs: [a]
        if: steps.a.status == "passed"
        run: echo b
    gate: all_passed
  - name: second
    when: stages.first.passed
    steps:
      - name: c
        run: echo c
`

// Lines of probeBase that mutations target.
const (
	lName       = 1
	lOn         = 3
	lEnvGreet   = 5
	lSecretSrc  = 7
	lJobs       = 8
	lStages     = 9
	lStage1     = 10
	lStepA      = 12
	lRunA       = 13
	lEnvA       = 14
	lSecretsA   = 15
	lOutputsA   = 16
	lTimeoutA   = 17
	lRetriesA   = 18
	lStepB      = 19
	lNeedsB     = 20
	lIfB        = 21
	lRunB       = 22
	lGate       = 23
	lStage2     = 24
	lWhen       = 25
	lStepC      = 27
	lRunC       = 28
	probeNLines = 28
)

// edit changes one line of probeBase: replace it, insert lines after it, or delete it.
type edit struct {
	line int
	op   byte // 'r' replace, 'i' insert after, 'd' delete
	text string
}

// pcase is one pipeline-file input and what gantry must answer.
type pcase struct {
	name  string
	edits []edit
	file  string // whole file instead of edits of probeBase
	codes []int  // accepted exit codes; default 2
	at    int    // line the (first) error must name; 0: where the single edit put its text; -1: any line
}

func (c pcase) content() string {
	if c.edits == nil {
		return c.file
	}
	lines := strings.Split(strings.TrimSuffix(probeBase, "\n"), "\n")
	eds := slices.Clone(c.edits)
	slices.SortStableFunc(eds, func(a, b edit) int { return b.line - a.line })
	for _, e := range eds {
		i := e.line - 1
		switch e.op {
		case 'r':
			lines = slices.Replace(lines, i, i+1, strings.Split(e.text, "\n")...)
		case 'i':
			lines = slices.Insert(lines, i+1, strings.Split(e.text, "\n")...)
		case 'd':
			lines = slices.Delete(lines, i, i+1)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func (c pcase) wantCodes() []int {
	if c.codes == nil {
		return []int{exitUsage}
	}
	return c.codes
}

func (c pcase) wantLine() int {
	if c.at != 0 || c.edits == nil {
		return c.at
	}
	if len(c.edits) != 1 {
		return -1
	}
	e := c.edits[0]
	switch e.op {
	case 'r':
		return e.line
	case 'i':
		return e.line + 1
	}
	return -1
}

func rep(line int, text string) []edit { return []edit{{line, 'r', text}} }
func ins(line int, text string) []edit { return []edit{{line, 'i', text}} }
func del(line int) []edit              { return []edit{{line, 'd', ""}} }

var ok0 = []int{exitOK}

// pipelineCases generates the pipeline-file probe: wrong types, unknown
// fields, nulls, huge numbers, structure errors and YAML-level breakage.
func pipelineCases() []pcase {
	var cs []pcase
	add := func(name string, eds []edit) { cs = append(cs, pcase{name: name, edits: eds}) }

	// Integer fields.
	badInts := map[string]string{
		"string": `"two"`, "list": `[1]`, "map": `{n: 1}`, "float": `1.5`, "huge": `99999999999999999999`,
		"hex-overflow": `0x10000000000000000`, "exp": `1e400`, "inf": `.inf`, "nan": `.nan`, "bool": `true`,
		"negative": `-1`, "min-int": `-9223372036854775809`,
	}
	for vname, v := range badInts {
		add("jobs/"+vname, rep(lJobs, "jobs: "+v))
		add("retries/"+vname, rep(lRetriesA, "        retries: "+v))
	}
	add("jobs/zero", rep(lJobs, "jobs: 0"))
	add("retries/eleven", rep(lRetriesA, "        retries: 11"))

	// String fields.
	strSites := map[string]string{
		"name": "name: ", "stage-name": "  - name: ", "step-name": "      - name: ", "run": "        run: ",
		"if": "        if: ", "gate": "    gate: ", "when": "    when: ", "timeout": "        timeout: ",
		"env-value": "  GREETING: ",
	}
	siteLine := map[string]int{
		"name": lName, "stage-name": lStage1, "step-name": lStepA, "run": lRunA, "if": lIfB,
		"gate": lGate, "when": lWhen, "timeout": lTimeoutA, "env-value": lEnvGreet,
	}
	for site, prefix := range strSites {
		for vname, v := range map[string]string{"list": `[a, b]`, "map": `{k: v}`, "nested-list": `[[x]]`} {
			add(site+"/"+vname, rep(siteLine[site], prefix+v))
		}
	}
	for _, site := range []string{"name", "stage-name", "step-name", "run"} {
		add(site+"/null", rep(siteLine[site], strSites[site]+"~"))
		add(site+"/empty", rep(siteLine[site], strSites[site]+`""`))
	}
	// A null or empty run: is a step with neither run nor uses, named at the step.
	for i := range cs {
		if cs[i].name == "run/null" || cs[i].name == "run/empty" {
			cs[i].at = lStepA
		}
	}
	for vname, v := range map[string]string{"negative": "-1s", "word": "forever", "huge": "99999999999999h", "no-unit": "10", "exp": "1e9h"} {
		add("timeout/"+vname, rep(lTimeoutA, "        timeout: "+v))
	}

	// List fields.
	listSites := map[string]string{"secrets": "        secrets: ", "outputs": "        outputs: ", "needs": "        needs: "}
	listLine := map[string]int{"secrets": lSecretsA, "outputs": lOutputsA, "needs": lNeedsB}
	for site, prefix := range listSites {
		for vname, v := range map[string]string{"map": `{k: v}`, "nested-list": `[[a]]`, "list-of-maps": `[{k: v}]`, "null-item": `[~]`, "number-item": `[1]`} {
			add(site+"/"+vname, rep(listLine[site], prefix+v))
		}
	}
	add("on/branches-map", rep(lOn, `  push: {branches: {a: b}}`))
	add("on/branches-nested", rep(lOn, `  push: {branches: [[main]]}`))
	add("on/unknown-event", rep(lOn, `  tag: {branches: ["**"]}`))
	add("secrets/unknown-name", rep(lSecretsA, `        secrets: [NOPE]`))
	add("needs/unknown-step", rep(lNeedsB, `        needs: [zzz]`))
	add("needs/self", rep(lNeedsB, `        needs: [b]`))
	add("needs/other-stage", ins(lStepC, `        needs: [a]`))

	// Unknown and misspelt fields at every level.
	unknown := []struct {
		name string
		line int
		text string
	}{
		{"top", lName, "bogus: 1"}, {"top-typo-stage", lName, "stage: []"}, {"on", lOn, "  pull: {}"},
		{"on-push", lOn, "  pull_request: {branch: [main]}"}, {"stage", lStage1, "    bogus: 1"},
		{"stage-typo-steps", lStage1, "    step: []"}, {"stage-typo-gate", lStage1, "    gates: all_passed"},
		{"step", lRunA, "        bogus: 1"}, {"step-typo-needs", lRunA, "        need: [a]"},
		{"step-typo-secrets", lRunA, "        secret: [TOKEN]"}, {"step-typo-env", lRunA, "        enviroment: {}"},
		{"step-typo-allow", lRunA, "        allow_failures: true"}, {"secret-source", lSecretSrc, "  OTHER: {envv: A}"},
		{"secret-both", lSecretSrc, "  OTHER: {env: A, file: B}"}, {"secret-neither", lSecretSrc, "  OTHER: {}"},
		{"secret-null", lSecretSrc, "  OTHER: ~"}, {"approval", lStage2, "    approval: {required: true, rolez: [x]}"},
		{"on-failure", lGate, "    on_failure: [{explode: true}]"}, {"on-failure-notify", lGate, "    on_failure: [{notify: nowhere}]"},
	}
	for _, u := range unknown {
		add("unknown/"+u.name, ins(u.line, u.text))
	}

	// Structure.
	add("dup-step", ins(lRunB, "      - name: a\n        run: echo dup"))
	add("dup-stage", rep(lStage2, "  - name: first"))
	cs = append(cs,
		pcase{name: "cycle", edits: []edit{{lRunA, 'i', "        needs: [b]"}}, at: -1},
		pcase{name: "needs-and-after", edits: []edit{{lNeedsB, 'i', "        after: [a]"}}, at: -1},
		pcase{name: "step-without-run-or-uses", edits: del(lRunB), at: -1},
		pcase{name: "missing-name", edits: del(lName), at: -1},
		pcase{name: "second-document", edits: ins(lRunC, "---\nname: other"), at: lRunC + 1},
		pcase{name: "duplicate-key", edits: ins(lRunA, "        run: echo again")},
	)
	cs = append(cs,
		pcase{name: "run-and-uses", edits: ins(lRunA, "        uses: commitlint"), at: lRunA},
		pcase{name: "uses-with-unknown-input", edits: rep(lRunB, "        uses: commitlint\n        with: {bogus: 1}"), at: lRunB + 1},
	)
	add("unknown-kind", rep(lRunB, "        uses: no-such-kind"))
	add("stage-name-space", rep(lStage1, `  - name: "bad name"`))
	add("stage-name-traversal", rep(lStage1, `  - name: "../x"`))
	add("env-name-equals", rep(lEnvGreet, `  "A=B": x`))
	add("env-name-empty", rep(lEnvGreet, `  "": x`))
	add("stage-null", rep(lStage2, "  - ~\n  - name: second"))
	add("step-null", ins(lRunB, "      - ~"))
	add("tab-indent", rep(lRunA, "\t\trun: echo"))
	add("unclosed-quote", rep(lRunA, `        run: "echo`))
	add("unclosed-flow", rep(lEnvA, `        env: {X: "y"`))
	add("alias-undefined", rep(lRunA, "        run: *nope"))
	add("run-injection-template", rep(lRunA, `        run: echo ${git.branch}`))
	add("run-env-template", rep(lRunA, `        run: echo "${env.GREETING}"`))
	add("shell-template", ins(lRunA, `        shell: "${env.GREETING}"`))
	cs = append(cs,
		pcase{name: "run-escaped-dollar", edits: rep(lRunA, `        run: echo "$${HOME}"`), codes: ok0},
		pcase{name: "valid-base", edits: []edit{}, codes: ok0},
	)

	// Whole files.
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, p := 'b', 'a'; i <= 'j'; i, p = i+1, i {
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, p, p, p, p, p, p, p, p, p, p)
	}
	bomb += "name: bomb\nstages: *j\n"
	cs = append(cs,
		pcase{name: "file/empty", file: "", at: -1},
		pcase{name: "file/comment-only", file: "# nothing\n", at: -1},
		pcase{name: "file/list", file: "[]\n", at: -1},
		pcase{name: "file/string", file: "just a string\n", at: -1},
		pcase{name: "file/binary", file: "\x00\x01\xff\xfe garbage \x7f\n", at: -1},
		pcase{name: "file/stages-empty", file: "name: x\nstages: []\n", at: -1},
		pcase{name: "file/stages-null", file: "name: x\nstages: ~\n", at: -1},
		pcase{name: "file/stages-missing", file: "name: x\n", at: -1},
		pcase{name: "file/steps-null", file: "name: x\nstages:\n  - name: s\n    steps: ~\n", at: -1},
		pcase{name: "file/steps-empty", file: "name: x\nstages:\n  - name: s\n    steps: []\n", at: -1},
		pcase{name: "file/steps-missing", file: "name: x\nstages:\n  - name: s\n", at: -1},
		pcase{name: "file/deep-nesting", file: "name: x\nstages: " + deep + "\n", at: -1},
		pcase{name: "file/alias-bomb", file: bomb, at: -1},
		pcase{name: "file/merge-key", file: "base: &b {name: x}\n<<: *b\nstages: [{name: s, steps: [{name: a, run: 'true'}]}]\n", at: -1},
		pcase{name: "file/bom-and-crlf", file: "\ufeffname: x\r\nstages:\r\n  - name: s\r\n    steps: [{name: a, run: 'true', bogus: 1}]\r\n", at: 4},
	)
	return cs
}

// expressionCases are bad (and a few good) expressions in if:, gate:,
// when: and ${...} of env values.
func expressionCases() []pcase {
	var cs []pcase
	bad := func(name string, eds []edit) { cs = append(cs, pcase{name: name, edits: eds}) }
	good := func(name string, eds []edit) { cs = append(cs, pcase{name: name, edits: eds, codes: ok0}) }
	ifB := func(e string) []edit { return rep(lIfB, "        if: "+e) }
	gate := func(e string) []edit { return rep(lGate, "    gate: "+e) }
	when := func(e string) []edit { return rep(lWhen, "    when: "+e) }
	envA := func(v string) []edit { return rep(lEnvA, "        env: {X: "+v+"}") }

	bad("if/dangling-operator", ifB(`steps.a.status ==`))
	bad("if/unknown-name", ifB(`nope`))
	bad("if/unknown-step", ifB(`steps.zzz.status == "x"`))
	bad("if/step-of-other-stage", ifB(`steps.c.status == "x"`))
	bad("if/later-stage", ifB(`stages.second.passed`))
	bad("if/unset-env", ifB(`env.NOPE == "x"`))
	bad("if/division-by-zero", ifB(`1 / 0 == 1`))
	bad("if/modulo-by-zero", ifB(`1 % 0 == 1`))
	bad("if/glob-one-arg", ifB(`glob(branch)`))
	bad("if/glob-numbers", ifB(`glob(1, 2)`))
	bad("if/syntax", ifB(`((branch`))
	bad("if/unterminated-string", ifB(`branch == "main`))
	bad("if/template-braces", ifB(`"${"`))
	bad("if/unknown-function", ifB(`exec("touch pwned")`))
	bad("if/output-not-declared", ifB(`steps.a.outputs.nope == 1`))
	good("if/glob", ifB(`glob(branch, "release/**")`))
	good("if/optional-env", ifB(`env?.NOPE == nil`))
	bad("gate/undeclared-output", gate(`steps.a.outputs.nope > 1`))
	bad("gate/unknown-step", gate(`steps.zzz.status == "passed"`))
	bad("gate/modulo-by-zero", gate(`10 % 0 == 0`))
	bad("gate/syntax", gate(`steps.a.outputs.v >=`))
	good("gate/output", gate(`steps.a.outputs.v >= 80`))
	bad("when/unknown-stage", when(`stages.nope.passed`))
	bad("when/itself", when(`stages.second.passed`))
	bad("when/dangling", when(`branch == "main" &&`))
	bad("when/steps-of-current", when(`steps.c.status == "passed"`))
	bad("env/division-by-zero", envA(`"${10 / 0}"`))
	bad("env/overflow-add", envA(`"${9223372036854775807 + 1}"`))
	bad("env/overflow-sub", envA(`"${-9223372036854775807 - 2}"`))
	bad("env/overflow-mul", envA(`"${9223372036854775807 * 2}"`))
	bad("env/power-inf", envA(`"${2 ** 10000}"`))
	bad("env/float-literal-inf", envA(`"${1e400}"`))
	bad("env/unset", envA(`"${env.NOPE}"`))
	bad("env/unterminated", envA(`"${"`))
	bad("env/empty-template", envA(`"${}"`))
	bad("env/unterminated-nested", envA(`"${ env.GREETING "`))
	bad("env/own-output", envA(`"${steps.a.outputs.v}"`))
	bad("env/later-stage", envA(`"${stages.second.passed}"`))
	good("env/optional-unset", envA(`"${env?.NOPE}"`))
	good("env/literal-dollar", envA(`"$${literal}"`))
	good("env/reads-pipeline-env", envA(`"${env.GREETING}-x"`))
	cs = append(cs,
		pcase{name: "env/deep-parens", edits: envA(`"${` + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + `}"`), codes: []int{exitOK, exitUsage}},
		pcase{name: "env/circle", edits: []edit{{lEnvGreet, 'r', `  GREETING: "${env.OTHER}"`}, {lEnvGreet, 'i', `  OTHER: "${env.GREETING}"`}}, at: -1},
		pcase{name: "env/self", edits: rep(lEnvGreet, `  GREETING: "${env.GREETING}"`)},
	)
	return cs
}

// secretPlaceCases put a secret where docs/pipeline.md forbids it.
func secretPlaceCases() []pcase {
	var cs []pcase
	bad := func(name string, eds []edit) { cs = append(cs, pcase{name: name, edits: eds}) }
	bad("unlisted-step-env", ins(lRunB, `        env: {S: "${secrets.TOKEN}"}`))
	bad("pipeline-env", rep(lEnvGreet, `  GREETING: "${secrets.TOKEN}"`))
	bad("if", rep(lIfB, `        if: secrets.TOKEN == "x"`))
	bad("if-keys", rep(lIfB, `        if: len(keys(secrets)) > 0`))
	bad("gate", rep(lGate, `    gate: secrets.TOKEN != ""`))
	bad("when", rep(lWhen, `    when: secrets.TOKEN == "x"`))
	bad("computed-name", rep(lEnvA, `        env: {X: '${secrets["TO" + "KEN"]}'}`))
	bad("keys", rep(lEnvA, `        env: {X: '${join(keys(secrets), ",")}'}`))
	bad("to-json", rep(lEnvA, `        env: {X: '${toJSON(secrets)}'}`))
	bad("unknown-secret", rep(lEnvA, `        env: {X: "${secrets.NOPE}"}`))
	bad("run-template", rep(lRunA, `        run: echo ${secrets.TOKEN}`))
	bad("other-stage-step", ins(lRunC, `        env: {S: "${secrets.TOKEN}"}`))
	bad("commit-status-url", ins(lSecretSrc, "commit_status:\n  repository: o/r\n  token: TOKEN\n  target_url: \"https://x.test/${secrets.TOKEN}\""))
	cs[len(cs)-1].at = lSecretSrc + 4
	cs = append(cs,
		pcase{name: "listed-step-env", edits: rep(lEnvA, `        env: {X: "${secrets.TOKEN}"}`), codes: ok0},
	)
	return cs
}

var posRe = regexp.MustCompile(`^(?:gantry: )?(.+?):(\d+):(\d+): `)

// checkPositions holds stderr to the file:line:col rule for a pipeline file.
func checkPositions(t *testing.T, c pcase, path string, r result) {
	t.Helper()
	var lines []int
	seen := map[string]bool{}
	for _, l := range strings.Split(r.stderr, "\n") {
		m := posRe.FindStringSubmatch(l)
		// validate names the file as given; run names it by its absolute path.
		if m == nil || (m[1] != path && !strings.HasSuffix(m[1], string(filepath.Separator)+path)) {
			continue
		}
		if seen[l] {
			t.Errorf("error reported more than once: %q", l)
		}
		seen[l] = true
		ln, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		if ln < 1 || col < 1 {
			t.Errorf("position %d:%d is not a place in the file: %q", ln, col, l)
		}
		lines = append(lines, ln)
	}
	if len(lines) == 0 {
		t.Errorf("no %s:LINE:COL: in the error output:\n%s", path, tail(r.stderr, 10))
		return
	}
	if want := c.wantLine(); want > 0 && !slices.Contains(lines, want) {
		t.Errorf("errors name lines %v, want one at line %d:\n%s", lines, want, tail(r.stderr, 10))
	}
}

// runValidateCases runs gantry validate on each case's file in parallel.
func runValidateCases(t *testing.T, cases []pcase) {
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rel := filepath.Join(fmt.Sprintf("c%03d", i), ".gantry", "pipeline.yaml")
			path := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(c.content()), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"--state-dir", filepath.Join(dir, "state"), "validate", rel}
			r := probeRun(t, dir, nil, time.Minute, args...)
			wantCode(t, args, r, c.wantCodes()...)
			if r.code == exitUsage {
				checkPositions(t, c, rel, r)
			}
		})
	}
}

func TestProbePipelineFiles(t *testing.T) {
	cases := pipelineCases()
	t.Logf("pipeline-file cases: %d", len(cases))
	runValidateCases(t, cases)
}

func TestProbeExpressions(t *testing.T) {
	cases := expressionCases()
	t.Logf("expression cases: %d", len(cases))
	runValidateCases(t, cases)
}

// A few bad files through gantry run: the same exit code and positions as
// validate, and nothing recorded.
func TestProbeRunRefusesBadFiles(t *testing.T) {
	picks := map[string]bool{"jobs/zero": true, "dup-stage": true, "cycle": true, "second-document": true, "run-injection-template": true, "unknown-kind": true}
	var cases []pcase
	for _, c := range pipelineCases() {
		if picks[c.name] {
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.write(".gantry/pipeline.yaml", c.content())
			e.commitAll("chore: probe")
			args := []string{"--state-dir", e.state, "run", "--progress", "plain"}
			r := probeRun(t, e.repo, nil, 2*time.Minute, args...)
			wantCode(t, args, r, c.wantCodes()...)
			checkPositions(t, c, ".gantry/pipeline.yaml", r)
			if runs := probeRun(t, e.repo, nil, time.Minute, "--state-dir", e.state, "runs", "--output", "json"); strings.Contains(runs.stdout, `"id"`) {
				t.Errorf("a refused file left a run behind: %s", runs.stdout)
			}
		})
	}
}

// --- secrets ----------------------------------------------------------------

// probeSecret holds characters that URL encoding changes.
const probeSecret = "s3cr3t/Probe+Value=ok&x"

// secretForms is the secret, its URL encodings and the parts of its base64
// encodings (both alphabets) that do not depend on what comes before it.
func secretForms(s string) []string {
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for p := 0; p < 3; p++ {
			e := enc.EncodeToString(append(bytes.Repeat([]byte("x"), p), s...))
			forms = append(forms, e[(8*p+5)/6:(8*(p+len(s)))/6])
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// noSecret fails when any form of the secret is in any of texts.
func noSecret(t *testing.T, secret string, texts map[string]string) {
	t.Helper()
	for where, text := range texts {
		for _, f := range secretForms(secret) {
			if strings.Contains(text, f) {
				t.Errorf("the secret (as %q) appears in %s", f, where)
			}
		}
	}
}

// everythingReadable collects what a user can read of run id in state.
func everythingReadable(t *testing.T, dir, state string, r result) map[string]string {
	t.Helper()
	texts := map[string]string{"run stdout": r.stdout, "run stderr": r.stderr}
	for _, args := range [][]string{
		{"logs", "1"}, {"show", "1", "--output", "json"}, {"show", "1"}, {"runs", "--output", "json"}, {"artifacts", "1"},
	} {
		out := probeRun(t, dir, nil, time.Minute, append([]string{"--state-dir", state}, args...)...)
		texts[strings.Join(args, " ")] = out.stdout + out.stderr
	}
	return texts
}

// TestProbeSecretPlaces runs pipelines that put the secret where a step
// that does not list it could see it: gantry run must refuse them (exit 2,
// file:line:col) and the secret must appear nowhere.
func TestProbeSecretPlaces(t *testing.T) {
	cases := secretPlaceCases()
	t.Logf("secret-place cases: %d", len(cases))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.write(".gantry/pipeline.yaml", c.content())
			e.commitAll("chore: probe")
			args := []string{"--state-dir", e.state, "run", "--progress", "plain"}
			r := probeRun(t, e.repo, []string{"PROBE_TOKEN=" + probeSecret}, 2*time.Minute, args...)
			wantCode(t, args, r, c.wantCodes()...)
			if r.code == exitUsage {
				checkPositions(t, c, ".gantry/pipeline.yaml", r)
			}
			texts := map[string]string{"run stdout": r.stdout, "run stderr": r.stderr}
			if r.code != exitUsage {
				texts = everythingReadable(t, e.repo, e.state, r)
			}
			noSecret(t, probeSecret, texts)
		})
	}
}

const secretLeakPipeline = `name: leak
secrets:
  TOKEN: {env: PROBE_SECRET_SRC}
stages:
  - name: s
    steps:
      - name: lister
        secrets: [TOKEN]
        outputs: [echoed, b64, url, nested]
        run: |
          echo "plain $TOKEN"
          echo "stderr $TOKEN" >&2
          printf %s "$TOKEN" | base64 -w0; echo
          printf %s "x$TOKEN" | base64 -w0; echo
          printf %s "xx$TOKEN" | base64 -w0 | tr '+/' '-_'; echo
          printf %s "$TOKEN" | sed 's|/|%2F|g; s|+|%2B|g; s|=|%3D|g; s|&|%26|g'; echo
          echo "echoed=$TOKEN" >> "$GANTRY_OUTPUT"
          echo "b64=$(printf %s "$TOKEN" | base64 -w0)" >> "$GANTRY_OUTPUT"
          echo "url=$(printf %s "$TOKEN" | sed 's|/|%2F|g; s|+|%2B|g; s|=|%3D|g; s|&|%26|g')" >> "$GANTRY_OUTPUT"
          echo "nested={\"k\": \"$TOKEN\"}" >> "$GANTRY_OUTPUT"
      - name: via-env
        secrets: [TOKEN]
        env: {WRAPPED: "pre-${secrets.TOKEN}-post"}
        run: echo "wrapped $WRAPPED"
      - name: outsider
        artifacts: [outsider-env.txt]
        run: |
          env > outsider-env.txt
          echo "outsider sees [$${TOKEN:-none}] [$${PROBE_SECRET_SRC:-none}]"
      - name: failer
        secrets: [TOKEN]
        allow_failure: true
        run: |
          echo "about to fail with $TOKEN" >&2
          exit 3
  - name: later
    steps:
      - name: late-outsider
        env: {FROM_OUTPUT: "${stages.s.steps.outsider.status}"}
        run: echo "late [$${TOKEN:-none}] [$${PROBE_SECRET_SRC:-none}]"
`

// TestProbeSecretLeaks runs steps that print the secret every way the docs
// say is masked and a step that does not list it: the secret must appear in
// no output, log, step output or artifact, and reach no step that does not
// list it.
func TestProbeSecretLeaks(t *testing.T) {
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", secretLeakPipeline)
	e.commitAll("chore: leak probe")
	args := []string{"--state-dir", e.state, "run", "--progress", "plain"}
	r := probeRun(t, e.repo, []string{"PROBE_SECRET_SRC=" + probeSecret}, 2*time.Minute, args...)
	wantCode(t, args, r, exitOK)
	texts := everythingReadable(t, e.repo, e.state, r)
	art := probeRun(t, e.repo, nil, time.Minute, "--state-dir", e.state, "artifacts", "1", "--get", "outsider-env.txt", "--to", "-")
	if art.code != exitOK {
		t.Errorf("artifacts --get outsider-env.txt: exit %d: %s", art.code, art.stderr)
	}
	texts["artifact outsider-env.txt"] = art.stdout
	noSecret(t, probeSecret, texts)
	if !strings.Contains(texts["logs 1"], "outsider sees [none] [none]") {
		t.Errorf("the step that lists no secret saw one (or did not run):\n%s", tail(texts["logs 1"], 30))
	}
	if !strings.Contains(texts["logs 1"], "late [none] [none]") {
		t.Errorf("a step of a later stage saw the secret (or did not run):\n%s", tail(texts["logs 1"], 30))
	}
	if !strings.Contains(texts["logs 1"], "plain ***") {
		t.Errorf("the listing step's log lacks the masked secret:\n%s", tail(texts["logs 1"], 30))
	}
}

// --- injection through git values ---------------------------------------------

const injectionPipeline = `name: inj
stages:
  - name: s
    steps:
      - name: show
        env: {B: "${git.branch}", BR: "${branch}", BASE: "${base}", SHA: "${git.short_sha}"}
        run: |
          printf 'branch=[%s] [%s] base=[%s]\n' "$B" "$BR" "$BASE"
          git log -1 --format=%B
`

// TestProbeInjection pushes branch names, --branch/--base values and commit
// messages that are shell code: they must reach run: steps only as data.
func TestProbeInjection(t *testing.T) {
	pwn := t.TempDir()
	payloads := []struct{ name, value string }{
		{"dollar-paren", "x$(touch${IFS}" + pwn + "/P)"},
		{"backticks", "x`touch${IFS}" + pwn + "/P`"},
		{"semicolon", "x;touch${IFS}" + pwn + "/P"},
		{"pipe", "x|touch${IFS}" + pwn + "/P"},
		{"and", "x&&touch${IFS}" + pwn + "/P"},
		{"redirect", "x>" + pwn + "/P"},
		{"brace-expansion", "x${IFS}$(touch${IFS}" + pwn + "/P)"},
		{"quote-break", `x"';touch${IFS}` + pwn + `/P;'"`},
		{"template-in-value", "x${env.HOME}$(touch${IFS}" + pwn + "/P)"},
	}
	// Branch names git accepts: no spaces, quotes, `\`, `:`, `?`, `*`, `[`, `~`, `^`.
	gitOK := func(v string) bool { return !strings.ContainsAny(v, " \"'\\:?*[~^") }
	type icase struct {
		name   string
		branch string   // git branch to create
		msg    string   // commit message
		args   []string // extra run flags
		want   []string // lines the step must print
	}
	// Each run carries a payload in three places at once: the branch (git's
	// own, or --branch where git refuses the name), the pull request's
	// --base and the commit message.
	var cases []icase
	inputs := 0
	for _, p := range payloads {
		c := icase{
			name: "branch-base-message/" + p.name, msg: "feat: " + p.value,
			args: []string{"--event", "pull_request", "--base", p.value},
			want: []string{"branch=[" + p.value + "] [" + p.value + "] base=[" + p.value + "]", "feat: " + p.value},
		}
		if gitOK(p.value) {
			c.branch = p.value
			cases = append(cases, icase{name: "flag-branch/" + p.name, args: []string{"--branch", p.value}, want: []string{"branch=[" + p.value + "] [" + p.value + "]"}})
			inputs++
		} else {
			c.args = append(c.args, "--branch", p.value)
		}
		cases = append(cases, c)
		inputs += 3
	}
	cases = append(cases,
		icase{name: "flag-branch/newline", args: []string{"--branch", "x\ntouch " + pwn + "/P\n"}, want: []string{"branch=[x"}},
		icase{name: "commit-message/newline", msg: "fix: x\n\n$(touch " + pwn + "/P)\n`touch " + pwn + "/P`", want: []string{"$(touch " + pwn + "/P)"}},
	)
	inputs += 2
	t.Logf("injection inputs: %d in %d runs", inputs, len(cases))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.write(".gantry/pipeline.yaml", injectionPipeline)
			msg := c.msg
			if msg == "" {
				msg = "chore: probe"
			}
			e.commitAll(msg)
			if c.branch != "" {
				e.git("checkout", "-q", "-b", c.branch)
			}
			args := append([]string{"--state-dir", e.state, "run", "--progress", "plain"}, c.args...)
			r := probeRun(t, e.repo, nil, 2*time.Minute, args...)
			wantCode(t, args, r, exitOK)
			logs := probeRun(t, e.repo, nil, time.Minute, "--state-dir", e.state, "logs", "1")
			for _, w := range c.want {
				if !strings.Contains(logs.stdout, w) {
					t.Errorf("the value did not reach the step as data: log lacks %q:\n%s", w, tail(logs.stdout, 15))
				}
			}
			if _, err := os.Stat(filepath.Join(pwn, "P")); err == nil {
				t.Errorf("case %d: the value ran as a command: %s/P was created", i, pwn)
			}
			for _, f := range []string{"P", "touch"} {
				if _, err := os.Stat(filepath.Join(e.repo, f)); err == nil {
					t.Errorf("the value ran as a command: %s created in the repository", f)
				}
			}
		})
	}
}

// --- run store ------------------------------------------------------------------

// seedState makes a state dir holding one run with an artifact out.txt.
func seedState(t *testing.T) (repo, state string) {
	t.Helper()
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", `name: seed
stages:
  - name: s
    steps:
      - name: a
        run: echo "artifact body" > out.txt && echo "seed log line"
        artifacts: [out.txt]
`)
	e.commitAll("chore: seed")
	r := probeRun(t, e.repo, nil, 2*time.Minute, "--state-dir", e.state, "run", "--progress", "plain")
	if r.code != exitOK {
		t.Fatalf("seed run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return e.repo, e.state
}

func copyState(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "state")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy state: %v\n%s", err, out)
	}
	return dst
}

func TestProbeRunStore(t *testing.T) {
	repo, seed := seedState(t)
	db := func(state string) string { return filepath.Join(state, "gantry.db") }
	sqlExec := func(t *testing.T, state, stmt string) {
		t.Helper()
		h, err := sql.Open("sqlite", db(state))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if _, err := h.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, state string)
		codes  []int
	}{
		{"not-a-database", func(t *testing.T, s string) {
			must(t, os.WriteFile(db(s), bytes.Repeat([]byte("this is not a database\n"), 300), 0o644))
		}, []int{exitDamaged}},
		{"truncated", func(t *testing.T, s string) {
			fi, err := os.Stat(db(s))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(db(s), fi.Size()/2+100); err != nil {
				t.Fatal(err)
			}
		}, []int{exitDamaged}},
		// A damaged page of a table gantry run never reads: only a check
		// of the file on open notices it.
		{"corrupt-page", func(t *testing.T, s string) { damagePage(t, db(s), "audit") }, []int{exitDamaged}},
		{"corrupt-page-runs", func(t *testing.T, s string) { damagePage(t, db(s), "runs") }, []int{exitDamaged}},
		{"dropped-table-events", func(t *testing.T, s string) { sqlExec(t, s, "DROP TABLE events") }, []int{exitDamaged}},
		{"dropped-table-audit", func(t *testing.T, s string) { sqlExec(t, s, "DROP TABLE audit") }, []int{exitDamaged}},
		{"dropped-migrations", func(t *testing.T, s string) { sqlExec(t, s, "DROP TABLE schema_migrations") }, []int{exitDamaged}},
		{"empty-file", func(t *testing.T, s string) { must(t, os.WriteFile(db(s), nil, 0o644)) }, nil},
		{"db-is-directory", func(t *testing.T, s string) {
			must(t, os.Remove(db(s)))
			must(t, os.Mkdir(db(s), 0o755))
		}, []int{exitFailed, exitUsage, exitDamaged}},
	}
	t.Logf("run-store cases: %d", len(cases))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := copyState(t, seed)
			c.damage(t, state)
			before, _ := os.ReadFile(db(state))
			for _, args := range [][]string{
				{"runs"}, {"show", "1"}, {"logs", "1"}, {"run", "--progress", "plain"},
			} {
				full := append([]string{"--state-dir", state}, args...)
				r := probeRun(t, repo, nil, 2*time.Minute, full...)
				if c.codes == nil {
					// An empty file is a new history: the commands work on it
					// (run 1 does not exist until gantry run made it).
					if args[0] == "run" || args[0] == "runs" {
						wantCode(t, full, r, exitOK)
					}
					continue
				}
				wantCode(t, full, r, c.codes...)
			}
			if c.codes == nil {
				return
			}
			after, _ := os.ReadFile(db(state))
			if !bytes.Equal(before, after) {
				t.Errorf("the damaged database was modified (%d bytes before, %d after)", len(before), len(after))
			}
		})
	}
	t.Run("state-dir-is-a-file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		must(t, os.WriteFile(f, []byte("x"), 0o644))
		args := []string{"--state-dir", f, "runs"}
		r := probeRun(t, repo, nil, time.Minute, args...)
		wantCode(t, args, r, exitFailed, exitUsage)
		if b, _ := os.ReadFile(f); string(b) != "x" {
			t.Errorf("the file given as state dir was changed: %q", b)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// damagePage overwrites the b-tree page header of table's root page.
func damagePage(t *testing.T, path, table string) {
	t.Helper()
	h, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var pageSize, root int64
	err = h.QueryRow("PRAGMA page_size").Scan(&pageSize)
	if err == nil {
		err = h.QueryRow("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&root)
	}
	h.Close()
	if err != nil {
		t.Fatalf("find the root page of %s: %v", table, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xAB}, 64), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
}

// --- artifacts ------------------------------------------------------------------

func TestProbeArtifacts(t *testing.T) {
	repo, state := seedState(t)
	type acase struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the --to path
		extra []string
		get   string
		codes []int
		check func(t *testing.T, to string)
	}
	regular := func(mode os.FileMode) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "existing")
			if err := os.WriteFile(p, []byte("keep me"), mode); err != nil {
				t.Fatal(err)
			}
			must(t, os.Chmod(p, mode))
			return p
		}
	}
	kept := func(t *testing.T, to string) {
		if b, err := os.ReadFile(to); err != nil || string(b) != "keep me" {
			t.Errorf("the target was changed: %q %v", b, err)
		}
	}
	isType := func(want os.FileMode) func(t *testing.T, to string) {
		return func(t *testing.T, to string) {
			fi, err := os.Lstat(to)
			if err != nil {
				t.Fatalf("the target is gone: %v", err)
			}
			if fi.Mode().Type() != want {
				t.Errorf("the target's type: got %v, want %v", fi.Mode().Type(), want)
			}
		}
	}
	body := func(t *testing.T, to string) {
		if b, err := os.ReadFile(to); err != nil || string(b) != "artifact body\n" {
			t.Errorf("copied artifact: got %q %v", b, err)
		}
	}
	cases := []acase{
		{name: "new-file", setup: func(t *testing.T, d string) string { return filepath.Join(d, "new.txt") }, codes: ok0, check: body},
		{name: "existing-file", setup: regular(0o644), codes: []int{exitUsage}, check: kept},
		{name: "existing-file-force-keeps-mode", setup: regular(0o755), extra: []string{"--force"}, codes: ok0, check: func(t *testing.T, to string) {
			body(t, to)
			if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("mode after --force: got %v %v, want 0755", fi.Mode().Perm(), err)
			}
		}},
		{name: "symlink-to-file", setup: func(t *testing.T, d string) string {
			tgt := regular(0o644)(t, d)
			l := filepath.Join(d, "link")
			must(t, os.Symlink(tgt, l))
			return l
		}, codes: []int{exitUsage}, check: func(t *testing.T, to string) {
			isType(os.ModeSymlink)(t, to)
			kept(t, filepath.Join(filepath.Dir(to), "existing"))
		}},
		{name: "symlink-force", setup: func(t *testing.T, d string) string {
			tgt := regular(0o644)(t, d)
			l := filepath.Join(d, "link")
			must(t, os.Symlink(tgt, l))
			return l
		}, extra: []string{"--force"}, codes: []int{exitUsage}, check: func(t *testing.T, to string) {
			isType(os.ModeSymlink)(t, to)
			kept(t, filepath.Join(filepath.Dir(to), "existing"))
		}},
		{name: "dangling-symlink", setup: func(t *testing.T, d string) string {
			l := filepath.Join(d, "dangling")
			must(t, os.Symlink(filepath.Join(d, "nowhere"), l))
			return l
		}, codes: []int{exitUsage}, check: func(t *testing.T, to string) {
			isType(os.ModeSymlink)(t, to)
			if _, err := os.Stat(filepath.Join(filepath.Dir(to), "nowhere")); err == nil {
				t.Errorf("the link was followed: its target was created")
			}
		}},
		{name: "fifo", setup: func(t *testing.T, d string) string {
			p := filepath.Join(d, "fifo")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, extra: []string{"--force"}, codes: []int{exitUsage}, check: isType(os.ModeNamedPipe)},
		{name: "char-device", setup: func(t *testing.T, d string) string {
			p := filepath.Join(d, "null")
			// Same device as /dev/null; made here so a defect replaces only this node.
			if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
				t.Fatalf("mknod (the probe runs as root): %v", err)
			}
			return p
		}, extra: []string{"--force"}, codes: []int{exitUsage}, check: isType(os.ModeDevice | os.ModeCharDevice)},
		{name: "directory", setup: func(t *testing.T, d string) string { return d }, codes: ok0, check: func(t *testing.T, to string) {
			body(t, filepath.Join(to, "out.txt"))
		}},
		{name: "missing-parent", setup: func(t *testing.T, d string) string { return filepath.Join(d, "no", "such", "dir", "f") }, codes: []int{exitFailed}},
		{name: "unknown-artifact", get: "nosuch.txt", setup: func(t *testing.T, d string) string { return filepath.Join(d, "x") }, codes: []int{exitUsage}},
		{name: "traversal-name", get: "../../../etc/passwd", setup: func(t *testing.T, d string) string { return filepath.Join(d, "x") }, codes: []int{exitUsage}},
		{name: "absolute-name", get: "/etc/passwd", setup: func(t *testing.T, d string) string { return filepath.Join(d, "x") }, codes: []int{exitUsage}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			to := c.setup(t, dir)
			get := c.get
			if get == "" {
				get = "out.txt"
			}
			args := append([]string{"--state-dir", state, "artifacts", "1", "--get", get, "--to", to}, c.extra...)
			r := probeRun(t, repo, nil, 30*time.Second, args...)
			wantCode(t, args, r, c.codes...)
			if c.check != nil {
				c.check(t, to)
			}
		})
	}
	for _, args := range [][]string{
		{"artifacts", "1", "--get", "out.txt"}, {"artifacts", "999"}, {"artifacts", "abc"}, {"artifacts", "-1"},
		{"artifacts"}, {"artifacts", "1", "2"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			full := append([]string{"--state-dir", state}, args...)
			wantCode(t, full, probeRun(t, repo, nil, 30*time.Second, full...), exitUsage)
		})
	}
	t.Logf("artifact cases: %d", len(cases)+6)
}

// --- CLI ----------------------------------------------------------------------

func TestProbeCLI(t *testing.T) {
	repo, state := seedState(t)
	dead := "http://127.0.0.1:1/"
	cases := []struct {
		args  []string
		codes []int
	}{
		{[]string{"bogus"}, []int{exitUsage}},
		{[]string{"--bogus-flag", "runs"}, []int{exitUsage}},
		{[]string{"show"}, []int{exitUsage}},
		{[]string{"show", "1", "2"}, []int{exitUsage}},
		{[]string{"show", "abc"}, []int{exitUsage}},
		{[]string{"show", "-1"}, []int{exitUsage}},
		{[]string{"show", "0"}, []int{exitUsage}},
		{[]string{"show", "99999999999999999999"}, []int{exitUsage}},
		{[]string{"show", "999"}, []int{exitUsage}},
		{[]string{"show", "1", "--output", "xml"}, []int{exitUsage}},
		{[]string{"logs"}, []int{exitUsage}},
		{[]string{"logs", "999"}, []int{exitUsage}},
		{[]string{"logs", "1", "nosuch"}, []int{exitUsage}},
		{[]string{"logs", "1", "../../etc"}, []int{exitUsage}},
		{[]string{"runs", "--status", "bogus"}, []int{exitUsage}},
		{[]string{"runs", "--limit", "-1"}, []int{exitUsage}},
		{[]string{"runs", "--output", "xml"}, []int{exitUsage}},
		{[]string{"runs", "extra"}, []int{exitUsage}},
		{[]string{"validate", "/nonexistent/pipeline.yaml"}, []int{exitUsage}},
		{[]string{"validate", "a.yaml", "b.yaml"}, []int{exitUsage}},
		{[]string{"run", "--jobs", "0"}, []int{exitUsage}},
		{[]string{"run", "--jobs", "-1"}, []int{exitUsage}},
		{[]string{"run", "--jobs", "x"}, []int{exitUsage}},
		{[]string{"run", "--progress", "bogus"}, []int{exitUsage}},
		{[]string{"run", "--event", "tag"}, []int{exitUsage}},
		{[]string{"run", "--stage", "nosuch"}, []int{exitUsage}},
		{[]string{"run", "--from", "nosuch"}, []int{exitUsage}},
		{[]string{"run", "--until", "nosuch"}, []int{exitUsage}},
		{[]string{"run", "--pipeline", "/nonexistent.yaml"}, []int{exitUsage}},
		{[]string{"run", "--dir", "/nonexistent/dir"}, []int{exitUsage}},
		{[]string{"run", "extra-arg"}, []int{exitUsage}},
		{[]string{"load", "--url", dead, "--rate", "1e12", "--duration", "1s"}, []int{exitUsage}},
		{[]string{"load", "--url", dead, "--rate", "1000000", "--duration", "1s"}, []int{exitUsage}},
		{[]string{"load", "--url", dead, "--rate", "-5", "--duration", "1s"}, []int{exitUsage}},
		{[]string{"load", "--url", dead, "--rate", "10", "--duration", "-1s"}, []int{exitUsage}},
		{[]string{"load", "--url", dead, "--rate", "10", "--duration", "bogus"}, []int{exitUsage}},
		{[]string{"load", "--url", "not a url", "--rate", "1", "--duration", "1s"}, []int{exitUsage}},
		{[]string{"load", "--url", dead, "--rate", "10", "--duration", "1s", "--threshold", "http_req_duration:p(99)<<"}, []int{exitUsage}},
		{[]string{"scan", "/nonexistent/path"}, []int{exitUsage}},
		{[]string{"scan", "./no-such-dir"}, []int{exitUsage}},
		{[]string{"scan"}, []int{exitUsage}},
		{[]string{"verify"}, []int{exitUsage}},
		{[]string{"check", "nosuchtool"}, []int{exitUsage}},
		{[]string{"help"}, ok0},
		{[]string{"--help"}, ok0},
		{[]string{"version"}, ok0},
	}
	t.Logf("CLI cases: %d", len(cases)+1)
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			full := append([]string{"--state-dir", state}, c.args...)
			timeout := 30 * time.Second
			if c.args[0] == "load" {
				timeout = 10 * time.Second // every load case is refused before it sends
			}
			r := probeRun(t, repo, nil, timeout, full...)
			wantCode(t, full, r, c.codes...)
			if r.code == exitUsage && strings.TrimSpace(r.stderr) == "" {
				t.Errorf("exit 2 without a message on stderr")
			}
		})
	}
	t.Run("empty-state-dir", func(t *testing.T) {
		args := []string{"--state-dir", "", "runs"}
		wantCode(t, args, probeRun(t, repo, nil, 30*time.Second, args...), exitUsage)
	})
}

// --- registry -------------------------------------------------------------------

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestProbeRegistry(t *testing.T) {
	addr := freePort(t)
	root := t.TempDir()
	state := t.TempDir()
	cmd := exec.Command(gantryBin, "--state-dir", state, "registry", "serve", "--addr", addr, "--root", root)
	var out bytes.Buffer
	var outMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { outMu.Lock(); defer outMu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		outMu.Lock()
		defer outMu.Unlock()
		noPanic(t, []string{"registry", "serve"}, result{stderr: out.String()})
	}()
	base := "http://" + addr
	for deadline := time.Now().Add(time.Minute); ; {
		resp, err := http.Get(base + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			outMu.Lock()
			t.Fatalf("registry did not answer /v2/: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A config blob to point manifests at.
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	cfgDigest := sha256Digest(config)
	if code := pushBlob(t, base, "probe", config); code != http.StatusCreated {
		t.Fatalf("push config blob: %d", code)
	}
	manifest := func(cfgSize any, cfgDigest, subject string) string {
		m := map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": cfgSize},
			"layers":        []any{},
		}
		if cfgSize == nil {
			delete(m["config"].(map[string]any), "size")
		}
		if subject != "" {
			m["subject"] = map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 100}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	good := manifest(len(config), cfgDigest, "")
	badMediaType := strings.Replace(good, `"application/vnd.oci.image.config.v1+json"`, `"notamediatype"`, 1)
	hex64 := strings.Repeat("a", 64)
	mt := "application/vnd.oci.image.manifest.v1+json"
	long := strings.Repeat("a", 300)

	type rcase struct {
		name, method, path, ctype, body string
		header                          map[string]string
		status                          []int  // accepted statuses; nil: any 4xx
		code                            string // OCI error code the body must hold; "" any
		upload                          bool   // path is relative to a fresh upload session
	}
	cases := []rcase{
		{name: "name-over-255-tags", method: "GET", path: "/v2/" + long + "/tags/list", status: []int{400}, code: "NAME_INVALID"},
		{name: "name-over-255-manifest", method: "GET", path: "/v2/" + long + "/manifests/latest", status: []int{400}, code: "NAME_INVALID"},
		{name: "name-over-255-upload", method: "POST", path: "/v2/" + long + "/blobs/uploads/", status: []int{400}, code: "NAME_INVALID"},
		{name: "name-uppercase", method: "GET", path: "/v2/Probe/tags/list"},
		{name: "name-traversal-referrers", method: "GET", path: "/v2/a/%2e%2e/%2e%2e/etc/referrers/sha256:" + hex64},
		{name: "manifest-null", method: "PUT", path: "/v2/probe/manifests/bad-null", ctype: mt, body: "null", status: []int{400}, code: "MANIFEST_INVALID"},
		{name: "manifest-empty-object", method: "PUT", path: "/v2/probe/manifests/bad-empty", ctype: mt, body: "{}", status: []int{400}, code: "MANIFEST_INVALID"},
		{name: "manifest-trailing-data", method: "PUT", path: "/v2/probe/manifests/bad-trailing", ctype: mt, body: good + "{}", status: []int{400}, code: "MANIFEST_INVALID"},
		{name: "manifest-not-json", method: "PUT", path: "/v2/probe/manifests/bad-json", ctype: mt, body: "{not json", status: []int{400}, code: "MANIFEST_INVALID"},
		{name: "manifest-array", method: "PUT", path: "/v2/probe/manifests/bad-array", ctype: mt, body: "[]", status: []int{400}, code: "MANIFEST_INVALID"},
		{name: "config-size-negative", method: "PUT", path: "/v2/probe/manifests/bad-neg", ctype: mt, body: manifest(-5, cfgDigest, ""), status: []int{400}, code: "SIZE_INVALID"},
		{name: "config-size-string", method: "PUT", path: "/v2/probe/manifests/bad-strsize", ctype: mt, body: manifest("5", cfgDigest, ""), status: []int{400}, code: "SIZE_INVALID"},
		{name: "config-size-missing", method: "PUT", path: "/v2/probe/manifests/bad-nosize", ctype: mt, body: manifest(nil, cfgDigest, ""), status: []int{400}, code: "SIZE_INVALID"},
		{name: "config-size-float", method: "PUT", path: "/v2/probe/manifests/bad-floatsize", ctype: mt, body: manifest(1.5, cfgDigest, ""), status: []int{400}, code: "SIZE_INVALID"},
		{name: "config-digest-traversal", method: "PUT", path: "/v2/probe/manifests/bad-cfgdig", ctype: mt, body: manifest(len(config), "sha256:../../../etc", ""), status: []int{400}, code: "DIGEST_INVALID"},
		{name: "config-digest-short", method: "PUT", path: "/v2/probe/manifests/bad-cfgshort", ctype: mt, body: manifest(len(config), "sha256:abc", ""), status: []int{400}, code: "DIGEST_INVALID"},
		{name: "subject-digest-traversal", method: "PUT", path: "/v2/probe/manifests/bad-subject", ctype: mt, body: manifest(len(config), cfgDigest, "sha256:../../../etc"), status: []int{400}, code: "DIGEST_INVALID"},
		{name: "config-media-type", method: "PUT", path: "/v2/probe/manifests/bad-mediatype", ctype: mt, body: badMediaType, status: []int{400}, code: "MANIFEST_INVALID"},
		{name: "manifest-over-4MiB", method: "PUT", path: "/v2/probe/manifests/bad-huge", ctype: mt, body: `{"schemaVersion":2,"x":"` + strings.Repeat("a", 4<<20+10) + `"}`, status: []int{413}, code: "SIZE_INVALID"},
		{name: "manifest-digest-invalid", method: "GET", path: "/v2/probe/manifests/sha256:nothex", status: []int{400}, code: "DIGEST_INVALID"},
		{name: "manifest-put-digest-traversal", method: "PUT", path: "/v2/probe/manifests/sha256:..%2F..%2Fetc", ctype: mt, body: good},
		{name: "referrers-digest-short", method: "GET", path: "/v2/probe/referrers/sha256:abc", status: []int{400}, code: "DIGEST_INVALID"},
		{name: "referrers-digest-traversal", method: "GET", path: "/v2/probe/referrers/sha256:..%2F..%2Fetc", status: []int{400, 404}},
		{name: "blob-digest-traversal", method: "GET", path: "/v2/probe/blobs/sha256:..%2F..%2Fetc"},
		{name: "upload-bad-content-range", upload: true, method: "PATCH", body: "0123456789", header: map[string]string{"Content-Range": "bogus"}, status: []int{400}, code: "BLOB_UPLOAD_INVALID"},
		{name: "upload-reversed-content-range", upload: true, method: "PATCH", body: "0123456789", header: map[string]string{"Content-Range": "9-0"}, status: []int{400, 416}},
		{name: "upload-negative-content-range", upload: true, method: "PATCH", body: "0123456789", header: map[string]string{"Content-Range": "-1-8"}, status: []int{400, 416}},
		{name: "upload-out-of-order-chunk", upload: true, method: "PATCH", body: "0123456789", header: map[string]string{"Content-Range": "10-19"}, status: []int{416}, code: "RANGE_INVALID"},
		{name: "upload-finish-digest-traversal", upload: true, method: "PUT", body: "x", path: "digest=sha256:..%2F..%2Fetc", status: []int{400}, code: "DIGEST_INVALID"},
		{name: "upload-finish-wrong-digest", upload: true, method: "PUT", body: "x", path: "digest=sha256:" + hex64, status: []int{400}, code: "DIGEST_INVALID"},
		{name: "tags-negative-n", method: "GET", path: "/v2/probe/tags/list?n=-1"},
	}
	t.Logf("registry cases: %d", len(cases)+1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := base + c.path
			if c.upload {
				loc := startUpload(t, base, "probe")
				if c.path != "" {
					sep := "?"
					if strings.Contains(loc, "?") {
						sep = "&"
					}
					loc += sep + c.path
				}
				target = loc
			}
			req, err := http.NewRequest(c.method, target, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			} else if c.body != "" {
				req.Header.Set("Content-Type", "application/octet-stream")
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, c.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if c.status != nil && !slices.Contains(c.status, resp.StatusCode) || resp.StatusCode < 400 || resp.StatusCode > 499 {
				want := "4xx"
				if c.status != nil {
					want = fmt.Sprint(c.status)
				}
				t.Errorf("%s: got %d, want %s\n%s", c.name, resp.StatusCode, want, tail(string(b), 5))
			}
			if c.method == "HEAD" {
				return
			}
			var body struct {
				Errors []struct{ Code string } `json:"errors"`
			}
			if err := json.Unmarshal(b, &body); err != nil || len(body.Errors) == 0 {
				t.Errorf("%s: body is not an OCI error list: %q", c.name, tail(string(b), 3))
				return
			}
			if c.code != "" && body.Errors[0].Code != c.code {
				t.Errorf("%s: error code %s, want %s", c.name, body.Errors[0].Code, c.code)
			}
		})
	}
	t.Run("nothing-bad-stored", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", base+"/v2/probe/manifests/good", strings.NewReader(good))
		req.Header.Set("Content-Type", mt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("a valid manifest after the bad ones: got %d, want 201", resp.StatusCode)
		}
		resp, err = http.Get(base + "/v2/probe/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var tags struct{ Tags []string }
		json.Unmarshal(b, &tags)
		for _, tag := range tags.Tags {
			if strings.HasPrefix(tag, "bad-") {
				t.Errorf("a refused manifest was stored under tag %s", tag)
			}
		}
		if !slices.Contains(tags.Tags, "good") {
			t.Errorf("tags: got %v, want good among them", tags.Tags)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func sha256Digest(b []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}

// startUpload opens an upload session and returns its absolute location.
func startUpload(t *testing.T, base, repo string) string {
	t.Helper()
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	return loc
}

// pushBlob uploads b monolithically and returns the final status.
func pushBlob(t *testing.T, base, repo string, b []byte) int {
	t.Helper()
	loc := startUpload(t, base, repo)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest("PUT", loc+sep+"digest="+sha256Digest(b), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// --- commit statuses ------------------------------------------------------------

// TestProbeStatuses: no green status for a stage that did not pass. A stage
// skipped because an earlier one failed must not be posted as success; one
// skipped by its own when: may be.
func TestProbeStatuses(t *testing.T) {
	var (
		mu    sync.Mutex
		posts = map[string][]string{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, "json", http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts[body["context"]] = append(posts[body["context"]], body["state"])
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id": 1}`)
	}))
	defer srv.Close()
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", `name: statuses
secrets:
  GH_TOKEN: {env: PROBE_GH_TOKEN}
commit_status:
  repository: o/r
  token: GH_TOKEN
  api_url: `+srv.URL+`
stages:
  - name: own-when
    when: branch == "never"
    steps: [{name: a, run: 'true'}]
  - name: fails
    steps: [{name: bad, run: 'exit 1'}, {name: allowed, run: 'exit 1', allow_failure: true}]
  - name: after-failure
    steps: [{name: never, run: 'true'}]
  - name: after-failure-when
    when: stages.fails.passed
    steps: [{name: never, run: 'true'}]
`)
	e.commitAll("ci: statuses")
	args := []string{"--state-dir", e.state, "run", "--progress", "plain"}
	r := probeRun(t, e.repo, []string{"PROBE_GH_TOKEN=ghp_probe0000000000"}, 2*time.Minute, args...)
	wantCode(t, args, r, exitFailed)
	mu.Lock()
	defer mu.Unlock()
	for _, ctx := range []string{"gantry/fails", "gantry/after-failure"} {
		if slices.Contains(posts[ctx], "success") {
			t.Errorf("%s: posted %v: a stage that did not pass is green", ctx, posts[ctx])
		}
	}
	if got := posts["gantry/fails"]; len(got) == 0 || got[len(got)-1] != "failure" {
		t.Errorf("gantry/fails: posted %v, want it to end in failure", got)
	}
	if got := posts["gantry/after-failure"]; len(got) == 0 {
		t.Errorf("gantry/after-failure: nothing posted; a required check would wait forever instead of failing")
	}
	noSecret(t, "ghp_probe0000000000", map[string]string{"run stdout": r.stdout, "run stderr": r.stderr})
}
