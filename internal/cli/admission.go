package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/admission"
	"github.com/gantry-ci/gantry/internal/admissionhook"
	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/signing"
)

func newAdmissionCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "Enforce the Kyverno image policy and gantry's evidence rule in a Kubernetes cluster",
	}
	cmd.AddCommand(newAdmissionServeCmd(g), newAdmissionInstallCmd())
	return cmd
}

func newAdmissionServeCmd(g *options.Global) *cobra.Command {
	o := &options.AdmissionServe{}
	cmd := &cobra.Command{
		Use:   "serve --policy FILE... --tls-cert FILE --tls-key FILE [--addr ADDR]",
		Short: "Serve the admission webhook (AdmissionReview v1, validating and mutating)",
		Long: `Serve an AdmissionReview v1 webhook over HTTPS that checks Pods and the
pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs and Argo Rollouts against the Kyverno policies of --policy
(verifyImages, image patterns) and, with --require, gantry's evidence rule,
the checks the local runtime makes before it starts anything.

POST /mutate answers with a JSON Patch that pins tags to the verified
digests (mutateDigest); POST /validate checks the object as it is stored;
GET /healthz answers ok. A registry that cannot be reached refuses (fail
closed). Verified signatures and attestations are cached by digest for
--cache-ttl.

Register it with the API server with gantry admission install.

Exit status: 0 stopped by SIGINT/SIGTERM, 1 the server failed, 2 bad usage
(a policy that does not parse, an unreadable certificate or key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAdmissionServe(cmd, g, o) },
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runAdmissionServe(cmd *cobra.Command, g *options.Global, o *options.AdmissionServe) error {
	ctx := cmd.Context()
	if len(o.Policies) == 0 && len(o.Require) == 0 {
		return usageErr(errors.New("admission serve: give --policy FILE or --require GATES (the webhook would admit everything)"))
	}
	if o.TLSCert == "" || o.TLSKey == "" {
		return usageErr(errors.New("admission serve: --tls-cert and --tls-key are required (the API server calls webhooks over HTTPS only)"))
	}
	var p admission.Policies
	for _, file := range o.Policies {
		data, err := os.ReadFile(file)
		if err != nil {
			return usageErr(fmt.Errorf("read policy: %w", err))
		}
		pols, err := admission.Decode(file, data)
		if err != nil {
			return usageErr(err)
		}
		p.Kyverno = append(p.Kyverno, pols...)
	}
	if len(o.Require) > 0 {
		if o.EvidenceKey == "" {
			return usageErr(errors.New("admission serve: --require needs --evidence-key, the key that signs the evidence"))
		}
		v, err := signing.LoadVerifier(ctx, o.EvidenceKey)
		if err != nil {
			return usageErr(fmt.Errorf("admission serve: evidence key: %w", err))
		}
		p.Require, p.EvidenceKey = o.Require, v
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return usageErr(fmt.Errorf("admission serve: TLS certificate: %w", err))
	}
	level := slog.LevelInfo
	if g.Verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	r, err := admission.New(admission.WithLogger(logger), admission.WithCacheTTL(o.CacheTTL),
		admission.WithRemoteOptions(remote.WithAuthFromKeychain(authn.DefaultKeychain)))
	if err != nil {
		return usageErr(err)
	}
	h, err := admissionhook.New(r, p, admissionhook.WithLogger(logger), admissionhook.WithMaxBody(o.MaxBody))
	if err != nil {
		return usageErr(err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return failed(fmt.Errorf("admission serve: %w", err))
	}
	logger.Info("admission webhook listening", "addr", ln.Addr().String(), "policies", len(p.Kyverno), "require", o.Require)
	if err := h.Serve(ctx, ln, cert); err != nil {
		return failed(err)
	}
	return nil
}

func newAdmissionInstallCmd() *cobra.Command {
	o := &options.AdmissionInstall{}
	cmd := &cobra.Command{
		Use:   "install (--url URL | --service NS/NAME[:PORT]) --ca-bundle FILE",
		Short: "Print the webhook configurations that register gantry admission serve",
		Long: `Print, as YAML, the ValidatingWebhookConfiguration and the
MutatingWebhookConfiguration (admissionregistration.k8s.io/v1) that send
Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets,
ReplicationControllers, Jobs, CronJobs and Argo Rollouts (CREATE and
UPDATE) to gantry admission serve, with the CA bundle that verifies its
certificate. Apply them with kubectl apply -f -.

--failure-policy Fail (the default) refuses every such object while the
webhook cannot be reached; Ignore admits them unchecked.

Exit status: 0 printed, 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := os.ReadFile(o.CABundle)
			if o.CABundle == "" {
				err = errors.New("--ca-bundle is required")
			}
			if err != nil {
				return usageErr(fmt.Errorf("admission install: CA bundle: %w", err))
			}
			v, m, err := admissionhook.Configurations(admissionhook.Install{
				Name: o.Name, URL: o.URL, Service: o.Service, CABundle: ca,
				FailurePolicy: o.FailurePolicy, Timeout: o.Timeout, NamespaceSelector: o.NamespaceSelector,
			})
			if err != nil {
				return usageErr(fmt.Errorf("admission install: %w", err))
			}
			for i, obj := range []any{v, m} {
				out, err := yaml.Marshal(obj)
				if err != nil {
					return failed(fmt.Errorf("admission install: encode: %w", err))
				}
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "---")
				}
				if _, err := cmd.OutOrStdout().Write(out); err != nil {
					return failed(err)
				}
			}
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
