package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/signing"
)

func newVerifyCmd(g *options.Global) *cobra.Command {
	o := &options.Verify{}
	cmd := &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Verify an image's cosign signature and the gate evidence attested on it",
		Long: `Verify that IMAGE (REPO@sha256:... or REPO:TAG) carries a cosign signature
by --key for its digest, and with --require that passing gate verdicts
(lint, commit-messages, tests, vuln-scan, sast, licenses, sbom, approval)
are attested on it by the same key.

A failure is named: no signature, signed by another key, signed payload
was altered, signature is for another image, tag moved after signing,
required evidence missing, required evidence failing, required evidence
an allowed failure (for each gate).

A gate whose only failed steps had allow_failure: true is attested with
the verdict allowed-failure, which --require refuses unless
--allow-allowed-failures is given.

--key is a cosign public key file or a KMS URI; default
STATE_DIR/keys/cosign.pub when it exists.

Exit status: 0 verified, 1 verification failed (or the registry failed),
2 bad usage (unknown gate, unreadable key, bad reference).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd, g, o, args[0]) },
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// verifyReport is what `gantry verify` found.
type verifyReport struct {
	// Ref is IMAGE as given; Image is REPO@DIGEST once verified.
	Ref      string `json:"ref"`
	Image    string `json:"image,omitempty"`
	Verified bool   `json:"verified"`
	// Failure names the failure: signing.FailureName, or evidence-... for the evidence.
	Failure      string              `json:"failure,omitempty"`
	Error        string              `json:"error,omitempty"`
	Key          string              `json:"key"`
	KeyID        string              `json:"key_id"`
	Signatures   []signing.Signature `json:"signatures,omitempty"`
	Evidence     []evidence.Verdict  `json:"evidence,omitempty"`
	Attestations []attestationRow    `json:"attestations,omitempty"`
}

// attestationRow is one attestation of the image as --attestations lists
// it.
type attestationRow struct {
	PredicateType string `json:"predicate_type"`
	Gate          string `json:"gate,omitempty"`
	Verdict       string `json:"verdict,omitempty"`
	Verified      bool   `json:"verified"`
	Error         string `json:"error,omitempty"`
}

// evidenceFailureName names an evidence failure.
func evidenceFailureName(err error) string {
	switch {
	case errors.Is(err, evidence.ErrAllowedFailure):
		return "evidence-allowed-failure"
	case errors.Is(err, evidence.ErrFailing):
		return "evidence-failing"
	case errors.Is(err, evidence.ErrMissing):
		return "evidence-missing"
	}
	if n := signing.FailureName(err); n != "" {
		return "evidence-" + n
	}
	return "evidence-rejected"
}

func runVerify(cmd *cobra.Command, g *options.Global, o *options.Verify, image string) error {
	if err := o.Output.Validate(); err != nil {
		return usageErr(err)
	}
	gates := evidence.Gates()
	for _, r := range o.Require {
		if !slices.Contains(gates, r) {
			return usageErr(fmt.Errorf("--require: unknown gate %q; gates are %s", r, strings.Join(gates, ", ")))
		}
	}
	image, stop, err := reachEmbedded(cmd.Context(), g, image)
	if err != nil {
		return err
	}
	defer stop()
	ref, err := parseImage(image, o.Insecure)
	if err != nil {
		return usageErr(err)
	}
	keyRef := o.Key
	if keyRef == "" {
		stateDir, err := g.ResolveStateDir()
		if err != nil {
			return usageErr(err)
		}
		keyRef = filepath.Join(signing.DefaultKeyDir(stateDir), signing.PublicKeyFile)
		if _, err := os.Stat(keyRef); err != nil {
			return usageErr(fmt.Errorf("no --key given and no default public key at %s", keyRef))
		}
	}
	ctx := cmd.Context()
	v, err := signing.LoadVerifier(ctx, keyRef)
	if err != nil {
		return usageErr(err)
	}
	rep := &verifyReport{Ref: image, Key: v.Ref, KeyID: v.ID}
	w := cmd.OutOrStdout()
	// fail reports a verification failure: as JSON or YAML when asked,
	// and as the command's error (exit 1).
	fail := func(name string, err error) error {
		rep.Failure, rep.Error = name, err.Error()
		switch {
		case o.Format != "table":
			if perr := printAs(w, o.Format, rep, nil); perr != nil {
				return perr
			}
		case rep.Attestations != nil:
			// The evidence failed; show what is attested.
			if perr := printAs(w, o.Format, rep, func(tw *tabwriter.Writer) { rep.table(tw) }); perr != nil {
				return perr
			}
		}
		return failed(err)
	}

	ropts := remoteOptions()
	verified, err := signing.Verify(ctx, ref, v, ropts...)
	if err != nil {
		if n := signing.FailureName(err); n != "" {
			return fail(n, fmt.Errorf("verify %s: %w", image, err))
		}
		return err
	}
	rep.Image, rep.Signatures = verified.Image, verified.Signatures
	if len(o.Require) > 0 || o.Attestations {
		d := ref.Context().Digest(verified.Signatures[0].Digest)
		atts, err := signing.VerifyAttestations(ctx, d, v, ropts...)
		if err != nil && !errors.Is(err, signing.ErrNoAttestation) {
			return err
		}
		if o.Attestations {
			rep.Attestations = attestationRows(atts)
		}
		if len(o.Require) > 0 {
			verdicts, err := evidence.Check(atts, o.Require, evidence.CheckOptions{AcceptAllowedFailures: o.AllowAllowedFailures})
			rep.Evidence = verdicts
			if err != nil {
				return fail(evidenceFailureName(err), fmt.Errorf("verify %s: the signature verified, but not the evidence required:\n%w", image, indented{err}))
			}
		}
	}
	rep.Verified = true
	return printAs(w, o.Format, rep, func(tw *tabwriter.Writer) { rep.table(tw) })
}

func attestationRows(atts []signing.Attestation) []attestationRow {
	rows := make([]attestationRow, 0, len(atts))
	for _, a := range atts {
		r := attestationRow{PredicateType: a.PredicateType, Gate: evidence.GateOf(a.PredicateType), Verified: a.Err == nil}
		if a.Err != nil {
			r.Error = a.Err.Error()
		} else if r.Gate != "" && a.Statement != nil {
			var p evidence.Predicate
			if err := json.Unmarshal(a.Statement.Predicate, &p); err == nil {
				r.Verdict = p.Verdict
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func (r *verifyReport) table(tw *tabwriter.Writer) {
	if r.Verified {
		fmt.Fprintf(tw, "Verified\t%s\n", r.Image)
	} else {
		fmt.Fprintf(tw, "Signed\t%s (evidence NOT verified)\n", r.Image)
	}
	fmt.Fprintf(tw, "Key\t%s (%s)\n", r.Key, shortKeyID(r.KeyID))
	for i, s := range r.Signatures {
		label := "Signature"
		if i > 0 {
			label = ""
		}
		id := s.Identity
		if id == "" {
			id = "(no identity claim)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\n", label, id, formatAnnotations(s.Annotations))
	}
	for i, v := range r.Evidence {
		label := "Evidence"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(tw, "%s\t%s: %s (run %s, %s)\n", label, v.Gate, v.Verdict, v.RunID, v.Time)
	}
	if r.Attestations != nil {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "PREDICATE TYPE\tGATE\tVERDICT\tSTATUS")
		if len(r.Attestations) == 0 {
			fmt.Fprintln(tw, "(no attestations)\t\t\t")
		}
		for _, a := range r.Attestations {
			status := "verified"
			if !a.Verified {
				status = "REJECTED: " + a.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.PredicateType, dash(a.Gate), dash(a.Verdict), status)
		}
	}
}

func formatAnnotations(a map[string]any) string {
	if len(a) == 0 {
		return ""
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, a[k])
	}
	return "  " + strings.Join(parts, " ")
}

// indented shows a multi-line error with each line indented.
type indented struct{ err error }

func (e indented) Error() string { return "  " + strings.ReplaceAll(e.err.Error(), "\n", "\n  ") }
func (e indented) Unwrap() error { return e.err }
