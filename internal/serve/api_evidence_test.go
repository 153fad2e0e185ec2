package serve

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestEvidenceChecksTheRegistry: the evidence of a digest carries what
// the server finds in the embedded registry, checked against the state
// dir's key, beside what the runs recorded; an image signed by another key
// is not verified, and a registry the server was not told to read is not
// contacted at all.
func TestEvidenceChecksTheRegistry(t *testing.T) {
	e := newAPIEnv(t)
	ctx := t.Context()
	reg, err := registry.ServeState(context.WithoutCancel(ctx), e.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	e.api.runs.Images = newRegistryChecker(e.dir, reg.Addr(), Verification{})

	priv, _, _, err := signing.EnsureDefaultKey(e.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stateKey, err := signing.LoadSigner(ctx, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _, err := signing.WriteKeyPair(t.TempDir(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := signing.LoadSigner(ctx, otherPriv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}

	// push writes an image, signs it with key and attests a passing tests
	// gate, and records a run whose sign step says so.
	push := func(repo string, key *signing.Signer) string {
		img, err := random.Image(64, 1)
		must(t, err)
		tag, err := name.NewTag(reg.Addr()+"/"+repo+":v1", name.Insecure)
		must(t, err)
		must(t, remote.Write(tag, img))
		d, _ := img.Digest()
		ref := tag.Context().Digest(d.String())
		_, err = signing.SignImage(ctx, ref, key, signing.SignOptions{})
		must(t, err)
		p, err := json.Marshal(evidence.Predicate{Gate: "tests", Verdict: evidence.Pass, Run: evidence.Run{ID: "1", Time: "2026-11-30T10:00:00Z"}, Steps: []evidence.Step{}})
		must(t, err)
		st, err := signing.NewStatement(ref, evidence.PredicateType("tests"), p)
		must(t, err)
		_, err = signing.Attest(ctx, ref, key, st)
		must(t, err)
		r := &store.Run{Pipeline: "app", Dir: t.TempDir(), Event: "push", Branch: "main", SHA: "0123456789abcdef", Trigger: "cli"}
		must(t, e.st.CreateRun(ctx, r))
		must(t, e.st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "build", Name: "sign", Kind: "sign", Status: store.StatusPassed,
			Outputs: map[string]any{"digest": d.String(), "image": ref.String(), "key": "recorded-by-the-run.pub", "key_id": "run-says",
				"evidence": map[string]any{"tests": "pass", "sast": "pass"}}}))
		return d.String()
	}
	good := push("good", stateKey)
	forged := push("forged", otherKey)

	type page struct {
		Items []Signing `json:"items"`
	}
	get := func(digest string) Signing {
		t.Helper()
		resp, body := e.call(t, viewer, "GET", "/api/v1/evidence/"+digest, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET evidence: %d %s", resp.StatusCode, body)
		}
		e.doc.check(t, "GET /api/v1/evidence/{digest}", resp, body)
		var p page
		must(t, json.Unmarshal(body, &p))
		if len(p.Items) != 1 {
			t.Fatalf("got %d records, want 1: %s", len(p.Items), body)
		}
		return p.Items[0]
	}

	sg := get(good)
	if sg.Check == nil || !sg.Check.Verified || sg.Check.KeyID != stateKey.ID || sg.CheckError != "" {
		t.Fatalf("good image: check %+v error %q, want verified by the state dir's key %s", sg.Check, sg.CheckError, stateKey.ID)
	}
	if len(sg.Check.Gates) != 1 || sg.Check.Gates[0].Gate != "tests" || sg.Check.Gates[0].Verdict != evidence.Pass {
		t.Errorf("good image gates: got %+v, want only tests: pass (the run's claim of sast is not attested)", sg.Check.Gates)
	}

	sg = get(forged)
	if sg.Check == nil || sg.Check.Verified || sg.Check.Failure != "wrong-key" || len(sg.Check.Gates) != 0 {
		t.Errorf("image signed by another key: check %+v, want not verified (wrong-key) and no gates", sg.Check)
	}

	// A run that records an image in another registry: not contacted.
	r := &store.Run{Pipeline: "app", Dir: t.TempDir(), Event: "push", Branch: "main", SHA: "0123456789abcdef", Trigger: "cli"}
	must(t, e.st.CreateRun(ctx, r))
	other := "sha256:" + strings.Repeat("12", 32)
	must(t, e.st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "build", Name: "sign", Kind: "sign", Status: store.StatusPassed,
		Outputs: map[string]any{"digest": other, "image": "169.254.169.254/x@" + other}}))
	sg = get(other)
	if sg.Check != nil || !strings.Contains(sg.CheckError, "--verify-registry 169.254.169.254") {
		t.Errorf("image in another registry: check %+v error %q, want not checked, naming --verify-registry", sg.Check, sg.CheckError)
	}
}
