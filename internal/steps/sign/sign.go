// Package sign is the sign step kind (the seed's cosign step): it signs
// the image pushed earlier in the run by digest and attests, on that
// digest, its SLSA provenance, its SBOM and the verdict of every gate the
// run passed through, in cosign's formats.
package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/step"
)

// Kind is `uses: sign`.
var Kind = step.Kind{
	Name:    "sign",
	Summary: "sign the pushed image and attest its provenance, SBOM and gate verdicts (cosign formats)",
	Outputs: []string{"image", "digest", "signature", "attestations", "evidence", "key", "key_id"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Push is the image-push step whose `image` (REPO@DIGEST) and `tags`
	// are signed, "STAGE/STEP" or "STEP" of this stage (default
	// "build-test/push").
	Push string `yaml:"push"`
	// Target is a REPO@DIGEST to sign instead of Push's image.
	Target string `yaml:"target"`
	// Key is a cosign private key file (relative to the repository) or a
	// KMS URI (awskms://, gcpkms://, azurekms://, hashivault://). Default:
	// STATE_DIR/keys/cosign.key, generated on first use. The password
	// comes from COSIGN_PASSWORD, which the step lists in `secrets:`.
	Key string `yaml:"key"`
	// Provenance is the image-build step whose SLSA provenance is attested
	// (default "build-test/image"; "none" skips it).
	Provenance string `yaml:"provenance"`
	// SBOM attests the SBOM attached to the image (default true), if it
	// is the one SBOMFrom made.
	SBOM *bool `yaml:"sbom"`
	// SBOMFrom is the sbom step whose SBOM is attested, "STAGE/STEP" or
	// "STEP" of this stage (default "sbom"): the SBOM attached to the
	// image must have that step's `digest`, or the step fails.
	SBOMFrom string `yaml:"sbom_from"`
	// Evidence attests the verdict of every gate of the run (default true).
	Evidence *bool `yaml:"evidence"`
	// Annotations go into the signature payload (cosign sign -a).
	Annotations map[string]string `yaml:"annotations"`
}

// Artifacts the step stores.
const (
	// PublicKeyArtifact is the public key that verifies the signatures.
	PublicKeyArtifact = "cosign.pub"
	// SignaturesArtifact holds the simple-signing payloads signed and
	// their base64 signatures (JSON array).
	SignaturesArtifact = "signatures.json"
	// AttestationsArtifact holds the DSSE envelopes attested, one per
	// line.
	AttestationsArtifact = "attestations.intoto.jsonl"
)

type signStep struct {
	cfg Config
	now func() time.Time
}

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.Push == "" {
		c.Push = "build-test/push"
	}
	if c.Provenance == "" {
		c.Provenance = "build-test/image"
	}
	if c.SBOMFrom == "" {
		c.SBOMFrom = "sbom"
	}
	if in.Resolved() && c.Target != "" {
		if _, err := name.NewDigest(c.Target); err != nil {
			return nil, in.Errorf("target", "target %q is not REPO@sha256:...: %v", c.Target, err)
		}
	}
	return &signStep{cfg: c, now: time.Now}, nil
}

// Run signs and attests.
func (s *signStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	image, tags, err := s.image(env)
	if err != nil {
		return nil, err
	}
	image, insecure, stop, err := registry.EnsureFor(ctx, env.StateDir, env.Vars, env.Log, image)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	defer stop(context.WithoutCancel(ctx))
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.NewDigest(image, nopts...)
	if err != nil {
		return nil, fmt.Errorf("sign: image %q: %w", image, err)
	}
	signer, pub, err := s.signer(ctx, env, out)
	if err != nil {
		return nil, err
	}
	if env.Artifacts != nil {
		pem, err := signer.PublicKeyPEM()
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		if err := env.Artifacts.PutBytes(ctx, PublicKeyArtifact, pem, "application/x-pem-file"); err != nil {
			return nil, fmt.Errorf("sign: store %s: %w", PublicKeyArtifact, err)
		}
	}

	var ids []string
	for _, t := range tags {
		ids = append(ids, ref.Context().Name()+":"+t)
	}
	ann := map[string]any{}
	for k, v := range s.cfg.Annotations {
		ann[k] = v
	}
	if len(ann) == 0 {
		ann = nil
	}
	signed, err := signing.SignImage(ctx, ref, signer, signing.SignOptions{Identities: ids, Annotations: ann})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintf(out, "signed %s with %s (%s): %s\n", ref, signer.Ref, signer.ID, signed.Tag)
	if err := putJSON(ctx, env, SignaturesArtifact, signed.Made); err != nil {
		return nil, err
	}

	var attested []string
	var envelopes bytes.Buffer
	attest := func(predicateType string, statement []byte) error {
		a, err := signing.Attest(ctx, ref, signer, statement)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		envelopes.Write(a.Envelope)
		envelopes.WriteByte('\n')
		attested = append(attested, predicateType)
		fmt.Fprintf(out, "attested %s: %s\n", predicateType, a.Tag)
		return nil
	}
	if err := s.attestProvenance(env, ref, attest, out); err != nil {
		return nil, err
	}
	if s.cfg.SBOM == nil || *s.cfg.SBOM {
		if err := s.attestSBOM(ctx, env, ref, attest, out); err != nil {
			return nil, err
		}
	}
	verdicts := map[string]any{}
	if (s.cfg.Evidence == nil || *s.cfg.Evidence) && env.Run != nil {
		for _, p := range evidence.Collect(env.Run(), evidence.Run{ID: env.RunID, Commit: env.Git.SHA, Branch: env.Git.Branch}, s.now()) {
			b, err := json.Marshal(p)
			if err != nil {
				return nil, fmt.Errorf("sign: evidence %s: %w", p.Gate, err)
			}
			st, err := signing.NewStatement(ref, evidence.PredicateType(p.Gate), b)
			if err != nil {
				return nil, fmt.Errorf("sign: %w", err)
			}
			if err := attest(evidence.PredicateType(p.Gate), st); err != nil {
				return nil, err
			}
			verdicts[p.Gate] = p.Verdict
		}
	}
	if env.Artifacts != nil && envelopes.Len() > 0 {
		if err := env.Artifacts.PutBytes(ctx, AttestationsArtifact, envelopes.Bytes(), "application/x-ndjson"); err != nil {
			return nil, fmt.Errorf("sign: store %s: %w", AttestationsArtifact, err)
		}
	}
	fmt.Fprintf(out, "verify with: gantry verify %s --key %s (or cosign verify --key %s --insecure-ignore-tlog=true %s)\n", ref, pub, pub, ref)
	return &step.Result{
		Outputs: map[string]any{
			"image": ref.String(), "digest": ref.DigestStr(), "signature": signed.Tag,
			"attestations": attested, "evidence": verdicts, "key": pub, "key_id": signer.ID,
		},
		Summary: fmt.Sprintf("signed, %d attestations", len(attested)),
	}, nil
}

// image returns what to sign (REPO@DIGEST) and the tags it was pushed as.
func (s *signStep) image(env *step.Env) (string, []string, error) {
	if s.cfg.Target != "" {
		return s.cfg.Target, nil, nil
	}
	o, where, ok := env.OutputsOf(s.cfg.Push)
	if !ok || o == nil {
		return "", nil, fmt.Errorf("sign: step %s has not run: set with.push to the image-push step, or with.target", where)
	}
	image, _ := o["image"].(string)
	if image == "" {
		return "", nil, fmt.Errorf("sign: step %s has no `image` output", where)
	}
	var tags []string
	switch t := o["tags"].(type) {
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok && s != "" {
				tags = append(tags, s)
			}
		}
	case []string:
		tags = append(tags, t...)
	}
	slices.Sort(tags)
	return image, slices.Compact(tags), nil
}

// signer opens the configured key, or the default one (generating it on
// first use), and returns it with the reference of its public key.
func (s *signStep) signer(ctx context.Context, env *step.Env, out io.Writer) (*signing.Signer, string, error) {
	password := []byte(lookup(env.Vars, signing.PasswordEnv))
	key := s.cfg.Key
	if key == "" {
		priv, pub, created, err := signing.EnsureDefaultKey(env.StateDir, password)
		if err != nil {
			return nil, "", fmt.Errorf("sign: default key: %w", err)
		}
		if created {
			fmt.Fprintf(out, "generated a signing key: %s (public key %s)\n", priv, pub)
		}
		signer, err := signing.LoadSigner(ctx, priv, password)
		if err != nil {
			return nil, "", fmt.Errorf("sign: %w", err)
		}
		return signer, pub, nil
	}
	if !signing.IsKMS(key) {
		if strings.HasPrefix(key, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				key = filepath.Join(home, key[2:])
			}
		} else if !filepath.IsAbs(key) {
			key = filepath.Join(env.Dir, key)
		}
	}
	signer, err := signing.LoadSigner(ctx, key, password)
	if err != nil {
		return nil, "", fmt.Errorf("sign: %w", err)
	}
	pub := key
	if !signing.IsKMS(key) {
		pub = strings.TrimSuffix(key, ".key") + ".pub"
		if _, err := os.Stat(pub); err != nil {
			pub = "the artifact " + PublicKeyArtifact
		}
	}
	return signer, pub, nil
}

func (s *signStep) attestProvenance(env *step.Env, ref name.Digest, attest func(string, []byte) error, out io.Writer) error {
	if s.cfg.Provenance == "none" {
		return nil
	}
	o, where, ok := env.OutputsOf(s.cfg.Provenance)
	if !ok || o == nil {
		fmt.Fprintf(out, "no provenance: step %s did not run\n", where)
		return nil
	}
	path, _ := o["provenance"].(string)
	if path == "" {
		fmt.Fprintf(out, "no provenance: step %s has no `provenance` output\n", where)
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sign: provenance of %s: %w", where, err)
	}
	var st signing.Statement
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("sign: provenance %s: %w", path, err)
	}
	return attest(st.PredicateType, b)
}

// ErrSBOMMismatch: the SBOM attached to the image is not the one the
// run's sbom step made (it was replaced, or attached by someone else).
var ErrSBOMMismatch = errors.New("the SBOM attached to the image is not the one the sbom step made")

// attestSBOM attests the SBOM the run's sbom step made, read back from the
// image's .sbom attachment and checked against the step's `digest`
// output: whatever else the tag holds is never attested.
func (s *signStep) attestSBOM(ctx context.Context, env *step.Env, ref name.Digest, attest func(string, []byte) error, out io.Writer) error {
	o, where, ok := env.OutputsOf(s.cfg.SBOMFrom)
	if !ok || o == nil {
		fmt.Fprintf(out, "no SBOM attested: step %s did not run (with.sbom_from names the sbom step)\n", where)
		return nil
	}
	want, _ := o["digest"].(string)
	if want == "" {
		return fmt.Errorf("sign: step %s has no `digest` output, so its SBOM cannot be told from another: is it an sbom step?", where)
	}
	bom, err := signing.ReadAttachment(ctx, ref, signing.SBOMSuffix)
	if err != nil {
		return fmt.Errorf("sign: read the SBOM of %s: %w", ref, err)
	}
	if bom == nil {
		fmt.Fprintf(out, "no SBOM attested: step %s attached none to %s\n", where, ref)
		return nil
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(bom)); got != want {
		return fmt.Errorf("sign: %w: %s holds %s, step %s made %s", ErrSBOMMismatch, signing.AttachmentTag(ref, signing.SBOMSuffix), got, where, want)
	}
	st, err := signing.NewStatement(ref, signing.CycloneDX, bom)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return attest(signing.CycloneDX, st)
}

func putJSON(ctx context.Context, env *step.Env, name string, v any) error {
	if env.Artifacts == nil {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("sign: encode %s: %w", name, err)
	}
	if err := env.Artifacts.PutBytes(ctx, name, b, "application/json"); err != nil {
		return fmt.Errorf("sign: store %s: %w", name, err)
	}
	return nil
}

// lookup returns the value of key in a KEY=VALUE list (the last one wins).
func lookup(vars []string, key string) string {
	v := ""
	for _, kv := range vars {
		if val, ok := strings.CutPrefix(kv, key+"="); ok {
			v = val
		}
	}
	return v
}
