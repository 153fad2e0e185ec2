package sbom

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func dataDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GANTRY_TEST_DATA")
	if dir == "" {
		dir = "/work/shared/data"
	}
	if _, err := os.Stat(filepath.Join(dir, "cyclonedx-schema", "bom-1.6.schema.json")); err != nil {
		testenv.Missing(t, "shared data cyclonedx-schema", err.Error()+"; set GANTRY_TEST_DATA")
	}
	return dir
}

// schema compiles the official CycloneDX 1.6 schema from local files only.
func schema(t *testing.T) *Validator {
	t.Helper()
	v, err := NewValidator(filepath.Join(dataDir(t), "cyclonedx-schema"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func validate(t *testing.T, data []byte) {
	t.Helper()
	if err := schema(t).Validate(data); err != nil {
		t.Error(err)
	}
}

func vulnappBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	src, _ := filepath.Abs("../vuln/testdata/vulnapp")
	out := filepath.Join(t.TempDir(), "vulnapp")
	cmd := proc.Command(t.Context(), "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestGenerateImage(t *testing.T) {
	inv := &inventory.Inventory{
		Target: "127.0.0.1:5000/examplepay/payment-service@sha256:" + hex64, Kind: "image",
		Name: "127.0.0.1:5000/examplepay/payment-service", Digest: "sha256:" + hex64,
		Binaries: []inventory.Binary{{
			Path: "/app/server", Platform: "linux/amd64", GoVersion: "go1.26.8",
			Main: inventory.Module{Path: "example.com/payment", Version: "(devel)"},
			Deps: []inventory.Module{
				{Path: "golang.org/x/text", Version: "v0.3.0", Sum: "h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg="},
				{Path: "example.com/old", Version: "v1.0.0", Replace: &inventory.Module{Path: "example.com/fork", Version: "v1.0.1", Sum: "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
			},
		}},
		Packages: []inventory.Package{
			{Type: "deb", Name: "libssl3", Version: "3.0.13-1~deb12u1", Arch: "amd64", Source: "openssl", DB: "/var/lib/dpkg/status"},
			{Type: "apk", Name: "musl", Version: "1.2.4-r2", Arch: "x86_64", License: "MIT", DB: "/lib/apk/db/installed"},
		},
	}
	bom := Generate(inv, Options{Time: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), ToolVersion: "test"})
	data, err := Encode(bom)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, data)

	var back cdx.BOM
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("specVersion %v, want 1.6", back.SpecVersion)
	}
	sub := back.Metadata.Component
	if sub.Type != cdx.ComponentTypeContainer || (*sub.Hashes)[0].Value != hex64 ||
		sub.PackageURL != "pkg:oci/payment-service@sha256%3A"+hex64+"?repository_url=127.0.0.1%3A5000%2Fexamplepay%2Fpayment-service" {
		t.Errorf("subject %+v", sub)
	}
	purls := map[string]cdx.Component{}
	for _, c := range *back.Components {
		purls[c.PackageURL] = c
	}
	for _, want := range []string{
		"pkg:golang/example.com/payment",
		"pkg:golang/stdlib@go1.26.8",
		"pkg:golang/golang.org/x/text@v0.3.0",
		"pkg:golang/example.com/fork@v1.0.1",
		"pkg:deb/debian/libssl3@3.0.13-1~deb12u1?arch=amd64&upstream=openssl",
		"pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
	} {
		if _, ok := purls[want]; !ok {
			t.Errorf("no component with purl %s; have %v", want, keys(purls))
		}
	}
	text := purls["pkg:golang/golang.org/x/text@v0.3.0"]
	if h := (*text.Hashes)[0]; h.Algorithm != cdx.HashAlgoSHA256 || h.Value != "83ad6dced139a9e190f3db66e8d4e38ccf553c89b4f3ca1dd65e9a4a8ad64568" {
		t.Errorf("x/text hash %+v", h)
	}
	if l := purls["pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"].Licenses; l == nil || (*l)[0].Expression != "MIT" {
		t.Errorf("musl licences %+v", l)
	}
	graph := map[string][]string{}
	for _, d := range *back.Dependencies {
		if d.Dependencies != nil {
			graph[d.Ref] = *d.Dependencies
		}
	}
	if got := graph["image:sha256:"+hex64]; len(got) != 3 {
		t.Errorf("image depends on %v, want the binary and two packages", got)
	}
	if got := graph["binary:/app/server@linux/amd64"]; !slices.Contains(got, "pkg:golang/golang.org/x/text@v0.3.0") || !slices.Contains(got, "pkg:golang/stdlib@go1.26.8") || len(got) != 3 {
		t.Errorf("main module depends on %v", got)
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestGenerateRealBinary(t *testing.T) {
	inv, err := inventory.FromBinaryFile(vulnappBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(Generate(inv, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	validate(t, data)
}

func TestSchemaRejectsBrokenBOM(t *testing.T) {
	if err := schema(t).Validate([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"gadget","name":"x"}]}`)); err == nil {
		t.Error("schema accepted an unknown component type: the validator is not checking")
	}
}

func TestVCSPseudoVersion(t *testing.T) {
	tests := []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{"vcs.revision": "8c18c4d79622aa0011223344556677889900aabb", "vcs.time": "2026-11-28T16:39:05Z"}, "v0.0.0-20261128163905-8c18c4d79622"},
		{map[string]string{"vcs.revision": "8c18c4d79622aa00"}, ""},
		{map[string]string{"vcs.revision": "short", "vcs.time": "2026-11-28T16:39:05Z"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := vcsPseudoVersion(tt.settings); got != tt.want {
			t.Errorf("vcsPseudoVersion(%v) = %q, want %q", tt.settings, got, tt.want)
		}
	}
}
