package sbom

import (
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/inventory"
)

// TestGenerateWithoutGoVersion: a source tree whose go.mod has no go
// directive (github.com/google/uuid v1.6.0) gives a module without a Go
// version; the BOM leaves the toolchain out instead of panicking.
func TestGenerateWithoutGoVersion(t *testing.T) {
	inv := &inventory.Inventory{
		Target: ".", Kind: "dir", Name: "uuid",
		Binaries: []inventory.Binary{{Path: "go.mod", Main: inventory.Module{Path: "github.com/google/uuid", Version: "(devel)"}}},
	}
	bom := Generate(inv, Options{Time: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)})
	for _, c := range *bom.Components {
		if c.Name == "stdlib" {
			t.Errorf("got a stdlib component %q, want none without a Go version", c.Version)
		}
	}
}
