// Package manifests validates Kubernetes manifests offline, as kubeconform
// does: every document is checked against the OpenAPI schema of its kind
// for Kubernetes v1.31.4 (embedded, never downloaded) or against the
// openAPIV3Schema of a CustomResourceDefinition (bundled ones for Argo
// Rollouts and Kyverno, and any CRD found among the inputs). Unknown
// fields, wrong types, missing required fields, values outside an enum and
// unknown kinds become findings naming the document, the field path and
// the line and column.
package manifests

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"
)

// KubernetesVersion is the version of the embedded schemas.
const KubernetesVersion = "v1.31.4"

//go:embed schemas/kubernetes-v1.31.4.json.gz
var k8sDefinitions []byte

//go:embed crds/*.yaml
var bundledCRDs embed.FS

// Schema is the subset of OpenAPI v2 / v3 (structural CRD schemas) that
// validation uses.
type Schema struct {
	Type                 string             `json:"type,omitempty"`
	Ref                  string             `json:"$ref,omitempty"`
	Format               string             `json:"format,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	AdditionalProperties *SchemaOrBool      `json:"additionalProperties,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`
	OneOf                []*Schema          `json:"oneOf,omitempty"`
	AllOf                []*Schema          `json:"allOf,omitempty"`
	PreserveUnknown      bool               `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
	IntOrString          bool               `json:"x-kubernetes-int-or-string,omitempty"`
	EmbeddedResource     bool               `json:"x-kubernetes-embedded-resource,omitempty"`
	GVK                  []GVK              `json:"x-kubernetes-group-version-kind,omitempty"`
	// KubernetesRef, gantry's own extension in its bundled CRDs, points at
	// a Kubernetes definition (such as io.k8s.api.core.v1.PodTemplateSpec)
	// so the compact CRDs validate embedded pod templates fully.
	KubernetesRef string `json:"x-gantry-kubernetes-ref,omitempty"`
}

// SchemaOrBool is additionalProperties: a schema or true/false.
type SchemaOrBool struct {
	Allows bool
	Schema *Schema
}

// UnmarshalJSON reads a bool or a schema.
func (s *SchemaOrBool) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "true" || string(b) == "false" {
		s.Allows = string(b) == "true"
		return nil
	}
	s.Allows = true
	s.Schema = &Schema{}
	return json.Unmarshal(b, s.Schema)
}

// GVK is a group, version and kind.
type GVK struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// APIVersion renders group/version ("v1" for the core group).
func (g GVK) APIVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

func parseAPIVersion(apiVersion, kind string) GVK {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return GVK{Version: apiVersion, Kind: kind}
	}
	return GVK{Group: group, Version: version, Kind: kind}
}

// Registry maps kinds to schemas.
type Registry struct {
	defs  map[string]*Schema
	kinds map[GVK]*Schema
	// crds records which kinds come from CRDs (their schemas do not
	// describe metadata, which is checked against ObjectMeta).
	crds map[GVK]string
}

// NewRegistry loads the embedded Kubernetes schemas and the bundled CRDs
// (Argo Rollouts Rollout and AnalysisTemplate, Kyverno ClusterPolicy).
func NewRegistry() (*Registry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(k8sDefinitions))
	if err != nil {
		return nil, fmt.Errorf("read embedded Kubernetes schemas: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("read embedded Kubernetes schemas: %w", err)
	}
	var doc struct {
		Definitions map[string]*Schema `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode embedded Kubernetes schemas: %w", err)
	}
	r := &Registry{defs: doc.Definitions, kinds: map[GVK]*Schema{}, crds: map[GVK]string{}}
	for _, s := range doc.Definitions {
		for _, g := range s.GVK {
			if _, dup := r.kinds[g]; !dup {
				r.kinds[g] = s
			}
		}
	}
	files, err := fs.Glob(bundledCRDs, "crds/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := bundledCRDs.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := r.AddCRD(f, data); err != nil {
			return nil, err
		}
	}
	// Kinds whose spec is the same as a bundled one's.
	for alias, of := range map[GVK]GVK{
		{"kyverno.io", "v1", "Policy"}:                         {"kyverno.io", "v1", "ClusterPolicy"},
		{"argoproj.io", "v1alpha1", "ClusterAnalysisTemplate"}: {"argoproj.io", "v1alpha1", "AnalysisTemplate"},
	} {
		r.kinds[alias], r.crds[alias] = r.kinds[of], r.crds[of]
	}
	return r, nil
}

type crdDoc struct {
	Kind string `json:"kind"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name   string `json:"name"`
			Schema *struct {
				OpenAPIV3Schema *Schema `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

// AddCRD registers the kinds of a CustomResourceDefinition (YAML or
// JSON), one per version with a schema.
func (r *Registry) AddCRD(source string, data []byte) error {
	j, err := sigsyaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("read CRD %s: %w", source, err)
	}
	var crd crdDoc
	if err := json.Unmarshal(j, &crd); err != nil {
		return fmt.Errorf("read CRD %s: %w", source, err)
	}
	if crd.Kind != "CustomResourceDefinition" || crd.Spec.Names.Kind == "" {
		return fmt.Errorf("read CRD %s: not a CustomResourceDefinition with spec.names.kind", source)
	}
	for _, v := range crd.Spec.Versions {
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		g := GVK{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
		r.kinds[g] = v.Schema.OpenAPIV3Schema
		r.crds[g] = source
	}
	return nil
}

// Lookup returns the schema for a kind.
func (r *Registry) Lookup(g GVK) (*Schema, bool) {
	s, ok := r.kinds[g]
	return s, ok
}

func (r *Registry) resolve(s *Schema) *Schema {
	for i := 0; s != nil && i < 32; i++ {
		switch {
		case s.Ref != "":
			s = r.defs[strings.TrimPrefix(s.Ref, "#/definitions/")]
		case s.KubernetesRef != "":
			s = r.defs[s.KubernetesRef]
		default:
			return s
		}
	}
	return s
}
