package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/admission"
)

// TestExamplePipelineValidates: the example's pipeline, stages 4 and 5
// and their environments included, is valid for this gantry (the field
// names of environments:, the deploy and blue-green kinds, rollback:
// staging, approval:, vars:).
func TestExamplePipelineValidates(t *testing.T) {
	e := newEnv(t)
	copyTree(t, "../examples/payment-service", e.repo)
	r := e.gantry("validate")
	if r.code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if want := "5 stages"; !strings.Contains(r.stdout, want) {
		t.Errorf("validate: got %q, want it to say %q", r.stdout, want)
	}
}

// TestExampleKeyScript: scripts/example-key.sh writes the state dir's
// copy of the example's local policy, trusting the state dir's public key,
// which admission then reads with that key; the checked-in policy is
// never modified; once the checked-in policy trusts a key itself, the
// copy goes.
func TestExampleKeyScript(t *testing.T) {
	root := t.TempDir()
	policy := "examples/payment-service/kubernetes/local/kyverno-image-verification.yaml"
	orig, err := os.ReadFile(filepath.Join("..", policy))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, policy)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, policy), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../scripts/example-key.sh")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	run := func(steps string) {
		t.Helper()
		cmd := exec.Command("bash", "-euc", ". \"$1\"\n"+steps, "bash", script, gantryBin)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GANTRY_STATE_DIR="+state, "COSIGN_PASSWORD=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("example-key.sh: %v\n%s", err, out)
		}
	}
	run(`example_key_ensure "$2"
example_policy_trust_key
example_policy_restore`)
	pub, err := os.ReadFile(filepath.Join(state, "keys", "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(state, "policies", "kubernetes", "local", "kyverno-image-verification.yaml")
	trusted, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatalf("the state dir's copy of the policy: %v", err)
	}
	if _, err := admission.Decode(policy, trusted); err != nil {
		t.Fatalf("the trusted policy does not decode: %v\n%s", err, trusted)
	}
	placeholder := "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsuO1J13OgG5C71vn5tOchlg3G3nR"
	if !strings.Contains(string(orig), placeholder) || strings.Contains(string(trusted), placeholder) {
		t.Errorf("placeholder key: in the original %v (want true), in the trusted copy %v (want false)",
			strings.Contains(string(orig), placeholder), strings.Contains(string(trusted), placeholder))
	}
	keyLine := strings.Split(strings.TrimSpace(string(pub)), "\n")[1]
	if !strings.Contains(string(trusted), keyLine) {
		t.Errorf("trusted copy lacks the state dir's key %q:\n%s", keyLine, trusted)
	}
	if got, _ := os.ReadFile(filepath.Join(root, policy)); string(got) != string(orig) {
		t.Errorf("the checked-in policy changed:\n%s", got)
	}
	// A checked-in policy that trusts a key itself needs no copy.
	if err := os.WriteFile(filepath.Join(root, policy), trusted, 0o644); err != nil {
		t.Fatal(err)
	}
	run("example_policy_trust_key")
	if _, err := os.Stat(copyPath); !os.IsNotExist(err) {
		t.Errorf("the copy is still there once the checked-in policy trusts a key: %v", err)
	}
}
