package sbom

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/proc"
)

// lookTool finds a go-installed tool on PATH or in ~/go/bin.
func lookTool(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, "go", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed (%s)", name, install)
	}
	return p
}

func goPURLs(t *testing.T, data []byte) []string {
	t.Helper()
	var bom struct {
		Components []struct {
			PURL string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range bom.Components {
		if strings.HasPrefix(c.PURL, "pkg:golang/") && strings.Contains(c.PURL, "@") && !strings.HasPrefix(c.PURL, "pkg:golang/stdlib@") &&
			!strings.Contains(c.PURL, "devel") {
			out = append(out, c.PURL)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestSameModulesAsSyft: the real syft lists the same Go module purls in
// the same binary (main module without version and stdlib aside).
func TestSameModulesAsSyft(t *testing.T) {
	syft := lookTool(t, "syft", "go install github.com/anchore/syft/cmd/syft@v1.x")
	bin := vulnappBinary(t)
	cmd := proc.Command(t.Context(), syft, "scan", "file:"+bin, "-o", "cyclonedx-json")
	cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("syft: %v", err)
	}
	want := goPURLs(t, out)
	inv, err := inventory.FromBinaryFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(Generate(inv, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	got := goPURLs(t, data)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("gantry Go modules %v, syft %v", got, want)
	}
}
