package sbom

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/testenv"
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
		testenv.Missing(t, name, install)
	}
	return p
}

func goPURLs(t *testing.T, data []byte) []string {
	t.Helper()
	type component struct {
		PURL string `json:"purl"`
	}
	var bom struct {
		Metadata struct {
			Component *component `json:"component"`
		} `json:"metadata"`
		Components []component `json:"components"`
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatal(err)
	}
	all := bom.Components
	// A binary's main module may be the BOM's subject rather than one of
	// its components; syft lists it among the components once it has a
	// version (a build inside a git checkout stamps one).
	if bom.Metadata.Component != nil {
		all = append(all, *bom.Metadata.Component)
	}
	var out []string
	for _, c := range all {
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

// TestCosignDownloadSBOM: the real cosign reads the attached SBOM back
// from the embedded registry (cosign's .sbom tag layout).
func TestCosignDownloadSBOM(t *testing.T) {
	cosign := lookTool(t, "cosign", "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.x")
	ctx := t.Context()
	srv, err := registry.Serve(ctx, t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ref, err := name.NewDigest(srv.Addr()+"/examplepay/app@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{Target: ref.String(), Kind: "image", Name: ref.Context().Name(), Digest: d.String()}
	data, err := Encode(Generate(inv, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(ctx, ref, data, true, nil); err != nil {
		t.Fatal(err)
	}
	cmd := proc.Command(ctx, cosign, "download", "sbom", "--allow-http-registry", "--allow-insecure-registry", ref.String())
	cmd.Env = append(os.Environ(), "COSIGN_EXPERIMENTAL=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cosign download sbom: %v", err)
	}
	if strings.TrimSpace(string(out)) != strings.TrimSpace(string(data)) {
		t.Errorf("cosign returned\n%s\nwant\n%s", out, data)
	}
}
