package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
)

// pair makes a signing key pair.
func pair(t *testing.T) (*signing.Signer, *signing.Verifier) {
	t.Helper()
	priv, pub, err := signing.WriteKeyPair(t.TempDir(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.LoadSigner(t.Context(), priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.LoadVerifier(t.Context(), pub)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// pushImage writes a random image into a real embedded registry and
// returns it by digest.
func pushImage(t *testing.T, repo string) name.Digest {
	t.Helper()
	srv, err := registry.Serve(t.Context(), t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(srv.Addr() + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return tag.Context().Digest(d.String())
}

// attestGate attests a gate verdict on ref with s.
func attestGate(t *testing.T, ref name.Digest, s *signing.Signer, gate, verdict, at string) {
	t.Helper()
	p, err := json.Marshal(Predicate{Gate: gate, Verdict: verdict, Run: Run{ID: "7", Time: at}, Steps: []Step{}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := signing.NewStatement(ref, PredicateType(gate), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Attest(t.Context(), ref, s, st); err != nil {
		t.Fatal(err)
	}
}

func TestCheckImage(t *testing.T) {
	signer, trusted := pair(t)
	otherSigner, other := pair(t)
	ref := pushImage(t, "app")
	if _, err := signing.SignImage(t.Context(), ref, signer, signing.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	attestGate(t, ref, signer, "tests", Fail, "2026-11-30T10:00:00Z")
	attestGate(t, ref, signer, "tests", Pass, "2026-11-30T11:00:00Z")
	attestGate(t, ref, signer, "lint", Pass, "2026-11-30T10:00:00Z")
	// Another key attests a passing sast: the trusted key did not make it.
	attestGate(t, ref, otherSigner, "sast", Pass, "2026-11-30T10:00:00Z")

	t.Run("trusted key", func(t *testing.T) {
		// The other key is tried first and fails; the trusted one verifies.
		c, err := CheckImage(t.Context(), ref, []*signing.Verifier{other, trusted})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Verified || c.KeyID != trusted.ID || c.Failure != "" {
			t.Fatalf("got verified %v key %s failure %q, want verified by %s", c.Verified, c.KeyID, c.Failure, trusted.ID)
		}
		got := map[string]string{}
		for _, v := range c.Gates {
			got[v.Gate] = v.Verdict
		}
		want := map[string]string{"lint": Pass, "tests": Pass}
		if len(got) != len(want) || got["lint"] != Pass || got["tests"] != Pass {
			t.Errorf("gates: got %v, want %v (the newest tests verdict; sast not by this key)", got, want)
		}
		if len(c.Rejected) != 1 || c.Rejected[0].Gate != "sast" {
			t.Errorf("rejected: got %+v, want sast (attested by another key)", c.Rejected)
		}
	})
	t.Run("untrusted key only", func(t *testing.T) {
		unsigned := pushImage(t, "other")
		for _, tc := range []struct {
			name string
			ref  name.Digest
			want string
		}{{"signed by another key", ref, "wrong-key"}, {"unsigned", unsigned, "no-signature"}} {
			c, err := CheckImage(t.Context(), tc.ref, []*signing.Verifier{other})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if c.Verified || c.Failure != tc.want || c.Error == "" || len(c.Gates) != 0 {
				t.Errorf("%s: got verified %v failure %q error %q gates %v, want failure %s and no gates", tc.name, c.Verified, c.Failure, c.Error, c.Gates, tc.want)
			}
		}
	})
	t.Run("no keys", func(t *testing.T) {
		if _, err := CheckImage(t.Context(), ref, nil); !errors.Is(err, ErrNoKeys) {
			t.Errorf("got %v, want ErrNoKeys", err)
		}
	})
	t.Run("registry gone", func(t *testing.T) {
		gone, _ := name.NewDigest("127.0.0.1:1/app@" + ref.DigestStr())
		c, err := CheckImage(t.Context(), gone, []*signing.Verifier{trusted})
		if err == nil || c.Verified {
			t.Errorf("got %+v, %v; want an error for an unreachable registry", c, err)
		}
	})
}
