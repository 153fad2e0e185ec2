// Package provenance writes SLSA provenance v1 as an in-toto Statement v1
// (https://slsa.dev/spec/v1.0/provenance, https://in-toto.io/Statement/v1).
package provenance

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Type URIs.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names gantry's image build; its parameters are described
	// in docs/steps/image-build.md.
	BuildType = "https://github.com/gantry-ci/gantry/blob/main/docs/steps/image-build.md#provenance"
	// MediaType of a statement stored as an OCI artifact.
	MediaType = "application/vnd.in-toto+json"
)

// Statement is an in-toto Statement v1 with an SLSA provenance predicate.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     Provenance           `json:"predicate"`
}

// Provenance is the SLSA provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built and from what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   map[string]any       `json:"externalParameters"`
	InternalParameters   map[string]any       `json:"internalParameters,omitempty"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// ResourceDescriptor is an in-toto ResourceDescriptor.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// RunDetails says who built it and when.
type RunDetails struct {
	Builder  Builder  `json:"builder"`
	Metadata Metadata `json:"metadata"`
}

// Builder identifies the build platform.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata of one build invocation.
type Metadata struct {
	InvocationID string     `json:"invocationId,omitempty"`
	StartedOn    *time.Time `json:"startedOn,omitempty"`
	FinishedOn   *time.Time `json:"finishedOn,omitempty"`
}

// Module is a Go module dependency.
type Module struct {
	Path, Version, Sum string
}

// Input is what a build knows about itself.
type Input struct {
	// Subjects are name → "sha256:<hex>" digests (the index and each
	// platform's manifest).
	Subjects []Subject
	// SourceURI is where the source lives (git remote or a path), SourceCommit
	// the commit built.
	SourceURI, SourceCommit string
	Modules                 []Module
	GoVersion               string
	External, Internal      map[string]any
	BuilderID               string
	BuilderVersion          string
	InvocationID            string
	Started, Finished       time.Time
}

// Subject is a named artifact and its digest ("sha256:<hex>").
type Subject struct{ Name, Digest string }

// New builds the statement.
func New(in Input) (*Statement, error) {
	st := &Statement{Type: StatementType, PredicateType: PredicateType}
	for _, s := range in.Subjects {
		alg, hexd, ok := strings.Cut(s.Digest, ":")
		if !ok {
			return nil, fmt.Errorf("provenance: subject %s: digest %q is not alg:hex", s.Name, s.Digest)
		}
		st.Subject = append(st.Subject, ResourceDescriptor{Name: s.Name, Digest: map[string]string{alg: hexd}})
	}
	if len(st.Subject) == 0 {
		return nil, fmt.Errorf("provenance: no subject")
	}
	var deps []ResourceDescriptor
	if in.SourceCommit != "" {
		uri := in.SourceURI
		if !strings.HasPrefix(uri, "git+") {
			uri = "git+" + uri
		}
		deps = append(deps, ResourceDescriptor{URI: uri + "@" + in.SourceCommit, Digest: map[string]string{"gitCommit": in.SourceCommit}})
	}
	if in.GoVersion != "" {
		deps = append(deps, ResourceDescriptor{Name: "go", URI: "pkg:golang/toolchain@" + in.GoVersion})
	}
	for _, m := range in.Modules {
		rd := ResourceDescriptor{Name: m.Path, URI: "pkg:golang/" + m.Path + "@" + m.Version}
		if h, ok := strings.CutPrefix(m.Sum, "h1:"); ok {
			// h1 is the base64 SHA-256 of the module's file list (dirhash
			// Hash1); kept as the go.sum line says it, and in hex.
			if raw, err := base64.StdEncoding.DecodeString(h); err == nil {
				rd.Digest = map[string]string{"dirhash1": hex.EncodeToString(raw)}
			}
			rd.Annotations = map[string]any{"go.sum": m.Sum}
		}
		deps = append(deps, rd)
	}
	st.Predicate = Provenance{
		BuildDefinition: BuildDefinition{
			BuildType: BuildType, ExternalParameters: in.External, InternalParameters: in.Internal,
			ResolvedDependencies: deps,
		},
		RunDetails: RunDetails{
			Builder:  Builder{ID: in.BuilderID},
			Metadata: Metadata{InvocationID: in.InvocationID},
		},
	}
	if in.BuilderVersion != "" {
		st.Predicate.RunDetails.Builder.Version = map[string]string{"gantry": in.BuilderVersion}
	}
	if st.Predicate.BuildDefinition.ExternalParameters == nil {
		st.Predicate.BuildDefinition.ExternalParameters = map[string]any{}
	}
	if !in.Started.IsZero() {
		t := in.Started.UTC()
		st.Predicate.RunDetails.Metadata.StartedOn = &t
	}
	if !in.Finished.IsZero() {
		t := in.Finished.UTC()
		st.Predicate.RunDetails.Metadata.FinishedOn = &t
	}
	return st, nil
}

// Marshal returns the statement as JSON.
func (s *Statement) Marshal() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// Parse reads a statement and checks its types.
func Parse(b []byte) (*Statement, error) {
	var s Statement
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse provenance: %w", err)
	}
	if s.Type != StatementType {
		return nil, fmt.Errorf("parse provenance: _type %q, want %q", s.Type, StatementType)
	}
	if s.PredicateType != PredicateType {
		return nil, fmt.Errorf("parse provenance: predicateType %q, want %q", s.PredicateType, PredicateType)
	}
	return &s, nil
}
