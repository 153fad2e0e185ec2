// Package schema publishes the JSON Schema of the pipeline file for editors
// (point yaml-language-server at schema/pipeline.schema.json).
package schema

import _ "embed"

// Pipeline is the JSON Schema of .gantry/pipeline.yaml.
//
//go:embed pipeline.schema.json
var Pipeline []byte
