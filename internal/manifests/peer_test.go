package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// standalone turns a registry schema into a self-contained JSON schema
// for kubeconform (refs inlined, strict objects, nullable scalars).
func standalone(reg *Registry, s *Schema, depth int) map[string]any {
	if s == nil || depth > 40 {
		return map[string]any{}
	}
	if s.Ref == "#/definitions/"+quantityDef {
		return map[string]any{"oneOf": []any{map[string]any{"type": []any{"string", "null"}}, map[string]any{"type": []any{"number", "null"}}}}
	}
	if s.Ref != "" && strings.HasSuffix(s.Ref, "JSONSchemaProps") {
		return map[string]any{} // recursive; not needed here
	}
	s = reg.resolve(s)
	if s == nil {
		return map[string]any{}
	}
	out := map[string]any{}
	if s.IntOrString || s.Format == "int-or-string" {
		return map[string]any{"oneOf": []any{map[string]any{"type": []any{"string", "null"}}, map[string]any{"type": []any{"integer", "null"}}}}
	}
	typ := s.Type
	if typ == "" && len(s.Properties) > 0 {
		typ = "object"
	}
	if typ != "" {
		out["type"] = []any{typ, "null"}
	}
	if len(s.Enum) > 0 {
		out["enum"] = append(append([]any{}, s.Enum...), nil)
	}
	if len(s.Required) > 0 {
		out["required"] = s.Required
	}
	if len(s.Properties) > 0 {
		props := map[string]any{}
		for k, p := range s.Properties {
			props[k] = standalone(reg, p, depth+1)
		}
		out["properties"] = props
		if s.AdditionalProperties == nil && !s.PreserveUnknown {
			out["additionalProperties"] = false
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		out["additionalProperties"] = standalone(reg, s.AdditionalProperties.Schema, depth+1)
	}
	if s.Items != nil {
		out["items"] = standalone(reg, s.Items, depth+1)
	}
	return out
}

// WriteKubeconformSchemas writes every kind of reg as a standalone
// schema named RESOURCEKIND_GROUP_VERSION.json (kubeconform template
// {{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json).
func writeKubeconformSchemas(t *testing.T, reg *Registry, dir string) {
	t.Helper()
	for g, s := range reg.kinds {
		group := g.Group
		if group == "" {
			group = g.Version
		}
		schema := s
		if _, isCRD := reg.crds[g]; isCRD {
			schema = withoutMeta(s)
			schema.Properties["metadata"] = &Schema{Ref: "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
		}
		data, err := json.Marshal(standalone(reg, schema, 0))
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(g.Kind) + "_" + group + "_" + g.Version + ".json"
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSameVerdictsAsKubeconform runs the real kubeconform (go install
// github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0) with schemas
// generated from the same embedded definitions and asserts the same
// valid/invalid verdict per document. KUBECONFORM_SCHEMAS_OUT keeps the
// generated schemas (bench/commit-stage.sh uses them).
func TestSameVerdictsAsKubeconform(t *testing.T) {
	bin, err := exec.LookPath("kubeconform")
	if err != nil {
		testenv.Missing(t, "kubeconform", "go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0")
	}
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("KUBECONFORM_SCHEMAS_OUT")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeKubeconformSchemas(t, reg, dir)
	files := []string{"testdata/good/app.yaml", "testdata/good/rollout.yaml", "testdata/good/kyverno.yaml", "testdata/bad/deployment.yaml", "testdata/bad/others.yaml"}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			cmd := proc.Command(context.Background(), bin, "-strict", "-verbose", "-output", "json", "-schema-location",
				filepath.Join(dir, "{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json"), f)
			var out bytes.Buffer
			cmd.Stdout = &out
			_ = cmd.Run() // exit 1 on invalid documents
			var res struct {
				Resources []struct {
					Kind, Name, Status, Msg string
				} `json:"resources"`
			}
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("kubeconform output: %v\n%s", err, out.String())
			}
			theirs := map[string]bool{}
			for _, r := range res.Resources {
				if r.Kind == "" {
					continue
				}
				theirs[r.Kind+"/"+r.Name] = r.Status == "statusValid"
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v := &Validator{Registry: reg}
			compared := 0
			for _, d := range SplitDocuments(f, data, &findings.Report{}) {
				r := &findings.Report{}
				v.Validate(d, r)
				_, id := Identify(d.Node)
				want, ok := theirs[id]
				if !ok {
					continue // documents kubeconform cannot name (no kind)
				}
				compared++
				if got := len(r.Findings) == 0; got != want {
					t.Errorf("%s: gantry valid = %v, kubeconform valid = %v (gantry: %v; kubeconform: %s)", id, got, want, r.Findings, out.String())
				}
			}
			if compared == 0 {
				t.Errorf("no document compared; kubeconform said %s", out.String())
			}
			t.Logf("%d documents, same verdicts", compared)
		})
	}
}
