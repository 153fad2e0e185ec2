package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/infra/infratest"
	"github.com/gantry-ci/gantry/internal/store"
)

// infraEnv runs terraform v1.5.7 and gantry infra against a versitygw.
type infraEnv struct {
	*env
	s3   *infratest.S3
	tf   string
	dir  string // the Terraform configuration
	vars []string
	// backendExtra are lines added to the backend block.
	backendExtra string
}

func newInfraEnv(t *testing.T) *infraEnv {
	t.Helper()
	tf := infratest.Terraform(t)
	s := infratest.StartS3(t)
	s.Bucket(t, "tfstate", true)
	e := &infraEnv{env: newEnv(t), s3: s, tf: tf}
	e.dir = filepath.Join(e.repo, "infra")
	home := t.TempDir()
	e.vars = append(s.Env(),
		"HOME="+home, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE="+filepath.Join(home, "none.tfrc"),
		"AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "NO_COLOR=1")
	return e
}

// config writes the Terraform configuration: the backend and one
// terraform_data resource per name=input.
func (e *infraEnv) config(resources ...string) {
	e.t.Helper()
	var b strings.Builder
	backend := e.s3.BackendHCL("tfstate", "app/terraform.tfstate")
	if e.backendExtra != "" {
		backend = strings.Replace(backend, "  }\n}\n", e.backendExtra+"  }\n}\n", 1)
	}
	b.WriteString(backend)
	for _, r := range resources {
		name, input, _ := strings.Cut(r, "=")
		fmt.Fprintf(&b, "\nresource \"terraform_data\" %q {\n  input = %q\n}\n", name, input)
	}
	e.write("infra/main.tf", b.String())
}

func (e *infraEnv) run(name string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), e.vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (e *infraEnv) terraform(args ...string) result {
	e.t.Helper()
	r := e.run(e.tf, args...)
	if r.code != 0 && !(len(args) > 0 && args[0] == "plan" && r.code == 2) {
		e.t.Fatalf("terraform %v: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func (e *infraEnv) gantryInfra(args ...string) result {
	e.t.Helper()
	return e.run(gantryBin, append([]string{"--state-dir", e.state, "infra", "state"}, args...)...)
}

type versionRow struct {
	VersionID string   `json:"version_id"`
	Current   bool     `json:"current"`
	Serial    *uint64  `json:"serial"`
	Lineage   string   `json:"lineage"`
	TFVersion string   `json:"terraform_version"`
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
}

func (e *infraEnv) versions() []versionRow {
	e.t.Helper()
	r := e.gantryInfra("versions", "--limit", "0", "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("gantry infra state versions: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rows []versionRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("versions output: %v\n%s", err, r.stdout)
	}
	return rows
}

// TestInfraRollbackWithTerraform applies three configurations with the
// real terraform's S3 backend, rolls the state back to the first with
// gantry, and checks that terraform plans exactly the difference and
// applies it.
func TestInfraRollbackWithTerraform(t *testing.T) {
	e := newInfraEnv(t)
	e.config("a=v1")
	e.terraform("init", "-input=false")
	e.terraform("apply", "-auto-approve", "-input=false")
	e.config("a=v1", "b=v1")
	e.terraform("apply", "-auto-approve", "-input=false")
	e.config("a=v3", "b=v1")
	e.terraform("apply", "-auto-approve", "-input=false")

	rows := e.versions()
	if len(rows) < 3 {
		t.Fatalf("versions: got %d, want at least 3 (one per apply): %+v", len(rows), rows)
	}
	lineage := rows[0].Lineage
	for i, r := range rows {
		if r.Serial == nil || r.Lineage != lineage || r.TFVersion != "1.5.7" {
			t.Errorf("version %d: serial %v lineage %q terraform %q, want a serial, lineage %q, 1.5.7", i, r.Serial, r.Lineage, r.TFVersion, lineage)
		}
		if i > 0 && r.Serial != nil && rows[i-1].Serial != nil && *r.Serial > *rows[i-1].Serial {
			t.Errorf("serials not descending: %d then %d", *rows[i-1].Serial, *r.Serial)
		}
	}
	if !rows[0].Current || !slices.Equal(rows[0].Changed, []string{"terraform_data.a"}) {
		t.Errorf("newest version: %+v, want current with terraform_data.a changed", rows[0])
	}
	// The first apply's version: the oldest that added terraform_data.a.
	var first *versionRow
	for i := len(rows) - 1; i >= 0; i-- {
		if slices.Contains(rows[i].Added, "terraform_data.a") {
			first = &rows[i]
			break
		}
	}
	if first == nil {
		t.Fatalf("no version adds terraform_data.a: %+v", rows)
	}
	if !slices.ContainsFunc(rows, func(r versionRow) bool { return slices.Equal(r.Added, []string{"terraform_data.b"}) }) {
		t.Errorf("no version adds terraform_data.b: %+v", rows)
	}
	table := e.gantryInfra("versions")
	if table.code != 0 || !strings.Contains(table.stdout, "(current)") || !strings.Contains(table.stdout, "+terraform_data.b") {
		t.Errorf("versions table: exit %d\n%s%s", table.code, table.stdout, table.stderr)
	}

	before := len(rows)
	// Refusals change nothing.
	refusals := []struct {
		name  string
		setup func()
		args  []string
		code  int
		say   string
	}{
		{"no --yes without a terminal", nil, []string{"rollback", "--to-version", first.VersionID, "--reason", "r"}, 2, "pass --yes"},
		{"no --reason", nil, []string{"rollback", "--to-version", first.VersionID, "--yes"}, 2, "--reason required"},
		{"missing version", nil, []string{"rollback", "--to-version", "nope", "--reason", "r", "--yes"}, 4, "not found"},
		{"held lock", func() {
			e.s3.Put(t, "tfstate", "app/terraform.tfstate.tflock", `{"ID":"abc","Operation":"OperationTypeApply","Who":"ann@ci"}`)
		}, []string{"rollback", "--to-version", first.VersionID, "--reason", "r", "--yes"}, 4, `state is locked: lockfile lock s3://tfstate/app/terraform.tfstate.tflock held by "ann@ci"`},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			if r.setup != nil {
				r.setup()
			}
			res := e.gantryInfra(r.args...)
			if res.code != r.code || !strings.Contains(res.stderr, r.say) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", res.code, res.stderr, r.code, r.say)
			}
			if n := len(e.versions()); n != before {
				t.Errorf("versions: %d, want %d (unchanged)", n, before)
			}
		})
	}
	e.s3.Delete(t, "tfstate", "app/terraform.tfstate.tflock")

	res := e.gantryInfra("rollback", "--to-version", first.VersionID, "--reason", "bad change to a", "--yes")
	if res.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"+ terraform_data.b", "~ terraform_data.a (input, output)", "restored: s3://tfstate/app/terraform.tfstate is now version"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("rollback output lacks %q:\n%s", want, res.stdout)
		}
	}
	after := e.versions()
	if len(after) != before+1 || !after[0].Current || *after[0].Serial != *rows[0].Serial+1 {
		t.Fatalf("after rollback: %d versions, newest %+v; want %d, current, serial %d", len(after), after[0], before+1, *rows[0].Serial+1)
	}

	// terraform plans exactly the difference between the restored state
	// and the configuration: b to create again, a's input to update.
	if r := e.terraform("plan", "-input=false", "-out=tfplan", "-detailed-exitcode"); r.code != 2 {
		t.Fatalf("plan: exit %d, want 2 (changes)\n%s", r.code, r.stdout)
	}
	show := e.terraform("show", "-json", "tfplan")
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(show.stdout), &plan); err != nil {
		t.Fatalf("plan JSON: %v", err)
	}
	var got []string
	for _, rc := range plan.ResourceChanges {
		got = append(got, rc.Address+":"+strings.Join(rc.Change.Actions, "+"))
	}
	slices.Sort(got)
	if want := []string{"terraform_data.a:update", "terraform_data.b:create"}; !slices.Equal(got, want) {
		t.Errorf("plan: %q, want %q", got, want)
	}
	e.terraform("apply", "-auto-approve", "-input=false", "tfplan")
	if r := e.terraform("plan", "-input=false", "-no-color", "-detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after apply: exit %d, want 0 (no changes)\n%s", r.code, r.stdout)
	}

	st, err := store.Open(context.Background(), e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Action != "infra.rollback" || log[0].Subject != "s3://tfstate/app/terraform.tfstate" ||
		!strings.Contains(log[0].Detail, `"reason":"bad change to a"`) || !strings.Contains(log[0].Detail, first.VersionID) || log[0].Actor == "" {
		t.Errorf("audit log = %+v, want one infra.rollback by someone with the reason and target", log)
	}
}

// TestInfraRollbackOnFailure runs a pipeline whose deploy stage records
// the state version (infra-snapshot), applies a change with terraform,
// then fails: its on_failure action (uses: infra-rollback) restores the
// recorded version.
func TestInfraRollbackOnFailure(t *testing.T) {
	e := newInfraEnv(t)
	e.config("a=v1")
	e.terraform("init", "-input=false")
	e.terraform("apply", "-auto-approve", "-input=false")
	start := e.versions()[0]
	e.config("a=v1", "b=v1")
	e.write(".gitignore", ".terraform/\n*.tfplan\n")
	var env strings.Builder
	for _, kv := range append(e.vars, "TF="+e.tf) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&env, "  %s: %q\n", k, v)
	}
	e.write(".gantry/pipeline.yaml", `name: infra
env:
`+env.String()+`stages:
  - name: deploy
    steps:
      - {name: snapshot, uses: infra-snapshot, with: {dir: infra}}
      - {name: apply, run: 'cd infra && "$TF" apply -auto-approve -input=false', needs: [snapshot]}
      - {name: smoke, run: 'exit 1', needs: [apply]}
    on_failure:
      - uses: infra-rollback
        with: {dir: infra, snapshot: snapshot, reason: smoke test failed}
`)
	e.commitAll("feat: add b")
	r := e.gantry("run", "--progress", "plain")
	if r.code != 1 {
		t.Fatalf("gantry run: exit %d, want 1 (smoke fails)\n%s%s", r.code, r.stdout, r.stderr)
	}
	rows := e.versions()
	if len(rows) < 3 {
		t.Fatalf("versions: %+v, want the start, the apply and the rollback", rows)
	}
	cur := rows[0]
	if *cur.Serial <= *rows[1].Serial || cur.Lineage != start.Lineage {
		t.Errorf("current %+v, want a serial above the apply's %d, lineage %s", cur, *rows[1].Serial, start.Lineage)
	}
	if !slices.Equal(cur.Removed, []string{"terraform_data.b"}) || len(cur.Added)+len(cur.Changed) != 0 {
		t.Errorf("rollback version changes: %+v, want only terraform_data.b removed", cur)
	}
	show := e.gantry("show", "1", "-o", "json")
	if !strings.Contains(show.stdout, `"uses infra-rollback"`) && !strings.Contains(r.stdout, "uses infra-rollback: done") {
		t.Errorf("the failure action is not recorded:\n%s\n%s", r.stdout, show.stdout)
	}
	if r := e.terraform("plan", "-input=false", "-no-color", "-detailed-exitcode"); r.code != 2 || !strings.Contains(r.stdout, "terraform_data.b will be created") {
		t.Errorf("plan after the rollback: exit %d, want b to be created again\n%s", r.code, r.stdout)
	}
}

// TestInfraUsage: configuration mistakes are bad usage (exit 2) with the
// file position, before anything is read from S3.
func TestInfraUsage(t *testing.T) {
	e := newEnv(t)
	e.write("none/main.tf", "terraform {}\n")
	e.write("var/main.tf", "terraform {\n  backend \"s3\" {\n    bucket = var.b\n    key    = \"k\"\n  }\n}\n")
	e.write("ok/main.tf", "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n    key    = \"k\"\n    region = \"eu-west-1\"\n  }\n}\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no backend block", []string{"versions", "none"}, `none: no backend "s3" block`},
		{"variable in the block", []string{"versions", "--dir", "var"}, "var/main.tf:3:14: bucket: backend settings must be literal values"},
		{"dir twice", []string{"versions", "ok", "--dir", "ok"}, "not both"},
		{"bad output", []string{"versions", "ok", "-o", "xml"}, "--output must be"},
		{"no key", []string{"versions", "--dir", "ok", "--backend-config", "key="}, "key not set"},
		{"rollback without flags", []string{"rollback", "--dir", "ok"}, "--to-version and --reason required"},
		{"rollback without a terminal", []string{"rollback", "--dir", "ok", "--to-version", "v", "--reason", "r"}, "stdin is not a terminal: pass --yes"},
		{"diff needs two versions", []string{"diff", "v1"}, "accepts 2 arg(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.gantry(append([]string{"infra", "state"}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 saying %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

// TestInfraRollbackWithLockTable uses terraform's DynamoDB lock table: a
// held lock refuses the rollback, and after a rollback terraform accepts
// the state (its digest item was updated).
func TestInfraRollbackWithLockTable(t *testing.T) {
	e := newInfraEnv(t)
	ddb := infratest.StartDynamoDB(t)
	e.backendExtra = fmt.Sprintf("    dynamodb_table    = \"locks\"\n    dynamodb_endpoint = %q\n", ddb.Endpoint)
	e.config("a=v1")
	e.terraform("init", "-input=false")
	e.terraform("apply", "-auto-approve", "-input=false")
	e.config("a=v1", "b=v1")
	e.terraform("apply", "-auto-approve", "-input=false")
	if d := ddb.Get("locks", "tfstate/app/terraform.tfstate-md5"); d == nil || d["Digest"] == "" {
		t.Fatalf("terraform wrote no digest item: %v", d)
	}
	rows := e.versions()
	first := rows[len(rows)-1]

	ddb.Put("locks", map[string]string{"LockID": "tfstate/app/terraform.tfstate", "Info": `{"ID":"1","Operation":"OperationTypeApply","Who":"ci@runner"}`})
	r := e.gantryInfra("rollback", "--to-version", first.VersionID, "--reason", "r", "--yes")
	if r.code != 4 || !strings.Contains(r.stderr, `dynamodb lock locks LockID=tfstate/app/terraform.tfstate held by "ci@runner"`) {
		t.Errorf("rollback with a held lock: exit %d %q, want 4 naming the lock", r.code, r.stderr)
	}
	ddb.Delete("locks", "tfstate/app/terraform.tfstate")

	if r := e.gantryInfra("rollback", "--to-version", first.VersionID, "--reason", "r", "--yes"); r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	plan := e.terraform("plan", "-input=false", "-no-color", "-detailed-exitcode")
	if plan.code != 2 || !strings.Contains(plan.stdout, "terraform_data.b will be created") {
		t.Errorf("plan after the rollback: exit %d, want b to be created\n%s%s", plan.code, plan.stdout, plan.stderr)
	}
	e.terraform("apply", "-auto-approve", "-input=false")
}
