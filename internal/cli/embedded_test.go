package cli

import (
	"context"
	"testing"

	"github.com/gantry-ci/gantry/internal/registry"
)

// TestVerifyLeavesOtherLoopbackRegistriesAlone: an image on an address the
// embedded registry served on is found there again after it stopped; the
// same image named on another loopback address is not silently read from
// the embedded registry.
func TestVerifyLeavesOtherLoopbackRegistriesAlone(t *testing.T) {
	state := t.TempDir()
	addr, stop, err := registry.Ensure(t.Context(), state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := pushImage(t, addr+"/examplepay/payment-service", "v1")
	priv, pub := genKeys(t, "pw")
	if _, errs, code := gantry(t, state, "sign", d.String(), "--key", priv); code != 0 {
		t.Fatalf("sign: exit %d\n%s", code, errs)
	}
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, image string
		wantCode    int
	}{
		{"the embedded registry's address", d.String(), 0},
		{"another loopback registry that does not answer", "127.0.0.1:1/examplepay/payment-service@" + d.DigestStr(), ExitFailed},
		{"localhost on another port", "localhost:1/examplepay/payment-service@" + d.DigestStr(), ExitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := gantry(t, state, "verify", tc.image, "--key", pub)
			if code != tc.wantCode {
				t.Errorf("verify %s: exit %d, want %d\n%s%s", tc.image, code, tc.wantCode, out, errs)
			}
		})
	}
}
