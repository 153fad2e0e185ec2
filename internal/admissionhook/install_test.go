package admissionhook

import (
	"strings"
	"testing"
	"time"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestConfigurations(t *testing.T) {
	v, m, err := Configurations(Install{URL: "https://10.0.0.1:8443/gantry/", CABundle: []byte(testCA),
		FailurePolicy: "Ignore", Timeout: 5 * time.Second, NamespaceSelector: "env in (prod,staging),!exempt"})
	if err != nil {
		t.Fatal(err)
	}
	vw, mw := v.Webhooks[0], m.Webhooks[0]
	if got, want := *vw.ClientConfig.URL, "https://10.0.0.1:8443/gantry/validate"; got != want {
		t.Errorf("validating URL %s, want %s", got, want)
	}
	if got, want := *mw.ClientConfig.URL, "https://10.0.0.1:8443/gantry/mutate"; got != want {
		t.Errorf("mutating URL %s, want %s", got, want)
	}
	if string(vw.ClientConfig.CABundle) != testCA {
		t.Errorf("CA bundle %q, want the file's", vw.ClientConfig.CABundle)
	}
	if got := string(*vw.FailurePolicy); got != "Ignore" {
		t.Errorf("failure policy %s, want Ignore", got)
	}
	if got := *mw.TimeoutSeconds; got != 5 {
		t.Errorf("timeout %d, want 5", got)
	}
	if got := len(vw.NamespaceSelector.MatchExpressions); got != 2 {
		t.Errorf("namespace selector %+v, want 2 expressions", vw.NamespaceSelector)
	}
	var resources []string
	for _, r := range vw.Rules {
		resources = append(resources, r.APIGroups[0]+"/"+strings.Join(r.Resources, ","))
	}
	if got, want := strings.Join(resources, " "), "/pods,pods/ephemeralcontainers apps/deployments,statefulsets,daemonsets,replicasets /replicationcontrollers batch/jobs,cronjobs argoproj.io/rollouts"; got != want {
		t.Errorf("rules %s, want %s", got, want)
	}

	_, m, err = Configurations(Install{Service: "gantry/admission:443", CABundle: []byte(testCA)})
	if err != nil {
		t.Fatal(err)
	}
	svc := m.Webhooks[0].ClientConfig.Service
	if svc.Namespace != "gantry" || svc.Name != "admission" || *svc.Port != 443 || *svc.Path != "/mutate" {
		t.Errorf("service %+v, want gantry/admission:443 /mutate", svc)
	}
	if got := string(*m.Webhooks[0].FailurePolicy); got != "Fail" {
		t.Errorf("default failure policy %s, want Fail", got)
	}
	if got := *m.Webhooks[0].TimeoutSeconds; got != 10 {
		t.Errorf("default timeout %d, want 10", got)
	}
}

func TestConfigurationsRefuse(t *testing.T) {
	ca := []byte(testCA)
	tests := []struct {
		name string
		in   Install
		want string
	}{
		{"no CA", Install{URL: "https://h"}, "no PEM certificate"},
		{"neither URL nor service", Install{CABundle: ca}, "exactly one"},
		{"both", Install{CABundle: ca, URL: "https://h", Service: "a/b"}, "exactly one"},
		{"plain HTTP", Install{CABundle: ca, URL: "http://h"}, "want https://"},
		{"query", Install{CABundle: ca, URL: "https://h/?a=1"}, "without user, query or fragment"},
		{"service without namespace", Install{CABundle: ca, Service: "svc"}, "NAMESPACE/NAME"},
		{"bad port", Install{CABundle: ca, Service: "ns/svc:0"}, "want 1 to 65535"},
		{"failure policy", Install{CABundle: ca, URL: "https://h", FailurePolicy: "Maybe"}, "want Fail or Ignore"},
		{"timeout too long", Install{CABundle: ca, URL: "https://h", Timeout: time.Minute}, "1s to 30s"},
		{"selector", Install{CABundle: ca, URL: "https://h", NamespaceSelector: "a in"}, "namespace selector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Configurations(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
