package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/signing"
)

func newSignCmd(g *options.Global) *cobra.Command {
	o := &options.Sign{}
	cmd := &cobra.Command{
		Use:   "sign IMAGE",
		Short: "Sign an image (and attest a predicate about it) in cosign's format",
		Long: `Sign IMAGE — REPO@sha256:... or REPO:TAG, resolved to its digest — with a
cosign key and push the signature as cosign does (REPO:sha256-<hex>.sig), so
that both ` + "`cosign verify --key`" + ` and ` + "`gantry verify`" + ` accept it. A tag
becomes the signature's identity claim (REPO:TAG); a digest claims the
repository.

--key is a cosign private key file or a KMS URI (awskms://, gcpkms://,
azurekms://, hashivault://); without it gantry uses STATE_DIR/keys/cosign.key,
generating it on first use. The key's password comes from $COSIGN_PASSWORD
(asked for on a terminal when unset and the empty password does not fit).

--attest FILE --type TYPE also attests FILE (a predicate JSON, wrapped in an
in-toto statement about the image, or a whole in-toto statement) as a DSSE
envelope in REPO:sha256-<hex>.att, as ` + "`cosign attest`" + ` does. TYPE is
slsaprovenance1, cyclonedx or a predicate type URI.

Exit status: 0 signed, 1 the registry failed or the KMS refused to sign, 2
bad usage (bad reference, a key that cannot be loaded, wrong password, bad
predicate file).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSign(cmd, g, o, args[0]) },
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// signReport is what `gantry sign` wrote.
type signReport struct {
	// Image is REPO@DIGEST.
	Image string `json:"image"`
	// Identity is the signature's docker-reference claim, when IMAGE was
	// a tag.
	Identity     string            `json:"identity,omitempty"`
	Key          string            `json:"key"`
	KeyID        string            `json:"key_id"`
	KeyGenerated bool              `json:"key_generated,omitempty"`
	Signature    *signing.Signed   `json:"signature"`
	Attestation  *signing.Attested `json:"attestation,omitempty"`
}

func runSign(cmd *cobra.Command, g *options.Global, o *options.Sign, image string) error {
	if err := o.Output.Validate(); err != nil {
		return usageErr(err)
	}
	ctx := cmd.Context()
	image, stop, err := reachEmbedded(ctx, g, image)
	if err != nil {
		return err
	}
	defer stop()
	ref, err := parseImage(image, o.Insecure)
	if err != nil {
		return usageErr(err)
	}
	annotations, err := parseAnnotations(o.Annotations)
	if err != nil {
		return usageErr(err)
	}
	att, err := readAttestation(o.Attest, o.Type)
	if err != nil {
		return usageErr(err)
	}
	rep := &signReport{}
	keyRef := o.Key
	if keyRef == "" {
		stateDir, err := g.ResolveStateDir()
		if err != nil {
			return usageErr(err)
		}
		pw, _ := envPassword()
		var pub string
		keyRef, pub, rep.KeyGenerated, err = signing.EnsureDefaultKey(stateDir, pw)
		if err != nil {
			return fmt.Errorf("default signing key: %w", err)
		}
		if rep.KeyGenerated {
			fmt.Fprintf(cmd.ErrOrStderr(), "generated signing key %s; verify with --key %s\n", keyRef, pub)
			if len(pw) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the key's password is empty (set %s to encrypt a new key)\n", signing.PasswordEnv)
			}
		}
	}
	signer, err := loadSigner(ctx, cmd, keyRef)
	if err != nil {
		return usageErr(err)
	}
	rep.Key, rep.KeyID = signer.Ref, signer.ID

	ropts := remoteOptions()
	d, err := signing.Resolve(ctx, ref, ropts...)
	if err != nil {
		return err
	}
	rep.Image = d.String()
	so := signing.SignOptions{Annotations: annotations}
	if t, ok := ref.(name.Tag); ok {
		rep.Identity = t.Name()
		so.Identities = []string{rep.Identity}
	}
	if rep.Signature, err = signing.SignImage(ctx, d, signer, so, ropts...); err != nil {
		return err
	}
	if att != nil {
		statement := att.statement
		if statement == nil {
			if statement, err = signing.NewStatement(d, att.predicateType, att.predicate); err != nil {
				return usageErr(fmt.Errorf("--attest %s: %w", o.Attest, err))
			}
		}
		if rep.Attestation, err = signing.Attest(ctx, d, signer, statement, ropts...); err != nil {
			return err
		}
	}
	return printAs(cmd.OutOrStdout(), o.Format, rep, func(tw *tabwriter.Writer) { rep.table(tw) })
}

func (r *signReport) table(tw *tabwriter.Writer) {
	fmt.Fprintf(tw, "Signed\t%s\n", r.Image)
	if r.Identity != "" {
		fmt.Fprintf(tw, "Identity\t%s\n", r.Identity)
	}
	fmt.Fprintf(tw, "Key\t%s (%s)\n", r.Key, shortKeyID(r.KeyID))
	fmt.Fprintf(tw, "Signature\t%s (%d added, %d in all)\n", r.Signature.Tag, r.Signature.Added, r.Signature.Signatures)
	if a := r.Attestation; a != nil {
		fmt.Fprintf(tw, "Attestation\t%s %s (%d in all)\n", a.Tag, a.PredicateType, a.Attestations)
	}
}

// loadSigner opens a signing key. A key file is decrypted with
// $COSIGN_PASSWORD, else the empty password, else (on a terminal) the
// password typed.
func loadSigner(ctx context.Context, cmd *cobra.Command, ref string) (*signing.Signer, error) {
	pw, set := envPassword()
	s, err := signing.LoadSigner(ctx, ref, pw)
	if err == nil || set || signing.IsKMS(ref) || !errors.Is(err, signing.ErrBadPassword) {
		return s, err
	}
	fd, ok := terminalFd(cmd.InOrStdin())
	if !ok {
		return nil, err
	}
	if pw, err = promptPassword(fd, cmd.ErrOrStderr(), "Enter password for private key: "); err != nil {
		return nil, err
	}
	return signing.LoadSigner(ctx, ref, pw)
}

// parseImage parses a registry reference; loopback registries (and
// --insecure) use plain HTTP.
func parseImage(image string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure || isLocalRef(image) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %q: want REPO@sha256:... or REPO:TAG: %w", image, err)
	}
	return ref, nil
}

// remoteOptions authenticate as docker and cosign do: the Docker config
// and its credential helpers.
func remoteOptions() []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

func parseAnnotations(kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-a %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// predicateTypeNames are cosign's --type names gantry accepts.
var predicateTypeNames = map[string]string{
	"slsaprovenance1": signing.SLSAProvenanceV1,
	"cyclonedx":       signing.CycloneDX,
}

// predicateType maps --type to a predicate type URI.
func predicateType(t string) (string, error) {
	if u, ok := predicateTypeNames[t]; ok {
		return u, nil
	}
	if u, err := url.Parse(t); err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "") {
		return t, nil
	}
	names := make([]string, 0, len(predicateTypeNames))
	for n := range predicateTypeNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return "", fmt.Errorf("--type %q: want %s or a predicate type URI", t, strings.Join(names, ", "))
}

// inTotoStatementTypes are the _type values of in-toto statements.
var inTotoStatementTypes = []string{signing.StatementType, "https://in-toto.io/Statement/v0.1"}

// attestation is what --attest and --type ask for: a predicate to wrap,
// or a whole statement.
type attestation struct {
	predicateType string
	predicate     []byte
	statement     []byte
}

// maxPredicate bounds the --attest file read.
const maxPredicate = 32 << 20

func readAttestation(file, typ string) (*attestation, error) {
	if file == "" {
		if typ != "" {
			return nil, errors.New("--type needs --attest FILE")
		}
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--attest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPredicate+1))
	if err != nil {
		return nil, fmt.Errorf("--attest: read %s: %w", file, err)
	}
	if len(data) > maxPredicate {
		return nil, fmt.Errorf("--attest %s: larger than %d bytes", file, maxPredicate)
	}
	return parseAttestation(file, data, typ)
}

// parseAttestation reads the --attest file's data: a predicate of --type
// typ, or an in-toto statement.
func parseAttestation(file string, data []byte, typ string) (*attestation, error) {
	var head struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("--attest %s: not a JSON object: %w", file, err)
	}
	var want string
	if typ != "" {
		var err error
		if want, err = predicateType(typ); err != nil {
			return nil, err
		}
	}
	if slices.Contains(inTotoStatementTypes, head.Type) {
		if head.PredicateType == "" {
			return nil, fmt.Errorf("--attest %s is an in-toto statement without a predicateType", file)
		}
		if want != "" && want != head.PredicateType {
			return nil, fmt.Errorf("--attest %s is an in-toto statement of predicate type %q, not --type %s", file, head.PredicateType, want)
		}
		return &attestation{predicateType: head.PredicateType, statement: data}, nil
	}
	if want == "" {
		return nil, fmt.Errorf("--attest %s is a predicate: say its --type (slsaprovenance1, cyclonedx or a URI)", file)
	}
	return &attestation{predicateType: want, predicate: data}, nil
}

// shortKeyID abbreviates a key ID (sha256:<hex>) to 12 hex digits.
func shortKeyID(id string) string {
	if alg, h, ok := strings.Cut(id, ":"); ok && len(h) > 12 {
		return alg + ":" + h[:12]
	}
	return id
}
