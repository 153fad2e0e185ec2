package options

import (
	"time"

	"github.com/spf13/pflag"
)

// AdmissionServe are the flags of `gantry admission serve`.
type AdmissionServe struct {
	Policies []string
	TLSCert  string
	TLSKey   string
	Addr     string
	// Require and EvidenceKey are gantry's evidence rule.
	Require     []string
	EvidenceKey string
	CacheTTL    time.Duration
	MaxBody     int64
}

// AddFlags registers the admission serve flags.
func (o *AdmissionServe) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.Policies, "policy", nil, "Kyverno ClusterPolicy/Policy file to enforce (repeatable)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM serving certificate (the API server calls webhooks over HTTPS only)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.Addr, "addr", ":8443", "address to listen on")
	fs.StringSliceVar(&o.Require, "require", nil, "gates whose passing, signed evidence each image must carry (tests, vuln-scan, sast, licenses, sbom, approval, ...)")
	fs.StringVar(&o.EvidenceKey, "evidence-key", "", "public key file or KMS URI that signs the evidence of --require")
	fs.DurationVar(&o.CacheTTL, "cache-ttl", time.Minute, "how long a verified signature or attestation list is reused for the same digest (0: no cache)")
	fs.Int64Var(&o.MaxBody, "max-body", 8<<20, "largest AdmissionReview accepted, in bytes (larger: 413)")
}

// AdmissionInstall are the flags of `gantry admission install`.
type AdmissionInstall struct {
	Name              string
	URL               string
	Service           string
	CABundle          string
	FailurePolicy     string
	Timeout           time.Duration
	NamespaceSelector string
}

// AddFlags registers the admission install flags.
func (o *AdmissionInstall) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Name, "name", "gantry-admission", "name of the two configurations")
	fs.StringVar(&o.URL, "url", "", "webhook base URL, https://HOST[:PORT][/PATH] (one of --url and --service)")
	fs.StringVar(&o.Service, "service", "", "webhook Service in the cluster, NAMESPACE/NAME[:PORT]")
	fs.StringVar(&o.CABundle, "ca-bundle", "", "PEM file of the CA that signed the webhook's certificate")
	fs.StringVar(&o.FailurePolicy, "failure-policy", "Fail", "Fail (an unreachable webhook refuses) or Ignore")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "how long the API server waits for the webhook (1s to 30s)")
	fs.StringVar(&o.NamespaceSelector, "namespace-selector", "", "label selector of the namespaces checked (default: all)")
}
