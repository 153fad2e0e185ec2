package kubetest

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestServingCertVerifiesWithItsBundle(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "webhook.gantry.svc"} {
		t.Run(host, func(t *testing.T) {
			cert, bundle, err := ServingCert(host)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(bundle) {
				t.Fatalf("bundle %q holds no certificate", bundle)
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("verify for %s: %v", host, err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: pool}); err == nil {
				t.Error("verifies for other.example too")
			}
		})
	}
}

func TestClientCertCarriesGroups(t *testing.T) {
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := ca.Issue("admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(c)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "admin" || len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "system:masters" {
		t.Errorf("subject %v, want CN=admin O=system:masters", leaf.Subject)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
}
