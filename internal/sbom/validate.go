package sbom

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaFiles are the official CycloneDX 1.6 JSON schema and the schemas
// it references, by file name under their published $id base.
var schemaFiles = []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"}

const schemaBase = "http://cyclonedx.org/schema/"

// Validator checks BOMs against the CycloneDX 1.6 JSON schema.
type Validator struct{ s *jsonschema.Schema }

// NewValidator compiles the schema from the files in dir (never fetching
// anything): bom-1.6.schema.json, spdx.schema.json, jsf-0.82.schema.json.
// Formats (date-time, iri-reference, ...) are asserted.
func NewValidator(dir string) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range schemaFiles {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("load CycloneDX schema: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("load CycloneDX schema %s: %w", f, err)
		}
		if err := c.AddResource(schemaBase+f, doc); err != nil {
			return nil, fmt.Errorf("load CycloneDX schema %s: %w", f, err)
		}
	}
	s, err := c.Compile(schemaBase + schemaFiles[0])
	if err != nil {
		return nil, fmt.Errorf("compile CycloneDX schema: %w", err)
	}
	return &Validator{s: s}, nil
}

// Validate checks one CycloneDX JSON document.
func (v *Validator) Validate(data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("validate SBOM: %w", err)
	}
	if err := v.s.Validate(doc); err != nil {
		return fmt.Errorf("SBOM does not validate against CycloneDX 1.6: %w", err)
	}
	return nil
}
