// Package docs embeds the documents the gantry binary serves.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of gantry serve's HTTP API
// (openapi.yaml), served at GET /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
