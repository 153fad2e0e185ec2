package admissionhook

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Install says how the API server reaches the webhook.
type Install struct {
	// Name names both configurations and their webhooks (default
	// "gantry-admission").
	Name string
	// URL is the webhook's base URL (https://HOST[:PORT][/PREFIX]), or
	// Service "NAMESPACE/NAME[:PORT]" a Service in the cluster; exactly
	// one is set.
	URL     string
	Service string
	// CABundle is the PEM of the CA that signed the webhook's serving
	// certificate.
	CABundle []byte
	// FailurePolicy is Fail (default: an unreachable webhook refuses) or
	// Ignore.
	FailurePolicy string
	// Timeout is how long the API server waits for an answer (default
	// 10s, the API server's range 1s to 30s).
	Timeout time.Duration
	// NamespaceSelector is a label selector ("env in (prod,staging)",
	// "!gantry.dev/exempt"); empty selects every namespace.
	NamespaceSelector string
}

// DefaultName names the configurations unless Install.Name says.
const DefaultName = "gantry-admission"

// webhookRules are the resources the webhook checks.
var webhookRules = []admissionregistrationv1.RuleWithOperations{
	rule("", "v1", "pods", "pods/ephemeralcontainers"),
	rule("apps", "v1", "deployments", "statefulsets", "daemonsets", "replicasets"),
	rule("", "v1", "replicationcontrollers"),
	rule("batch", "v1", "jobs", "cronjobs"),
	rule("argoproj.io", "v1alpha1", "rollouts"),
}

func rule(group, version string, resources ...string) admissionregistrationv1.RuleWithOperations {
	scope := admissionregistrationv1.NamespacedScope
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources, Scope: &scope,
		},
	}
}

// Configurations returns the ValidatingWebhookConfiguration and the
// MutatingWebhookConfiguration that send the pod-holding objects to the
// webhook.
func Configurations(in Install) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration, error) {
	if in.Name == "" {
		in.Name = DefaultName
	}
	if len(in.CABundle) == 0 || !strings.Contains(string(in.CABundle), "-----BEGIN CERTIFICATE-----") {
		return nil, nil, errors.New("the CA bundle holds no PEM certificate")
	}
	policy := admissionregistrationv1.Fail
	switch in.FailurePolicy {
	case "", "Fail":
	case "Ignore":
		policy = admissionregistrationv1.Ignore
	default:
		return nil, nil, fmt.Errorf("failure policy %q: want Fail or Ignore", in.FailurePolicy)
	}
	if in.Timeout == 0 {
		in.Timeout = 10 * time.Second
	}
	if in.Timeout < time.Second || in.Timeout > 30*time.Second || in.Timeout%time.Second != 0 {
		return nil, nil, fmt.Errorf("timeout %v: want whole seconds from 1s to 30s (the API server's range)", in.Timeout)
	}
	timeout := int32(in.Timeout / time.Second)
	var selector *metav1.LabelSelector
	if in.NamespaceSelector != "" {
		var err error
		if selector, err = metav1.ParseToLabelSelector(in.NamespaceSelector); err != nil {
			return nil, nil, fmt.Errorf("namespace selector %q: %w", in.NamespaceSelector, err)
		}
	} else {
		selector = &metav1.LabelSelector{}
	}
	client := func(path string) (admissionregistrationv1.WebhookClientConfig, error) {
		return clientConfig(in, path)
	}
	vc, err := client(PathValidate)
	if err != nil {
		return nil, nil, err
	}
	mc, err := client(PathMutate)
	if err != nil {
		return nil, nil, err
	}
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	reinvoke := admissionregistrationv1.IfNeededReinvocationPolicy
	versions := []string{"v1"}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: in.Name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate." + in.Name + ".gantry.dev", ClientConfig: vc, Rules: webhookRules,
			FailurePolicy: &policy, MatchPolicy: &equivalent, NamespaceSelector: selector, SideEffects: &none,
			TimeoutSeconds: &timeout, AdmissionReviewVersions: versions,
		}},
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: in.Name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "mutate." + in.Name + ".gantry.dev", ClientConfig: mc, Rules: webhookRules,
			FailurePolicy: &policy, MatchPolicy: &equivalent, NamespaceSelector: selector, SideEffects: &none,
			TimeoutSeconds: &timeout, AdmissionReviewVersions: versions, ReinvocationPolicy: &reinvoke,
		}},
	}
	return v, m, nil
}

func clientConfig(in Install, path string) (admissionregistrationv1.WebhookClientConfig, error) {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: in.CABundle}
	switch {
	case (in.URL == "") == (in.Service == ""):
		return cc, errors.New("give exactly one of the webhook's URL and its Service")
	case in.URL != "":
		u, err := url.Parse(in.URL)
		if err != nil {
			return cc, fmt.Errorf("webhook URL: %w", err)
		}
		if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return cc, fmt.Errorf("webhook URL %q: want https://HOST[:PORT][/PATH], without user, query or fragment (the API server's rules)", in.URL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + path
		s := u.String()
		cc.URL = &s
	default:
		ns, rest, ok := strings.Cut(in.Service, "/")
		name, portText, hasPort := strings.Cut(rest, ":")
		if !ok || ns == "" || name == "" {
			return cc, fmt.Errorf("webhook Service %q: want NAMESPACE/NAME[:PORT]", in.Service)
		}
		svc := &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name, Path: &path}
		if hasPort {
			port, err := strconv.ParseInt(portText, 10, 32)
			if err != nil || port < 1 || port > 65535 {
				return cc, fmt.Errorf("webhook Service %q: port %q: want 1 to 65535", in.Service, portText)
			}
			p := int32(port)
			svc.Port = &p
		}
		cc.Service = svc
	}
	return cc, nil
}
