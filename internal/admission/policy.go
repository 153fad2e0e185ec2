package admission

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// ErrUnsupported is wrapped by a PolicyError about a Kyverno feature gantry
// does not enforce and will not silently skip (keyless attestors, a
// transparency log, notary, Kubernetes secrets, ...).
var ErrUnsupported = errors.New("unsupported policy feature")

// PolicyError is a problem in a policy file at file:line:col. Unsupported
// errors match ErrUnsupported with errors.Is.
type PolicyError struct {
	File        string
	Line        int
	Column      int
	Msg         string
	Unsupported bool
}

func (e *PolicyError) Error() string {
	file := e.File
	if file == "" {
		file = "<policy>"
	}
	prefix := ""
	if e.Unsupported {
		prefix = "unsupported: "
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", file, e.Line, e.Column, prefix, e.Msg)
}

// Is makes an unsupported-feature error match ErrUnsupported.
func (e *PolicyError) Is(target error) bool { return e.Unsupported && target == ErrUnsupported }

// Action is what a failed rule does: Enforce refuses, Audit warns and
// admits.
type Action string

// Actions, as Kyverno's validationFailureAction spells them.
const (
	Enforce Action = "Enforce"
	Audit   Action = "Audit"
)

// Policy is the part of a Kyverno ClusterPolicy (or Policy) gantry
// enforces.
type Policy struct {
	// File is the file the policy was read from; Name its metadata.name.
	File string
	Name string
	// Kind is ClusterPolicy or Policy.
	Kind string
	// Action is spec.validationFailureAction (Kyverno's default: Audit).
	Action Action
	Rules  []Rule
}

// String names the policy for messages: FILE (NAME).
func (p *Policy) String() string { return fmt.Sprintf("%s (%s)", p.File, p.Name) }

// Rule is one of spec.rules that applies to pods.
type Rule struct {
	Name string
	Line int
	// Namespaces are those the rule's match names (ignored on the local
	// runtime, which has none; kept for the Kubernetes webhook).
	Namespaces []string
	// Kinds are the kinds the rule's match names (the local runtime
	// applies every rule that names pods or a pod controller; kept for
	// the Kubernetes webhook).
	Kinds        []string
	VerifyImages []ImageVerification
	// Validate is the validate rule's image patterns, nil when the rule
	// has none gantry enforces.
	Validate *Validate
	// NotEnforced says what parts of the rule gantry reads but does not
	// enforce on the local runtime; each becomes a warning of a review.
	NotEnforced []string
}

// ImageVerification is one entry of a rule's verifyImages.
type ImageVerification struct {
	Line                int
	ImageReferences     []string
	SkipImageReferences []string
	Attestors           []AttestorSet
	Attestations        []AttestationCheck
	// Annotations must be in a verified signature's payload.
	Annotations  map[string]string
	MutateDigest bool
	VerifyDigest bool
	Required     bool
	// Action overrides the policy's when the entry sets failureAction.
	Action Action
}

// AttestorSet passes when Count of its entries verify (all of them when
// Count is 0). An entry whose publicKeys holds several PEM keys counts as
// one entry per key, as Kyverno expands it.
type AttestorSet struct {
	Count   int
	Entries []Attestor
	Line    int
}

// Attestor is one key.
type Attestor struct {
	// Key is the verifier of a PEM public key; KMS a KMS URI opened when
	// first needed.
	Key  *signing.Verifier
	KMS  string
	Line int
	// Annotations must be in the signature's payload.
	Annotations map[string]string
}

// AttestationCheck is one of verifyImages[].attestations: an in-toto
// attestation of PredicateType signed by Attestors whose predicate meets
// Conditions.
type AttestationCheck struct {
	PredicateType string
	Attestors     []AttestorSet
	Conditions    []ConditionBlock
	Line          int
}

// Decode reads the Kyverno ClusterPolicy and Policy documents of a file
// (several may be separated by ---). Every problem is reported with
// file:line:col: YAML errors, wrong types, unknown fields, and features
// gantry refuses to enforce partially (errors matching ErrUnsupported).
func Decode(file string, data []byte) ([]*Policy, error) {
	docs, err := documents(file, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: file}
	var out []*Policy
	for _, n := range docs {
		if p := d.policy(n); p != nil {
			out = append(out, p)
		}
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	if len(out) == 0 {
		return nil, &PolicyError{File: file, Line: 1, Column: 1, Msg: "no Kyverno policy in the file"}
	}
	return out, nil
}

// maxDocuments bounds the documents of one file.
const maxDocuments = 1000

func documents(file string, data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			// yamlx locates syntax errors by line and column.
			if _, perr := yamlx.Parse(file, data); perr != nil {
				var ye *yamlx.Error
				if errors.As(perr, &ye) {
					return nil, &PolicyError{File: file, Line: ye.Line, Column: ye.Column, Msg: ye.Msg}
				}
			}
			return nil, &PolicyError{File: file, Line: 1, Column: 1, Msg: err.Error()}
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue
		}
		if size := expanded(&doc, map[*yaml.Node]int{}, 0); size > maxValues {
			return nil, &PolicyError{File: file, Line: doc.Line, Column: doc.Column,
				Msg: fmt.Sprintf("the document expands to more than %d values through its aliases", maxValues)}
		}
		if len(out) >= maxDocuments {
			return nil, &PolicyError{File: file, Line: doc.Line, Column: doc.Column, Msg: fmt.Sprintf("more than %d documents", maxDocuments)}
		}
		out = append(out, doc.Content[0])
	}
}

// maxValues bounds what one document expands to: aliases are followed
// where they are used, so a few lines of anchors can stand for billions of
// values. No policy comes near it.
const maxValues = 1 << 16

// expanded returns how many values n stands for with its aliases
// followed, counting each node once per use (memo holds the counts
// already made; a count past maxValues stops the walk).
func expanded(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n == nil {
		return 0
	}
	if c, ok := memo[n]; ok {
		return c
	}
	if depth > 1000 {
		return maxValues + 1
	}
	memo[n] = maxValues + 1 // a cycle counts as too many
	size := 1
	if n.Kind == yaml.AliasNode {
		size += expanded(n.Alias, memo, depth+1)
	}
	for _, c := range n.Content {
		if size > maxValues {
			break
		}
		size += expanded(c, memo, depth+1)
	}
	memo[n] = size
	return size
}

// decoder walks policy nodes and collects errors.
type decoder struct {
	file string
	errs []error
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	e := &PolicyError{File: d.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) unsupported(n *yaml.Node, format string, args ...any) {
	d.errorf(n, format, args...)
	d.errs[len(d.errs)-1].(*PolicyError).Unsupported = true
}

// field kinds of a mapping.
type fieldKind int

const (
	// read: gantry reads the field.
	read fieldKind = iota
	// ignored: accepted; it has no effect on the local runtime.
	ignored
	// refused: a feature gantry does not enforce; the policy is refused.
	refused
)

// fields returns the values of mapping n by key. Unknown keys are errors,
// refused ones unsupported errors (msg explains them).
func (d *decoder) fields(n *yaml.Node, what string, known map[string]fieldKind, refusedWhy map[string]string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping, got %s", what, kindName(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		kind, ok := known[k.Value]
		switch {
		case !ok:
			d.errorf(k, "%s: unknown field %q", what, k.Value)
		case kind == refused:
			why := refusedWhy[k.Value]
			if why == "" {
				why = "not supported by gantry"
			}
			d.unsupported(k, "%s.%s: %s", what, k.Value, why)
		case kind == read:
			if _, dup := out[k.Value]; dup {
				d.errorf(k, "%s: field %q given twice", what, k.Value)
			}
			out[k.Value] = v
		}
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s: want a string, got %s", what, kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *yaml.Node, what string, def bool) bool {
	if n == nil {
		return def
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, "%s: want true or false, got %s", what, kindName(n))
		return def
	}
	return n.Value == "true"
}

func (d *decoder) integer(n *yaml.Node, what string) int {
	if n == nil {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v < 0 {
		d.errorf(n, "%s: want a whole number >= 0, got %s", what, kindName(n))
		return 0
	}
	return v
}

func (d *decoder) list(n *yaml.Node, what string) []*yaml.Node {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list, got %s", what, kindName(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

func (d *decoder) strings(n *yaml.Node, what string) []string {
	var out []string
	for i, c := range d.list(n, what) {
		out = append(out, d.str(c, fmt.Sprintf("%s[%d]", what, i)))
	}
	return out
}

func (d *decoder) stringMap(n *yaml.Node, what string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping, got %s", what, kindName(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = d.str(deref(n.Content[i+1]), what+"."+n.Content[i].Value)
	}
	return out
}

func (d *decoder) action(n *yaml.Node, what string, def Action) Action {
	if n == nil {
		return def
	}
	switch s := d.str(n, what); strings.ToLower(s) {
	case "enforce":
		return Enforce
	case "audit":
		return Audit
	default:
		d.errorf(n, "%s: %q is not Enforce or Audit", what, s)
		return def
	}
}

func (d *decoder) policy(n *yaml.Node) *Policy {
	f := d.fields(n, "policy", map[string]fieldKind{
		"apiVersion": read, "kind": read, "metadata": read, "spec": read, "status": ignored,
	}, nil)
	if f == nil {
		return nil
	}
	api, kind := d.str(f["apiVersion"], "apiVersion"), d.str(f["kind"], "kind")
	if !strings.HasPrefix(api, "kyverno.io/") {
		d.errorf(n, "apiVersion %q: want kyverno.io/v1 (a Kyverno policy)", api)
		return nil
	}
	if kind != "ClusterPolicy" && kind != "Policy" {
		d.errorf(n, "kind %q: want ClusterPolicy or Policy", kind)
		return nil
	}
	p := &Policy{File: d.file, Kind: kind, Action: Audit}
	if md := f["metadata"]; md != nil {
		if md.Kind != yaml.MappingNode {
			d.errorf(md, "metadata: want a mapping, got %s", kindName(md))
		} else {
			for i := 0; i+1 < len(md.Content); i += 2 {
				if md.Content[i].Value == "name" {
					p.Name = d.str(deref(md.Content[i+1]), "metadata.name")
				}
			}
		}
	}
	if p.Name == "" {
		d.errorf(n, "metadata.name: missing")
	}
	spec := f["spec"]
	if spec == nil {
		d.errorf(n, "spec: missing")
		return nil
	}
	s := d.fields(spec, "spec", map[string]fieldKind{
		"rules": read, "validationFailureAction": read, "applyRules": read,
		"validationFailureActionOverrides": ignored, "background": ignored, "admission": ignored,
		"failurePolicy": ignored, "webhookTimeoutSeconds": ignored, "mutateExistingOnPolicyUpdate": ignored,
		"generateExisting": ignored, "generateExistingOnPolicyUpdate": ignored, "schemaValidation": ignored,
		"useServerSideApply": ignored, "webhookConfiguration": ignored, "emitWarning": ignored,
	}, nil)
	if s == nil {
		return nil
	}
	p.Action = d.action(s["validationFailureAction"], "spec.validationFailureAction", Audit)
	if a := s["applyRules"]; a != nil && d.str(a, "spec.applyRules") != "All" {
		d.unsupported(a, "spec.applyRules: %q: gantry applies every rule (All)", a.Value)
	}
	rules := d.list(s["rules"], "spec.rules")
	if len(rules) == 0 && s["rules"] != nil {
		d.errorf(s["rules"], "spec.rules: empty")
	}
	for i, rn := range rules {
		if r, applies := d.rule(rn, fmt.Sprintf("spec.rules[%d]", i)); applies {
			p.Rules = append(p.Rules, r)
		}
	}
	return p
}

// podKinds are the kinds whose objects hold a pod spec: Pod and the pod
// controllers Kyverno autogenerates rules for.
var podKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Rollout"}

// rule decodes one rule and reports whether it applies to pods.
func (d *decoder) rule(n *yaml.Node, what string) (Rule, bool) {
	f := d.fields(n, what, map[string]fieldKind{
		"name": read, "match": read, "exclude": read, "context": read, "preconditions": read,
		"celPreconditions": read, "validate": read, "mutate": read, "generate": read,
		"verifyImages": read, "imageExtractors": read, "skipBackgroundRequests": ignored,
		"reportProperties": ignored,
	}, nil)
	if f == nil {
		return Rule{}, false
	}
	r := Rule{Name: d.str(f["name"], what+".name"), Line: n.Line}
	if r.Name == "" {
		d.errorf(n, "%s.name: missing", what)
	} else {
		what = fmt.Sprintf("rule %s", r.Name)
	}
	m := f["match"]
	if m == nil {
		d.errorf(n, "%s.match: missing", what)
		return r, false
	}
	applies, namespaces, kinds := d.match(m, what+".match")
	r.Namespaces, r.Kinds = namespaces, kinds
	if f["exclude"] != nil {
		r.NotEnforced = append(r.NotEnforced, "exclude (the rule applies to every image)")
	}
	for _, k := range []string{"preconditions", "celPreconditions"} {
		if f[k] != nil {
			r.NotEnforced = append(r.NotEnforced, k+" (the rule applies as if they held)")
		}
	}
	if c := f["context"]; c != nil && f["verifyImages"] != nil {
		d.unsupported(c, "%s.context: variables from a context are not available to verifyImages on the local runtime", what)
	}
	if ie := f["imageExtractors"]; ie != nil {
		d.unsupported(ie, "%s.imageExtractors: custom image locations", what)
	}
	for i, vn := range d.list(f["verifyImages"], what+".verifyImages") {
		if iv, ok := d.imageVerification(vn, fmt.Sprintf("%s.verifyImages[%d]", what, i)); ok {
			r.VerifyImages = append(r.VerifyImages, iv)
		}
	}
	if v := f["validate"]; v != nil {
		r.Validate = d.validate(v, what+".validate", &r)
	}
	if f["mutate"] != nil {
		r.NotEnforced = append(r.NotEnforced, "mutate")
	}
	if f["generate"] != nil {
		r.NotEnforced = append(r.NotEnforced, "generate")
	}
	return r, applies
}

// match reports whether a rule's match selects pods (its kinds name Pod
// or a pod controller) and the namespaces it names. Names, selectors and
// subjects cannot be evaluated for an image alone: the rule applies as if
// they matched.
func (d *decoder) match(n *yaml.Node, what string) (applies bool, namespaces, allKinds []string) {
	filterKeys := map[string]fieldKind{
		"resources": read, "subjects": ignored, "roles": ignored, "clusterRoles": ignored,
	}
	f := d.fields(n, what, map[string]fieldKind{
		"any": read, "all": read, "resources": read, "subjects": ignored, "roles": ignored, "clusterRoles": ignored,
	}, nil)
	if f == nil {
		return false, nil, nil
	}
	filter := func(fn *yaml.Node, w string) bool {
		ff := d.fields(fn, w, filterKeys, nil)
		if ff == nil || ff["resources"] == nil {
			return true
		}
		rf := d.fields(ff["resources"], w+".resources", map[string]fieldKind{
			"kinds": read, "namespaces": read, "operations": read, "names": ignored, "name": ignored,
			"annotations": ignored, "selector": ignored, "namespaceSelector": ignored,
		}, nil)
		if rf == nil {
			return false
		}
		namespaces = append(namespaces, d.strings(rf["namespaces"], w+".resources.namespaces")...)
		if ops := d.strings(rf["operations"], w+".resources.operations"); len(ops) > 0 && !slices.Contains(ops, "CREATE") {
			return false
		}
		kinds := d.strings(rf["kinds"], w+".resources.kinds")
		allKinds = append(allKinds, kinds...)
		if len(kinds) == 0 {
			return true
		}
		for _, k := range kinds {
			if kindSelectsPods(k) {
				return true
			}
		}
		return false
	}
	if rn := f["resources"]; rn != nil {
		applies = filter(&yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "resources"}, rn}}, what)
		return applies, namespaces, allKinds
	}
	if an := f["any"]; an != nil {
		for i, fn := range d.list(an, what+".any") {
			if filter(fn, fmt.Sprintf("%s.any[%d]", what, i)) {
				applies = true
			}
		}
	}
	if al := f["all"]; al != nil {
		all := true
		for i, fn := range d.list(al, what+".all") {
			if !filter(fn, fmt.Sprintf("%s.all[%d]", what, i)) {
				all = false
			}
		}
		applies = applies || all
	}
	return applies, namespaces, allKinds
}

// kindSelectsPods reports whether a match kind ("Pod", "v1/Pod",
// "apps/v1/Deployment", "*") names pods or a pod controller.
func kindSelectsPods(k string) bool {
	if sub := strings.Split(k, "/"); len(sub) > 1 && sub[len(sub)-1] != "" && strings.ToLower(sub[len(sub)-1]) == sub[len(sub)-1] && sub[len(sub)-1] != "*" {
		// Pod/ephemeralcontainers and other subresources.
		k = strings.Join(sub[:len(sub)-1], "/")
	}
	if i := strings.LastIndex(k, "/"); i >= 0 {
		k = k[i+1:]
	}
	for _, pk := range podKinds {
		if Match(k, pk) {
			return true
		}
	}
	return false
}

func (d *decoder) imageVerification(n *yaml.Node, what string) (ImageVerification, bool) {
	why := map[string]string{
		"image":                "the deprecated image/key form: use imageReferences and attestors",
		"key":                  "the deprecated image/key form: use imageReferences and attestors",
		"roots":                "keyless verification needs a certificate authority and transparency log",
		"subject":              "keyless verification needs a certificate authority and transparency log",
		"issuer":               "keyless verification needs a certificate authority and transparency log",
		"additionalExtensions": "keyless verification needs a certificate authority and transparency log",
		"repository":           "signatures stored in another repository",
		"validate":             "a validate check over the image's verified data",
	}
	f := d.fields(n, what, map[string]fieldKind{
		"imageReferences": read, "skipImageReferences": read, "attestors": read, "attestations": read,
		"annotations": read, "type": read, "failureAction": read, "validationFailureAction": read,
		"mutateDigest": read, "verifyDigest": read,
		"required": read, "cosignOCI11": read, "useCache": ignored, "imageRegistryCredentials": ignored,
		"image": refused, "key": refused, "roots": refused, "subject": refused, "issuer": refused,
		"additionalExtensions": refused, "repository": refused, "validate": refused,
	}, why)
	if f == nil {
		return ImageVerification{}, false
	}
	iv := ImageVerification{
		Line:                n.Line,
		ImageReferences:     d.strings(f["imageReferences"], what+".imageReferences"),
		SkipImageReferences: d.strings(f["skipImageReferences"], what+".skipImageReferences"),
		Annotations:         d.stringMap(f["annotations"], what+".annotations"),
		MutateDigest:        d.boolean(f["mutateDigest"], what+".mutateDigest", true),
		VerifyDigest:        d.boolean(f["verifyDigest"], what+".verifyDigest", true),
		Required:            d.boolean(f["required"], what+".required", true),
	}
	// validationFailureAction is the field's older name.
	for _, k := range []string{"validationFailureAction", "failureAction"} {
		if f[k] != nil {
			iv.Action = d.action(f[k], what+"."+k, "")
		}
	}
	if len(iv.ImageReferences) == 0 {
		d.errorf(n, "%s.imageReferences: missing (which images does the rule verify?)", what)
	}
	if t := f["type"]; t != nil {
		if s := d.str(t, what+".type"); s != "Cosign" {
			d.unsupported(t, "%s.type: %s verification (gantry verifies cosign signatures)", what, s)
		}
	}
	if c := f["cosignOCI11"]; d.boolean(c, what+".cosignOCI11", false) {
		d.unsupported(c, "%s.cosignOCI11: signatures as OCI 1.1 referrers (gantry reads cosign's tag layout)", what)
	}
	for i, an := range d.list(f["attestors"], what+".attestors") {
		iv.Attestors = append(iv.Attestors, d.attestorSet(an, fmt.Sprintf("%s.attestors[%d]", what, i)))
	}
	for i, an := range d.list(f["attestations"], what+".attestations") {
		iv.Attestations = append(iv.Attestations, d.attestation(an, fmt.Sprintf("%s.attestations[%d]", what, i)))
	}
	if len(iv.Attestors) == 0 && len(iv.Attestations) == 0 {
		d.errorf(n, "%s: no attestors and no attestations: nothing to verify", what)
	}
	for i, a := range iv.Attestations {
		if len(a.Attestors) == 0 && len(iv.Attestors) == 0 {
			// Kyverno then checks the attestation keyless.
			d.unsupported(n, "%s.attestations[%d]: no attestors here or in the entry, so no key to verify the attestation with (keyless verification needs a certificate authority and a transparency log)", what, i)
		}
	}
	return iv, true
}

func (d *decoder) attestorSet(n *yaml.Node, what string) AttestorSet {
	f := d.fields(n, what, map[string]fieldKind{"count": read, "entries": read}, nil)
	set := AttestorSet{Line: n.Line}
	if f == nil {
		return set
	}
	set.Count = d.integer(f["count"], what+".count")
	for i, en := range d.list(f["entries"], what+".entries") {
		set.Entries = append(set.Entries, d.attestor(en, fmt.Sprintf("%s.entries[%d]", what, i))...)
	}
	if len(set.Entries) == 0 {
		d.errorf(n, "%s.entries: no attestor", what)
	}
	if set.Count > len(set.Entries) && len(set.Entries) > 0 {
		d.errorf(f["count"], "%s.count: %d, but only %d keys are given", what, set.Count, len(set.Entries))
	}
	return set
}

// attestor returns the attestors of one entry: one per key.
func (d *decoder) attestor(n *yaml.Node, what string) []Attestor {
	const keyless = "keyless verification needs a certificate authority and a transparency log, which the local runtime does not have"
	f := d.fields(n, what, map[string]fieldKind{
		"keys": read, "annotations": read, "keyless": refused, "certificates": refused,
		"attestor": refused, "repository": refused,
	}, map[string]string{
		"keyless":      keyless,
		"certificates": "certificate attestors",
		"attestor":     "nested attestor sets",
		"repository":   "signatures stored in another repository",
	})
	if f == nil {
		return nil
	}
	ann := d.stringMap(f["annotations"], what+".annotations")
	kn := f["keys"]
	if kn == nil {
		if len(d.errs) == 0 || !slices.ContainsFunc(d.errs, func(e error) bool { return errors.Is(e, ErrUnsupported) }) {
			d.errorf(n, "%s: no keys", what)
		}
		return nil
	}
	what += ".keys"
	k := d.fields(kn, what, map[string]fieldKind{
		"publicKeys": read, "kms": read, "signatureAlgorithm": read, "rekor": read, "ctlog": read,
		"secret": refused,
	}, map[string]string{"secret": "keys read from a Kubernetes secret (give publicKeys)"})
	if k == nil {
		return nil
	}
	if sa := k["signatureAlgorithm"]; sa != nil {
		if s := d.str(sa, what+".signatureAlgorithm"); s != "sha256" {
			d.unsupported(sa, "%s.signatureAlgorithm: %q (gantry verifies sha256 signatures, cosign's default)", what, s)
		}
	}
	d.tlog(k["rekor"], kn, what)
	if c := k["ctlog"]; c != nil {
		cf := d.fields(c, what+".ctlog", map[string]fieldKind{"ignoreSCT": read, "pubkey": ignored, "tsaCertChain": ignored}, nil)
		if cf != nil && !d.boolean(cf["ignoreSCT"], what+".ctlog.ignoreSCT", false) {
			// SCTs belong to certificates, which key attestors do not have;
			// a policy that asks for them expects something gantry cannot
			// check.
			d.unsupported(c, "%s.ctlog: certificate timestamps cannot be checked on the local runtime (set ignoreSCT: true)", what)
		}
	}
	pk, kms := k["publicKeys"], k["kms"]
	switch {
	case pk != nil && kms != nil:
		d.errorf(kn, "%s: publicKeys and kms both given; give one", what)
	case kms != nil:
		ref := d.str(kms, what+".kms")
		if !signing.IsKMS(ref) {
			d.errorf(kms, "%s.kms: %q is not a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)", what, ref)
			return nil
		}
		return []Attestor{{KMS: ref, Line: kms.Line, Annotations: ann}}
	case pk != nil:
		text := d.str(pk, what+".publicKeys")
		if strings.HasPrefix(strings.TrimSpace(text), "k8s://") {
			d.unsupported(pk, "%s.publicKeys: %q: keys read from a Kubernetes secret", what, strings.TrimSpace(text))
			return nil
		}
		var out []Attestor
		for i, block := range splitPEM(text) {
			v, err := signing.ParseVerifier(fmt.Sprintf("%s:%d (key %d)", d.file, pk.Line, i+1), block)
			if err != nil {
				d.errorf(pk, "%s.publicKeys: key %d: %v", what, i+1, err)
				continue
			}
			out = append(out, Attestor{Key: v, Line: pk.Line, Annotations: ann})
		}
		if len(out) == 0 && !slices.ContainsFunc(d.errs, func(e error) bool { var pe *PolicyError; return errors.As(e, &pe) && pe.Line == pk.Line }) {
			d.errorf(pk, "%s.publicKeys: no PEM public key", what)
		}
		return out
	default:
		d.errorf(kn, "%s: no publicKeys", what)
	}
	return nil
}

// tlog refuses a keys attestor that does not ignore the transparency
// log: the local runtime has none to check, and skipping the check
// silently would admit what Kyverno refuses.
func (d *decoder) tlog(rekor, keys *yaml.Node, what string) {
	if rekor == nil {
		d.unsupported(keys, "%s: the signature's transparency log entry is required unless rekor.ignoreTlog is true; the local runtime has no transparency log (add rekor: {ignoreTlog: true})", what)
		return
	}
	f := d.fields(rekor, what+".rekor", map[string]fieldKind{"ignoreTlog": read, "url": ignored, "pubkey": ignored}, nil)
	if f != nil && !d.boolean(f["ignoreTlog"], what+".rekor.ignoreTlog", false) {
		d.unsupported(rekor, "%s.rekor: a transparency log entry cannot be checked on the local runtime (set ignoreTlog: true)", what)
	}
}

// splitPEM splits text holding several PEM blocks, as Kyverno allows in
// publicKeys.
func splitPEM(text string) [][]byte {
	const end = "-----END"
	var out [][]byte
	rest := strings.TrimSpace(text)
	for rest != "" {
		i := strings.Index(rest, end)
		if i < 0 {
			out = append(out, []byte(rest))
			break
		}
		j := strings.Index(rest[i+len(end):], "-----")
		if j < 0 {
			out = append(out, []byte(rest))
			break
		}
		cut := i + len(end) + j + len("-----")
		out = append(out, []byte(rest[:cut]))
		rest = strings.TrimSpace(rest[cut:])
	}
	return out
}

func (d *decoder) attestation(n *yaml.Node, what string) AttestationCheck {
	f := d.fields(n, what, map[string]fieldKind{
		"type": read, "predicateType": read, "name": ignored, "attestors": read, "conditions": read,
	}, nil)
	a := AttestationCheck{Line: n.Line}
	if f == nil {
		return a
	}
	a.PredicateType = d.str(f["type"], what+".type")
	if pt := d.str(f["predicateType"], what+".predicateType"); pt != "" {
		if a.PredicateType != "" && a.PredicateType != pt {
			d.errorf(f["predicateType"], "%s: type %q and predicateType %q differ", what, a.PredicateType, pt)
		}
		a.PredicateType = pt
	}
	if a.PredicateType == "" {
		d.errorf(n, "%s.type: missing (the predicate type to verify)", what)
	}
	for i, an := range d.list(f["attestors"], what+".attestors") {
		a.Attestors = append(a.Attestors, d.attestorSet(an, fmt.Sprintf("%s.attestors[%d]", what, i)))
	}
	for i, cn := range d.list(f["conditions"], what+".conditions") {
		a.Conditions = append(a.Conditions, d.conditionBlock(cn, fmt.Sprintf("%s.conditions[%d]", what, i)))
	}
	return a
}
