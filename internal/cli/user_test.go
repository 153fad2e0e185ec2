package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/store"
)

// runCLIState runs gantry with stdin on the state dir state and returns
// its stdout, its stderr and exit code apart.
func runCLIState(t *testing.T, state, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := New()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--state-dir", state}, args...))
	err := root.Execute()
	if err != nil {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), Code(err)
}

const strongPW = "vellum-oxbow-Trident-48-quasar"

func TestUserCommands(t *testing.T) {
	state := t.TempDir()
	steps := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no role", strongPW + "\n", []string{"user", "add", "ann"}, 2, "--role is required"},
		{"bad role", strongPW + "\n", []string{"user", "add", "ann", "--role", "root"}, 2, "unknown role"},
		{"bad name", strongPW + "\n", []string{"user", "add", "ann;rm -rf", "--role", "admin"}, 2, "user name"},
		{"weak password", "password1234\n", []string{"user", "add", "ann", "--role", "admin"}, 2, "password too weak"},
		{"no password", "", []string{"user", "add", "ann", "--role", "admin"}, 2, "no password"},
		{"add", strongPW + "\n", []string{"user", "add", "ann", "--role", "admin"}, 0, "added user ann (admin)"},
		{"add again", strongPW + "\n", []string{"user", "add", "ann", "--role", "viewer"}, 2, "already exists"},
		{"add bob", strongPW + "\r\n", []string{"user", "add", "bob", "--role", "viewer"}, 0, "added user bob"},
		{"role", "", []string{"user", "role", "bob", "developer"}, 0, "bob is now developer"},
		{"role of nobody", "", []string{"user", "role", "nobody", "developer"}, 1, "not found"},
		{"ls", "", []string{"user", "ls"}, 0, "bob   developer"},
		{"passwd weak", "bob\n", []string{"user", "passwd", "bob"}, 2, "password too weak"},
		{"passwd", "Hq7#pW2z!Lm9xR4t-more\n", []string{"user", "passwd", "bob"}, 0, "password of bob changed"},
		{"rm", "", []string{"user", "rm", "bob"}, 0, "removed user bob"},
		{"rm again", "", []string{"user", "rm", "bob"}, 1, "not found"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, errs, code := runCLIState(t, state, s.stdin, s.args...)
			if code != s.code || !strings.Contains(out+errs, s.want) {
				t.Errorf("gantry %s: exit %d, output %q; want exit %d and %q", strings.Join(s.args, " "), code, out+errs, s.code, s.want)
			}
			if strings.Contains(out+errs, strongPW) || strings.Contains(out+errs, "Hq7#pW2z") {
				t.Errorf("gantry %s printed the password", strings.Join(s.args, " "))
			}
		})
	}
	out, _, code := runCLIState(t, state, "", "user", "ls", "-o", "json")
	var users []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &users) != nil || len(users) != 1 || users[0]["name"] != "ann" || users[0]["hasPassword"] != true {
		t.Errorf("user ls -o json: exit %d, %s; want ann alone, with a password", code, out)
	}
	if strings.Contains(out, "argon2") {
		t.Errorf("user ls shows the hash: %s", out)
	}
	st, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range log {
		if e.Actor != whoAmI() {
			t.Errorf("audit entry %+v: actor %q, want %q", e, e.Actor, whoAmI())
		}
		acts = append(acts, e.Action+" "+e.Subject)
	}
	want := "user.remove bob,user.passwd bob,user.role bob,user.add bob,user.add ann"
	if got := strings.Join(acts, ","); got != want {
		t.Errorf("audit log %s, want %s", got, want)
	}
}

func TestTokenCommands(t *testing.T) {
	state := t.TempDir()
	if _, errs, code := runCLIState(t, state, strongPW+"\n", "user", "add", "ann", "--role", "developer"); code != 0 {
		t.Fatalf("user add: exit %d %s", code, errs)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no user", []string{"token", "create"}, "--user is required"},
		{"bad expiry", []string{"token", "create", "--user", "ann", "--expires", "soon"}, "--expires"},
		{"zero days", []string{"token", "create", "--user", "ann", "--expires", "0d"}, "--expires"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := runCLIState(t, state, "", tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d %q, want 2 and %q", code, errs, tc.want)
			}
		})
	}
	if _, errs, code := runCLIState(t, state, "", "token", "create", "--user", "nobody"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("token for an unknown user: exit %d %q, want 1, not found", code, errs)
	}
	out, errs, code := runCLIState(t, state, "", "token", "create", "--user", "ann", "--name", "laptop", "--expires", "30d")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "gantry_") || strings.Count(out, "\n") != 1 || !strings.Contains(errs, "shown only now") {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q; want the token alone on stdout", code, out, errs)
	}
	id := strings.Fields(errs)[1]
	ls, _, code := runCLIState(t, state, "", "token", "ls")
	if code != 0 || !strings.Contains(ls, id) || !strings.Contains(ls, "laptop") || !strings.Contains(ls, "active") || strings.Contains(ls, tok) {
		t.Errorf("token ls: exit %d\n%s\nwant %s, laptop, active, never the token", code, ls, id)
	}
	if out, _, code := runCLIState(t, state, "", "token", "revoke", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("token revoke: exit %d %q", code, out)
	}
	if _, errs, code := runCLIState(t, state, "", "token", "revoke", "tok_nope"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("revoke an unknown token: exit %d %q, want 1", code, errs)
	}
	ls, _, _ = runCLIState(t, state, "", "token", "ls", "--user", "ann", "-o", "json")
	var toks []map[string]any
	if err := json.Unmarshal([]byte(ls), &toks); err != nil || len(toks) != 1 || toks[0]["state"] != "revoked" || toks[0]["expires"] == nil {
		t.Errorf("token ls -o json = %s (%v), want one revoked token with an expiry", ls, err)
	}

	// A probe agent's token: bound to a location, shown by ls; a bad
	// location is bad usage, the server's own is refused.
	out, errs, code = runCLIState(t, state, "", "token", "create", "--user", "ann", "--location", "eu-west")
	if code != 0 || !strings.Contains(errs, "a probe agent's for location eu-west") {
		t.Fatalf("token create --location: exit %d, stderr %q", code, errs)
	}
	ls, _, _ = runCLIState(t, state, "", "token", "ls", "--user", "ann", "-o", "json")
	toks = nil
	if err := json.Unmarshal([]byte(ls), &toks); err != nil || len(toks) != 2 || toks[1]["location"] != "eu-west" || toks[0]["location"] != nil {
		t.Errorf("token ls -o json = %s (%v), want the agent's token second, bound to eu-west, and the first unbound", ls, err)
	}
	if ls, _, _ := runCLIState(t, state, "", "token", "ls"); !strings.Contains(ls, "LOCATION") || !strings.Contains(ls, "eu-west") {
		t.Errorf("token ls does not show the location:\n%s", ls)
	}
	if _, errs, code := runCLIState(t, state, "", "token", "create", "--user", "ann", "--location", "EU West"); code != 2 || !strings.Contains(errs, `invalid location name "EU West"`) {
		t.Errorf("token create --location 'EU West': exit %d %q, want 2", code, errs)
	}
	if _, errs, code := runCLIState(t, state, "", "token", "create", "--user", "ann", "--location", "local"); code != 1 || !strings.Contains(errs, "the gantry server's own") {
		t.Errorf("token create --location local: exit %d %q, want 1", code, errs)
	}
}
