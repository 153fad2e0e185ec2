package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// selfSigned writes a serving certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

const registryPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: restrict
spec:
  validationFailureAction: Enforce
  rules:
    - name: restrict-registries
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        pattern:
          spec:
            containers:
              - image: "registry.example/*"
`

func TestAdmissionUsage(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := selfSigned(t)
	good := filepath.Join(dir, "policy.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(registryPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(registryPolicy, "match:", "mtach:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no policy", []string{"admission", "serve", "--tls-cert", cert, "--tls-key", key}, "give --policy FILE or --require"},
		{"no certificate", []string{"admission", "serve", "--policy", good}, "--tls-cert and --tls-key are required"},
		{"bad policy", []string{"admission", "serve", "--policy", bad, "--tls-cert", cert, "--tls-key", key}, `bad.yaml:9:7: spec.rules[0]: unknown field "mtach"`},
		{"require without key", []string{"admission", "serve", "--require", "tests", "--tls-cert", cert, "--tls-key", key}, "--require needs --evidence-key"},
		{"key for certificate swapped", []string{"admission", "serve", "--policy", good, "--tls-cert", key, "--tls-key", cert}, "TLS certificate"},
		{"install without CA", []string{"admission", "install", "--url", "https://h"}, "--ca-bundle is required"},
		{"install without target", []string{"admission", "install", "--ca-bundle", cert}, "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, "", tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d: %s", code, ExitUsage, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestAdmissionInstallPrintsBothConfigurations(t *testing.T) {
	cert, _, _ := selfSigned(t)
	out, code := runCLI(t, "", "admission", "install", "--service", "gantry/admission", "--ca-bundle", cert, "--timeout", "5s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	docs := strings.Split(out, "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2:\n%s", len(docs), out)
	}
	for i, want := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		var obj struct {
			Kind     string `json:"kind"`
			Webhooks []struct {
				TimeoutSeconds int `json:"timeoutSeconds"`
				ClientConfig   struct {
					CABundle []byte `json:"caBundle"`
				} `json:"clientConfig"`
			} `json:"webhooks"`
		}
		if err := yaml.Unmarshal([]byte(docs[i]), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind != want || len(obj.Webhooks) != 1 || obj.Webhooks[0].TimeoutSeconds != 5 || !bytes.Contains(obj.Webhooks[0].ClientConfig.CABundle, []byte("BEGIN CERTIFICATE")) {
			t.Errorf("document %d: %+v, want a %s with the CA bundle and timeout 5", i, obj, want)
		}
	}
}

// TestAdmissionServe runs the webhook over TLS and asks it one review.
func TestAdmissionServe(t *testing.T) {
	cert, key, pool := selfSigned(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(registryPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	root := New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"--state-dir", t.TempDir(), "admission", "serve", "--policy", policy, "--tls-cert", cert, "--tls-key", key, "--addr", addr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"default","name":"p","object":{"kind":"Pod","spec":{"containers":[{"name":"a","image":"other.example/app:1"}]}}}}`
	var body bytes.Buffer
	for range 100 {
		resp, err := client.Post("https://"+addr+"/validate", "application/json", strings.NewReader(review))
		if err != nil {
			select {
			case err := <-done:
				t.Fatalf("serve ended: %v: %s", err, out.String())
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		break
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v: %s", err, out.String())
	}
	if !strings.Contains(body.String(), `"allowed":false`) || !strings.Contains(body.String(), "restrict-registries") {
		t.Errorf("answer %s: want a refusal by restrict-registries", body.String())
	}
}
