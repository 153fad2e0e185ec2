// Package admission decides whether images may run before anything
// starts: it enforces the verifyImages rules and the image patterns of the
// repository's Kyverno policies (read unchanged from their YAML) and
// gantry's own rule that an image carries passing, signed evidence for
// the gates an environment requires.
//
// Reviewer.Review checks a whole pod spec (several containers) against a
// set of policies and returns a Verdict and the JSON patches that pin
// tags to digests, for an AdmissionReview webhook; Reviewer.Admit is
// runtime.Admitter for the local runtime: one image, one environment.
//
// Features gantry cannot check on one machine (keyless signatures, a
// transparency log, notary, keys in Kubernetes secrets) are refused when
// the policy is read, never skipped; validate rules other than image
// patterns are reported as not enforced (a warning of every verdict).
package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/signing"
)

// PodSpec is the part of a pod spec admission reads.
type PodSpec struct {
	InitContainers      []Container `json:"initContainers,omitempty"`
	Containers          []Container `json:"containers"`
	EphemeralContainers []Container `json:"ephemeralContainers,omitempty"`
}

// Container is a container of a pod spec.
type Container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

func (p *PodSpec) listPtr(field string) *[]Container {
	switch field {
	case "initContainers":
		return &p.InitContainers
	case "ephemeralContainers":
		return &p.EphemeralContainers
	}
	return &p.Containers
}

func (p PodSpec) list(field string) []Container { return *p.listPtr(field) }

// Patch is a JSON Patch (RFC 6902) operation on the pod spec: Path is
// relative to the pod spec ("/containers/0/image"); a webhook prefixes
// it with where the pod spec sits in its object ("/spec",
// "/spec/template/spec").
type Patch struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// Reason says why an image was refused; each is a distinct failure.
type Reason string

// Reasons.
const (
	ReasonUnsigned       Reason = "unsigned"
	ReasonWrongKey       Reason = "signed by another key"
	ReasonBadSignature   Reason = "signature does not verify"
	ReasonAnnotations    Reason = "signature annotations do not match"
	ReasonTagNoDigest    Reason = "tag without digest"
	ReasonRegistry       Reason = "registry not allowed"
	ReasonNoAttestation  Reason = "attestation missing"
	ReasonConditionFalse Reason = "attestation condition false"
	ReasonEvidenceMiss   Reason = "evidence missing"
	ReasonEvidenceFail   Reason = "evidence failing"
	ReasonUnreachable    Reason = "registry unreachable"
	ReasonKeyUnavailable Reason = "key unavailable"
	ReasonBadReference   Reason = "bad image reference"
	ReasonBadPolicy      Reason = "policy does not parse"
	ReasonUnsupported    Reason = "policy uses an unsupported feature"
)

// GantryPolicy names gantry's own rule in refusals; RuleEvidence is its
// rule.
const (
	GantryPolicy = "gantry"
	RuleEvidence = "require-evidence"
)

// ErrUndecided is wrapped by a refusal for want of an answer (a registry
// that cannot be reached): the image does not run, but it was not judged
// either, so it does not wrap runtime.ErrAdmission. The environment
// controller records such a revision as failed, not refused.
var ErrUndecided = errors.New("admission could not decide")

// Refusal is why an image may not run. It wraps runtime.ErrAdmission
// (ErrUndecided for ReasonUnreachable) and the cause (a signing or
// evidence failure, a registry error, a policy error).
type Refusal struct {
	// Policy is the policy's file (GantryPolicy for the evidence rule);
	// PolicyName its metadata.name.
	Policy     string
	PolicyName string
	Rule       string
	// Line is the rule's line in the policy file (0 when none).
	Line   int
	Image  string
	Reason Reason
	Detail string
	Err    error
}

func (r *Refusal) Error() string {
	var b strings.Builder
	if r.Reason == ReasonUnreachable {
		b.WriteString("admission could not decide for ")
	} else {
		b.WriteString("admission refused by ")
	}
	if r.Policy == GantryPolicy {
		b.WriteString("gantry's rule")
	} else {
		fmt.Fprintf(&b, "policy %s", r.Policy)
		if r.PolicyName != "" {
			fmt.Fprintf(&b, " (%s)", r.PolicyName)
		}
		if r.Rule != "" {
			b.WriteString(", rule")
		}
	}
	if r.Rule != "" {
		fmt.Fprintf(&b, " %s", r.Rule)
	}
	if r.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", r.Line)
	}
	if r.Image != "" {
		fmt.Fprintf(&b, ": image %s", r.Image)
	}
	fmt.Fprintf(&b, ": %s", r.Reason)
	if r.Detail != "" {
		fmt.Fprintf(&b, ": %s", r.Detail)
	}
	return b.String()
}

// Unwrap returns runtime.ErrAdmission (ErrUndecided when the registry
// could not be reached) and the cause.
func (r *Refusal) Unwrap() []error {
	kind := runtime.ErrAdmission
	if r.Reason == ReasonUnreachable {
		kind = ErrUndecided
	}
	if r.Err == nil {
		return []error{kind}
	}
	return []error{kind, r.Err}
}

// Warning is a rule that failed in Audit mode, or a part of a policy
// gantry reads but does not enforce.
type Warning struct {
	Policy  string `json:"policy"`
	Rule    string `json:"rule"`
	Image   string `json:"image,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	s := fmt.Sprintf("policy %s, rule %s", w.Policy, w.Rule)
	if w.Image != "" {
		s += ": image " + w.Image
	}
	return s + ": " + w.Message
}

// Verdict is the outcome of a review.
type Verdict struct {
	Allowed  bool
	Refusals []*Refusal
	Warnings []Warning
	// Pinned maps each image reference of the pod, as given, to the
	// repo@digest that was checked (for images a rule checked).
	Pinned map[string]string
}

// Err returns nil for an allowed verdict, else the refusals (the first
// one when there is one), each a *Refusal wrapping runtime.ErrAdmission.
func (v Verdict) Err() error {
	switch {
	case v.Allowed:
		return nil
	case len(v.Refusals) == 1:
		return v.Refusals[0]
	case len(v.Refusals) == 0:
		return &Refusal{Policy: GantryPolicy, Reason: ReasonBadPolicy, Detail: "refused without a reason"}
	}
	errs := make([]error, len(v.Refusals))
	for i, r := range v.Refusals {
		errs[i] = r
	}
	return errors.Join(errs...)
}

// Policies is what a review enforces: Kyverno policies and gantry's
// evidence requirement.
type Policies struct {
	Kyverno []*Policy
	// Require lists evidence gates each image must carry, passing and
	// signed by EvidenceKey (as `gantry verify --require`).
	Require     []string
	EvidenceKey *signing.Verifier
}

// Reviewer reviews pods. It caches signature and attestation lookups by
// digest and key for its TTL (successes only: a refusal is always
// checked against the registry), and parsed policy files by content; it
// is safe for concurrent use.
type Reviewer struct {
	remote []remote.Option
	log    *slog.Logger
	ttl    time.Duration
	now    func() time.Time

	group singleflight.Group
	mu    sync.Mutex
	sigs  map[string]sigEntry
	atts  map[string]attEntry
	kms   map[string]*signing.Verifier
	files map[string]fileEntry
}

type sigEntry struct {
	v  *signing.Verified
	at time.Time
}

type attEntry struct {
	atts []signing.Attestation
	at   time.Time
}

type fileEntry struct {
	policies []*Policy
	err      error
}

// Option configures a Reviewer.
type Option func(*Reviewer) error

// WithRemoteOptions sets how registries are reached (authentication,
// transport). Default: anonymous; loopback registries over plain HTTP.
func WithRemoteOptions(opts ...remote.Option) Option {
	return func(r *Reviewer) error { r.remote = append(r.remote, opts...); return nil }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Reviewer) error {
		if l == nil {
			return errors.New("admission: nil logger")
		}
		r.log = l
		return nil
	}
}

// WithCacheTTL sets how long a verified signature or attestation list is
// reused for the same digest and key (default 1 minute; 0 disables the
// cache). Failures and registry errors are never cached.
func WithCacheTTL(d time.Duration) Option {
	return func(r *Reviewer) error {
		if d < 0 {
			return fmt.Errorf("admission: cache TTL %v < 0", d)
		}
		r.ttl = d
		return nil
	}
}

// withClock is a test hook.
func withClock(now func() time.Time) Option {
	return func(r *Reviewer) error { r.now = now; return nil }
}

// DefaultCacheTTL is how long lookups are cached unless WithCacheTTL says.
const DefaultCacheTTL = time.Minute

// maxCached bounds each cache.
const maxCached = 1 << 14

// New returns a Reviewer.
func New(opts ...Option) (*Reviewer, error) {
	r := &Reviewer{
		log: slog.New(slog.DiscardHandler), ttl: DefaultCacheTTL, now: time.Now,
		sigs: map[string]sigEntry{}, atts: map[string]attEntry{},
		kms: map[string]*signing.Verifier{}, files: map[string]fileEntry{},
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

var _ runtime.Admitter = (*Reviewer)(nil)

// parseRef parses an image reference; loopback registries use plain
// HTTP.
func parseRef(image string) (name.Reference, error) {
	var opts []name.Option
	if registry.IsLoopback(image) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %q: want REPO@sha256:... or REPO:TAG: %w", image, err)
	}
	return ref, nil
}

// forms returns the strings imageReferences are matched against: the
// reference as written and as Kyverno normalizes it (registry, path, tag
// or digest).
func forms(image string, ref name.Reference) []string {
	repo := ref.Context()
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	norm := reg + "/" + repo.RepositoryStr()
	if d, ok := ref.(name.Digest); ok {
		norm += "@" + d.DigestStr()
	} else {
		norm += ":" + ref.Identifier()
	}
	out := []string{image}
	if norm != image {
		out = append(out, norm)
	}
	// Docker Hub's official images: with and without library/.
	if short, ok := strings.CutPrefix(norm, "docker.io/library/"); ok {
		out = append(out, "docker.io/"+short)
	}
	return out
}

// review is the state of one Review.
type review struct {
	r        *Reviewer
	verdict  *Verdict
	resolved map[string]name.Digest
	failed   map[string]error
}

// Review checks every image of pod against p. Verify rules run first and
// pin tags to digests where they mutate (the patches), then validate
// patterns see the patched pod, as Kyverno's mutating webhook runs before
// its validating one; gantry's evidence rule checks each image last. A
// registry that cannot be reached refuses (fails closed).
func (r *Reviewer) Review(ctx context.Context, p Policies, pod PodSpec) (Verdict, []Patch) {
	v := Verdict{Pinned: map[string]string{}}
	rv := &review{r: r, verdict: &v, resolved: map[string]name.Digest{}, failed: map[string]error{}}
	// Work on a copy: the caller's pod is not changed.
	work := PodSpec{
		InitContainers:      append([]Container(nil), pod.InitContainers...),
		Containers:          append([]Container(nil), pod.Containers...),
		EphemeralContainers: append([]Container(nil), pod.EphemeralContainers...),
	}
	var patches []Patch
	for _, pol := range p.Kyverno {
		for ri := range pol.Rules {
			rule := &pol.Rules[ri]
			for _, ne := range rule.NotEnforced {
				v.Warnings = append(v.Warnings, Warning{Policy: pol.String(), Rule: rule.Name, Message: "not enforced on the local runtime: " + ne})
			}
			for ii := range rule.VerifyImages {
				iv := &rule.VerifyImages[ii]
				for _, field := range containerLists {
					list := work.listPtr(field)
					for ci := range *list {
						c := &(*list)[ci]
						pinned, refusal := rv.verify(ctx, pol, rule, iv, c.Image)
						if refusal != nil {
							rv.fail(pol, rule, actionOf(iv.Action, pol.Action), refusal)
							continue
						}
						if pinned != "" && pinned != c.Image {
							patches = append(patches, Patch{Op: "replace", Path: fmt.Sprintf("/%s/%d/image", field, ci), Value: pinned})
							c.Image = pinned
						}
					}
				}
			}
		}
	}
	for _, pol := range p.Kyverno {
		for ri := range pol.Rules {
			rule := &pol.Rules[ri]
			if rule.Validate == nil {
				continue
			}
			if refusal := validatePod(rule.Validate, work); refusal != nil {
				rv.fail(pol, rule, actionOf(rule.Validate.Action, pol.Action), refusal)
			}
		}
	}
	if len(p.Require) > 0 {
		for _, field := range containerLists {
			for _, c := range work.list(field) {
				if refusal := rv.evidence(ctx, p, c.Image); refusal != nil {
					refusal.Policy, refusal.Rule = GantryPolicy, RuleEvidence
					v.Refusals = append(v.Refusals, refusal)
				}
			}
		}
	}
	v.Allowed = len(v.Refusals) == 0
	return v, patches
}

func actionOf(override, policy Action) Action {
	if override != "" {
		return override
	}
	return policy
}

// fail records a failed rule: a refusal when enforced, else a warning. A
// registry that could not be reached refuses whatever the action: an
// audit that could not look proves nothing (fail closed).
func (rv *review) fail(pol *Policy, rule *Rule, action Action, f *Refusal) {
	f.Policy, f.PolicyName, f.Rule, f.Line = pol.File, pol.Name, rule.Name, rule.Line
	if action == Enforce || f.Reason == ReasonUnreachable {
		rv.verdict.Refusals = append(rv.verdict.Refusals, f)
		return
	}
	msg := string(f.Reason)
	if f.Detail != "" {
		msg += ": " + f.Detail
	}
	rv.verdict.Warnings = append(rv.verdict.Warnings, Warning{Policy: pol.String(), Rule: rule.Name, Image: f.Image, Message: "audit: " + msg})
}

// resolve returns the image by digest, asking the registry once per
// review for a tag.
func (rv *review) resolve(ctx context.Context, image string) (name.Digest, *Refusal) {
	if d, ok := rv.resolved[image]; ok {
		return d, nil
	}
	if err, ok := rv.failed[image]; ok {
		return name.Digest{}, unreachable(image, err)
	}
	ref, err := parseRef(image)
	if err != nil {
		return name.Digest{}, &Refusal{Image: image, Reason: ReasonBadReference, Detail: err.Error(), Err: err}
	}
	d, err := signing.Resolve(ctx, ref, rv.r.remoteOpts()...)
	if err != nil {
		rv.failed[image] = err
		return name.Digest{}, unreachable(image, err)
	}
	rv.resolved[image] = d
	rv.verdict.Pinned[image] = d.String()
	return d, nil
}

func unreachable(image string, err error) *Refusal {
	return &Refusal{Image: image, Reason: ReasonUnreachable, Detail: err.Error(), Err: err}
}

func (r *Reviewer) remoteOpts() []remote.Option { return r.remote }

// verify applies one verifyImages entry to image. It returns the image
// to run when the entry mutates it ("" when it does not apply or does not
// mutate), or the failure.
func (rv *review) verify(ctx context.Context, pol *Policy, rule *Rule, iv *ImageVerification, image string) (string, *Refusal) {
	ref, err := parseRef(image)
	if err != nil {
		if matchAny(iv.ImageReferences, image) {
			return "", &Refusal{Image: image, Reason: ReasonBadReference, Detail: err.Error(), Err: err}
		}
		return "", nil
	}
	fs := forms(image, ref)
	applies := false
	for _, f := range fs {
		if matchAny(iv.ImageReferences, f) {
			applies = true
		}
	}
	for _, f := range fs {
		if matchAny(iv.SkipImageReferences, f) {
			applies = false
		}
	}
	if !applies {
		return "", nil
	}
	_, byDigest := ref.(name.Digest)
	if !byDigest && iv.VerifyDigest && !iv.MutateDigest {
		return "", &Refusal{Image: image, Reason: ReasonTagNoDigest,
			Detail: "the rule verifies digests (verifyDigest) and does not rewrite tags (mutateDigest: false): reference the image as REPO@sha256:..."}
	}
	d, refusal := rv.resolve(ctx, image)
	if refusal != nil {
		return "", refusal
	}
	for _, set := range iv.Attestors {
		if f := rv.signatures(ctx, set, iv, d, image); f != nil {
			return "", f
		}
	}
	for i := range iv.Attestations {
		a := &iv.Attestations[i]
		sets := a.Attestors
		if len(sets) == 0 {
			sets = iv.Attestors
		}
		for _, set := range sets {
			if f := rv.attestations(ctx, set, a, d, image); f != nil {
				return "", f
			}
		}
	}
	if !byDigest && iv.MutateDigest {
		return d.String(), nil
	}
	return "", nil
}

// signatures checks that count entries of set signed the digest.
func (rv *review) signatures(ctx context.Context, set AttestorSet, iv *ImageVerification, d name.Digest, image string) *Refusal {
	return rv.quorum(ctx, set, image, "verified", func(e Attestor, v *signing.Verifier) *Refusal {
		verified, err := rv.r.signature(ctx, d, v)
		if err != nil {
			return signatureRefusal(image, err)
		}
		want := mergeAnnotations(iv.Annotations, e.Annotations)
		if !annotated(verified.Signatures, want) {
			return &Refusal{Image: image, Reason: ReasonAnnotations,
				Detail: fmt.Sprintf("no signature by %s carries the annotations %v", v.Ref, want)}
		}
		return nil
	})
}

// quorum checks that count entries of set (all when count is 0) pass
// check, each with its entry's verifier; when too few do, it refuses with
// the most telling failure, saying how many keys did (done: "verified",
// "attested").
func (rv *review) quorum(ctx context.Context, set AttestorSet, image, done string, check func(Attestor, *signing.Verifier) *Refusal) *Refusal {
	need := set.Count
	if need == 0 {
		need = len(set.Entries)
	}
	passed := 0
	var failures []*Refusal
	for _, e := range set.Entries {
		v, f := rv.r.verifier(ctx, e)
		if f != nil {
			f.Image = image
			failures = append(failures, f)
			continue
		}
		if f := check(e, v); f != nil {
			failures = append(failures, f)
			continue
		}
		passed++
	}
	if passed >= need {
		return nil
	}
	f := mostTelling(failures)
	if need > 1 || len(set.Entries) > 1 {
		f.Detail = fmt.Sprintf("%d of %d keys %s, %d needed (line %d): %s", passed, len(set.Entries), done, need, set.Line, f.Detail)
	}
	return f
}

// mostTelling picks the failure that explains most: a registry that
// cannot be reached over a bad signature over a wrong key over none.
func mostTelling(fs []*Refusal) *Refusal {
	for _, reason := range []Reason{ReasonUnreachable, ReasonKeyUnavailable, ReasonBadSignature, ReasonAnnotations, ReasonConditionFalse, ReasonWrongKey} {
		for _, f := range fs {
			if f.Reason == reason {
				return f
			}
		}
	}
	return fs[0]
}

func signatureRefusal(image string, err error) *Refusal {
	reason := ReasonUnreachable
	switch {
	case errors.Is(err, signing.ErrNoSignature):
		reason = ReasonUnsigned
	case errors.Is(err, signing.ErrWrongKey):
		reason = ReasonWrongKey
	case errors.Is(err, signing.ErrTampered), errors.Is(err, signing.ErrOtherDigest), errors.Is(err, signing.ErrTagMoved):
		reason = ReasonBadSignature
	}
	return &Refusal{Image: image, Reason: reason, Detail: err.Error(), Err: err}
}

func mergeAnnotations(a, b map[string]string) map[string]string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// annotated reports whether one of sigs carries every annotation of want.
func annotated(sigs []signing.Signature, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	for _, s := range sigs {
		ok := true
		for k, v := range want {
			if got, found := s.Annotations[k]; !found || fmt.Sprint(got) != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// attestations checks that count entries of set attested a's predicate
// type on the digest with a predicate meeting a's conditions.
func (rv *review) attestations(ctx context.Context, set AttestorSet, a *AttestationCheck, d name.Digest, image string) *Refusal {
	return rv.quorum(ctx, set, image, "attested", func(_ Attestor, v *signing.Verifier) *Refusal {
		return rv.attestedBy(ctx, a, d, v, image)
	})
}

func (rv *review) attestedBy(ctx context.Context, a *AttestationCheck, d name.Digest, v *signing.Verifier, image string) *Refusal {
	atts, cached, err := rv.r.attestationsOf(ctx, d, v, false)
	if err != nil && !errors.Is(err, signing.ErrNoAttestation) {
		return unreachable(image, err)
	}
	f := attested(a, d, v, image, atts)
	if f != nil && cached {
		if atts, _, err = rv.r.attestationsOf(ctx, d, v, true); err != nil && !errors.Is(err, signing.ErrNoAttestation) {
			return unreachable(image, err)
		}
		f = attested(a, d, v, image, atts)
	}
	return f
}

// attested checks a against the verified attestations atts of d by v.
func attested(a *AttestationCheck, d name.Digest, v *signing.Verifier, image string, atts []signing.Attestation) *Refusal {
	var rejected error
	var lastFalse *Refusal
	for _, att := range atts {
		if att.PredicateType != a.PredicateType {
			continue
		}
		if att.Err != nil {
			rejected = att.Err
			continue
		}
		predicate, err := normalizeJSON(att.Statement.Predicate)
		if err != nil {
			rejected = fmt.Errorf("%w: predicate: %v", signing.ErrTampered, err)
			continue
		}
		ok := true
		for _, b := range a.Conditions {
			holds, c, err := b.holds(predicate)
			if !holds {
				ok = false
				detail := fmt.Sprintf("%s attestation: condition %s (line %d) is false", a.PredicateType, c, c.Line)
				if err != nil {
					detail += ": " + err.Error()
				}
				if c.Message != "" {
					detail += ": " + c.Message
				}
				lastFalse = &Refusal{Image: image, Reason: ReasonConditionFalse, Detail: detail, Err: err}
				break
			}
		}
		if ok {
			return nil
		}
	}
	switch {
	case lastFalse != nil:
		return lastFalse
	case rejected != nil:
		f := signatureRefusal(image, rejected)
		if f.Reason == ReasonUnreachable {
			f.Reason = ReasonBadSignature
		}
		f.Detail = fmt.Sprintf("%s attestation: %s", a.PredicateType, f.Detail)
		return f
	}
	return &Refusal{Image: image, Reason: ReasonNoAttestation,
		Detail: fmt.Sprintf("no %s attestation signed by %s on %s", a.PredicateType, v.Ref, d.DigestStr()), Err: signing.ErrNoAttestation}
}

// validatePod checks the pod against the rule's patterns.
func validatePod(val *Validate, pod PodSpec) *Refusal {
	var field, image, pattern string
	index := 0
	for _, p := range val.Patterns {
		ok, f, i, img, pat := p.matches(pod)
		if ok {
			return nil
		}
		if field == "" {
			field, index, image, pattern = f, i, img, pat
		}
	}
	reason := ReasonRegistry
	if strings.Contains(pattern, "@") && image != "" && !strings.Contains(image, "@") {
		reason = ReasonTagNoDigest
	}
	var detail string
	if index < 0 {
		detail = fmt.Sprintf("the pod has no %s, which the pattern requires", field)
	} else {
		detail = fmt.Sprintf("%s[%d] does not match %q", field, index, pattern)
	}
	if val.Message != "" {
		detail += ": " + strings.TrimSpace(val.Message)
	}
	return &Refusal{Image: image, Reason: reason, Detail: detail}
}

// evidence checks gantry's rule on image: signed by the evidence key with
// passing evidence for each required gate.
func (rv *review) evidence(ctx context.Context, p Policies, image string) *Refusal {
	if p.EvidenceKey == nil {
		return &Refusal{Image: image, Reason: ReasonKeyUnavailable, Detail: "evidence is required but no key was given to verify it"}
	}
	d, f := rv.resolve(ctx, image)
	if f != nil {
		return f
	}
	if _, err := rv.r.signature(ctx, d, p.EvidenceKey); err != nil {
		return signatureRefusal(image, err)
	}
	atts, cached, err := rv.r.attestationsOf(ctx, d, p.EvidenceKey, false)
	if err != nil && !errors.Is(err, signing.ErrNoAttestation) {
		return unreachable(image, err)
	}
	_, err = evidence.Check(atts, p.Require, evidence.CheckOptions{})
	if err != nil && cached {
		if atts, _, err = rv.r.attestationsOf(ctx, d, p.EvidenceKey, true); err != nil && !errors.Is(err, signing.ErrNoAttestation) {
			return unreachable(image, err)
		}
		_, err = evidence.Check(atts, p.Require, evidence.CheckOptions{})
	}
	if err != nil {
		reason := ReasonEvidenceMiss
		if errors.Is(err, evidence.ErrFailing) {
			reason = ReasonEvidenceFail
		}
		return &Refusal{Image: image, Reason: reason, Detail: strings.ReplaceAll(err.Error(), "\n", "; "), Err: err}
	}
	return nil
}

// verifier returns the verifier of an attestor, opening a KMS key once.
func (r *Reviewer) verifier(ctx context.Context, e Attestor) (*signing.Verifier, *Refusal) {
	if e.Key != nil {
		return e.Key, nil
	}
	r.mu.Lock()
	v, ok := r.kms[e.KMS]
	r.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := signing.LoadVerifier(ctx, e.KMS)
	if err != nil {
		return nil, &Refusal{Reason: ReasonKeyUnavailable, Detail: err.Error(), Err: err}
	}
	r.mu.Lock()
	r.kms[e.KMS] = v
	r.mu.Unlock()
	return v, nil
}

// signature verifies the digest's signatures with v. Successes are cached
// for the TTL; failures never are (an image signed a moment later must
// pass), nor registry errors.
func (r *Reviewer) signature(ctx context.Context, d name.Digest, v *signing.Verifier) (*signing.Verified, error) {
	key := "sig|" + d.String() + "|" + v.ID
	r.mu.Lock()
	e, ok := r.sigs[key]
	r.mu.Unlock()
	if ok && r.now().Sub(e.at) < r.ttl {
		return e.v, nil
	}
	res, err, _ := r.group.Do(key, func() (any, error) {
		got, err := signing.Verify(ctx, d, v, r.remoteOpts()...)
		if r.ttl > 0 && err == nil {
			r.mu.Lock()
			prune(r.sigs, r.now(), r.ttl, func(e sigEntry) time.Time { return e.at })
			r.sigs[key] = sigEntry{v: got, at: r.now()}
			r.mu.Unlock()
		}
		return got, err
	})
	got, _ := res.(*signing.Verified)
	return got, err
}

// attestationsOf verifies the digest's attestations with v. A list read
// is cached for the TTL (cached says the answer came from there); with
// fresh the cache is not read. Callers that find the cached list lacking
// read it again fresh before refusing: attestations are added over an
// image's life (the approval gate's after staging).
func (r *Reviewer) attestationsOf(ctx context.Context, d name.Digest, v *signing.Verifier, fresh bool) (atts []signing.Attestation, cached bool, err error) {
	key := "att|" + d.String() + "|" + v.ID
	if !fresh {
		r.mu.Lock()
		e, ok := r.atts[key]
		r.mu.Unlock()
		if ok && r.now().Sub(e.at) < r.ttl {
			return e.atts, true, nil
		}
	}
	res, err, _ := r.group.Do(key, func() (any, error) {
		got, err := signing.VerifyAttestations(ctx, d, v, r.remoteOpts()...)
		if r.ttl > 0 && err == nil {
			r.mu.Lock()
			prune(r.atts, r.now(), r.ttl, func(e attEntry) time.Time { return e.at })
			r.atts[key] = attEntry{atts: got, at: r.now()}
			r.mu.Unlock()
		}
		return got, err
	})
	got, _ := res.([]signing.Attestation)
	return got, false, err
}

// prune makes room in a full cache: expired entries go first, then all.
func prune[E any](m map[string]E, now time.Time, ttl time.Duration, at func(E) time.Time) {
	if len(m) < maxCached {
		return
	}
	for k, e := range m {
		if now.Sub(at(e)) >= ttl {
			delete(m, k)
		}
	}
	if len(m) >= maxCached {
		clear(m)
	}
}
