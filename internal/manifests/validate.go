package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/findings"
)

// Rules of the findings.
const (
	RuleSyntax       = "yaml-syntax"
	RuleMissingKind  = "missing-kind"
	RuleUnknownKind  = "unknown-kind"
	RuleUnknownField = "unknown-field"
	RuleWrongType    = "wrong-type"
	RuleRequired     = "missing-required"
	RuleEnum         = "enum"
)

// UnknownKinds says what to do with a kind that has no schema.
type UnknownKinds string

// Policies for kinds without a schema.
const (
	RejectUnknown UnknownKinds = "reject"
	SkipUnknown   UnknownKinds = "skip"
)

// Validator checks documents against a registry.
type Validator struct {
	Registry *Registry
	// Unknown is the policy for kinds without a schema (default reject).
	Unknown UnknownKinds
	// SkipKinds are kinds never validated ("Kustomization" is always
	// skipped).
	SkipKinds []string
}

// Doc is one YAML document of a source.
type Doc struct {
	Node *yaml.Node
	// Source names the file or rendering it came from.
	Source string
}

// Stats counts what was validated.
type Stats struct {
	Documents int
	Valid     int
	Skipped   int
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// SplitDocuments parses a multi-document YAML stream. A syntax error
// becomes a finding with its line; the documents before it are returned.
func SplitDocuments(source string, data []byte, r *findings.Report) []Doc {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Doc
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			f := findings.Finding{File: source, Line: 1, Column: 1, Rule: RuleSyntax, Severity: findings.Error, Message: strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				f.Line, _ = strconv.Atoi(m[1])
				f.Message = m[2]
			}
			r.Add(f)
			return docs
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			root := n.Content[0]
			if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
				continue // empty document
			}
			docs = append(docs, Doc{Node: root, Source: source})
		}
	}
}

// field returns the value node of key in mapping m.
func field(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if n := field(m, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// Identify returns a document's kind and "Kind/name" for messages.
func Identify(n *yaml.Node) (GVK, string) {
	g := parseAPIVersion(scalar(n, "apiVersion"), scalar(n, "kind"))
	name := scalar(field(n, "metadata"), "name")
	if name == "" {
		return g, g.Kind
	}
	return g, g.Kind + "/" + name
}

// Validate checks one document and adds its findings to r. It reports
// whether the document was validated (not skipped).
func (v *Validator) Validate(d Doc, r *findings.Report) bool {
	n := d.Node
	add := func(at *yaml.Node, rule, format string, args ...any) {
		f := findings.Finding{File: d.Source, Rule: rule, Severity: findings.Error, Message: fmt.Sprintf(format, args...)}
		if at != nil {
			f.Line, f.Column = at.Line, at.Column
		}
		r.Add(f)
	}
	if n.Kind != yaml.MappingNode {
		add(n, RuleWrongType, "document is a %s, not a Kubernetes object", kindName(n))
		return true
	}
	g, id := Identify(n)
	if g.Kind == "" || g.Version == "" {
		missing := "kind"
		if g.Version == "" {
			missing = "apiVersion"
		}
		add(n, RuleMissingKind, "document has no %s", missing)
		return true
	}
	if g.Kind == "Kustomization" || slices.Contains(v.SkipKinds, g.Kind) {
		return false
	}
	s, ok := v.Registry.Lookup(g)
	if !ok {
		if v.Unknown == SkipUnknown {
			return false
		}
		add(n, RuleUnknownKind, "%s: no schema for kind %s in %s (Kubernetes %s and known CRDs)", id, g.Kind, g.APIVersion(), KubernetesVersion)
		return true
	}
	w := &walker{reg: v.Registry, id: id, add: add}
	if _, isCRD := v.Registry.crds[g]; isCRD {
		// CRD schemas leave metadata open; check it as ObjectMeta.
		if md := field(n, "metadata"); md != nil {
			w.walk(md, &Schema{Ref: "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}, "metadata")
		}
		s = withoutMeta(s)
	}
	w.walk(n, s, "")
	return true
}

func withoutMeta(s *Schema) *Schema {
	c := *s
	c.Properties = map[string]*Schema{}
	for k, p := range s.Properties {
		c.Properties[k] = p
	}
	c.Properties["metadata"] = &Schema{Type: "object", PreserveUnknown: true}
	c.Properties["apiVersion"] = &Schema{Type: "string"}
	c.Properties["kind"] = &Schema{Type: "string"}
	return &c
}

type walker struct {
	reg *Registry
	id  string
	add func(at *yaml.Node, rule, format string, args ...any)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "array"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return "string"
		case "!!int":
			return "integer"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "null"
		}
		return "string"
	}
	return "value"
}

const quantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity"

func (w *walker) walk(n *yaml.Node, s *Schema, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null is the same as absent for the API server
	}
	quantity := s.Ref == "#/definitions/"+quantityDef
	s = w.reg.resolve(s)
	if s == nil {
		return
	}
	where := path
	if where == "" {
		where = "(root)"
	}
	for _, sub := range s.AllOf {
		w.walk(n, sub, path)
	}
	if len(s.AnyOf) > 0 || len(s.OneOf) > 0 {
		if !s.IntOrString && !w.anyMatches(n, append(slices.Clone(s.AnyOf), s.OneOf...), path) {
			w.add(n, RuleWrongType, "%s: %s: value matches none of the allowed schemas", w.id, where)
			return
		}
	}
	typ := s.Type
	if typ == "" && len(s.Properties) > 0 {
		typ = "object"
	}
	switch {
	case s.IntOrString || s.Format == "int-or-string":
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
			w.add(n, RuleWrongType, "%s: %s: expected integer or string, got %s", w.id, where, kindName(n))
		}
		return
	case quantity:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str" && n.Tag != "!!float") {
			w.add(n, RuleWrongType, "%s: %s: expected a quantity (string or number), got %s", w.id, where, kindName(n))
		}
		return
	}
	switch typ {
	case "object":
		if n.Kind != yaml.MappingNode {
			w.add(n, RuleWrongType, "%s: %s: expected object, got %s", w.id, where, kindName(n))
			return
		}
		w.object(n, s, path)
	case "array":
		if n.Kind != yaml.SequenceNode {
			w.add(n, RuleWrongType, "%s: %s: expected array, got %s", w.id, where, kindName(n))
			return
		}
		if s.Items != nil {
			for i, item := range n.Content {
				w.walk(item, s.Items, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case "string", "integer", "number", "boolean":
		want := map[string][]string{"string": {"!!str"}, "integer": {"!!int"}, "number": {"!!int", "!!float"}, "boolean": {"!!bool"}}[typ]
		if n.Kind != yaml.ScalarNode || !slices.Contains(want, n.Tag) {
			w.add(n, RuleWrongType, "%s: %s: expected %s, got %s", w.id, where, typ, kindName(n))
			return
		}
		if len(s.Enum) > 0 && !inEnum(n.Value, s.Enum) {
			var vals []string
			for _, e := range s.Enum {
				vals = append(vals, fmt.Sprint(e))
			}
			w.add(n, RuleEnum, "%s: %s: %q is not one of [%s]", w.id, where, n.Value, strings.Join(vals, ", "))
		}
	}
}

func inEnum(v string, enum []any) bool {
	for _, e := range enum {
		if fmt.Sprint(e) == v {
			return true
		}
	}
	return false
}

func (w *walker) anyMatches(n *yaml.Node, options []*Schema, path string) bool {
	for _, o := range options {
		ok := true
		probe := &walker{reg: w.reg, id: w.id, add: func(*yaml.Node, string, string, ...any) { ok = false }}
		probe.walk(n, o, path)
		if ok {
			return true
		}
	}
	return false
}

func (w *walker) object(n *yaml.Node, s *Schema, path string) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" {
			continue // merge key
		}
		seen[k.Value] = true
		p := join(path, k.Value)
		if ps, ok := s.Properties[k.Value]; ok {
			w.walk(val, ps, p)
			continue
		}
		switch {
		case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			w.walk(val, s.AdditionalProperties.Schema, p)
		case s.AdditionalProperties != nil && s.AdditionalProperties.Allows,
			s.PreserveUnknown, len(s.Properties) == 0 && s.AdditionalProperties == nil:
		default:
			w.add(k, RuleUnknownField, "%s: %s: unknown field %q", w.id, p, k.Value)
		}
	}
	for _, req := range s.Required {
		if !seen[req] {
			where := path
			if where == "" {
				where = "(root)"
			}
			w.add(n, RuleRequired, "%s: %s: missing required field %q", w.id, where, req)
		}
	}
}
