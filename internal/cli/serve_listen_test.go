package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeListenFlags: listener and single sign-on flags that cannot
// work are bad usage (exit 2) before anything starts.
func TestServeListenFlags(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open-secret")
	if err := os.WriteFile(open, []byte("s3cret-value\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cleartext off loopback", []string{"serve", "--listen", "0.0.0.0:8080"}, "in clear"},
		{"every interface without TLS", []string{"serve", "--listen", ":8080"}, "in clear"},
		{"cert without key", []string{"serve", "--listen", ":8443", "--tls-cert", "c.pem"}, "go together"},
		{"TLS without listen", []string{"serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "need --listen"},
		{"OIDC without listen", []string{"serve", "--oidc-issuer", "https://id.example"}, "needs --listen"},
		{"OIDC incomplete", []string{"serve", "--listen", "127.0.0.1:8080", "--oidc-issuer", "https://id.example"}, "--oidc-client-id"},
		{"OIDC secret readable by others", []string{"serve", "--listen", "127.0.0.1:8080", "--oidc-issuer", "https://id.example",
			"--oidc-client-id", "gantry", "--oidc-client-secret-file", open, "--oidc-redirect-url", "http://127.0.0.1:8080/auth/oidc/callback"}, "chmod 600"},
		{"OIDC flags without issuer", []string{"serve", "--oidc-client-id", "gantry"}, "need --oidc-issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLIState(t, t.TempDir(), "", tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("gantry %s: exit %d %q, want 2 and %q", strings.Join(tc.args, " "), code, out+errs, tc.want)
			}
			if strings.Contains(out+errs, "s3cret-value") {
				t.Error("the client secret was printed")
			}
		})
	}
}
