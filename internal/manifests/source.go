package manifests

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/gantry-ci/gantry/internal/findings"
)

// Tool is the findings tool name.
const Tool = "kubeconform"

// RuleKustomize marks a kustomization that does not build.
const RuleKustomize = "kustomize-build"

// Rendered is manifests produced by a renderer (helm template).
type Rendered struct {
	// Name names the rendering in findings ("deploy/chart (helm template)").
	Name string
	Data []byte
}

// Input says what to validate; paths are relative to the directory
// passed to Check.
type Input struct {
	// Paths are YAML files or directories searched recursively for
	// *.yaml/*.yml/*.json (hidden directories, Helm charts and
	// kustomization files are skipped).
	Paths []string
	// Kustomize are kustomization directories built in-process (krusty).
	Kustomize []string
	// CRDs are extra CustomResourceDefinition files whose schemas apply.
	CRDs []string
	// Rendered are manifests rendered elsewhere (helm template).
	Rendered []Rendered
}

// Check validates every document of in and returns the findings.
func (v *Validator) Check(ctx context.Context, dir string, in Input) (*findings.Report, Stats, error) {
	r := &findings.Report{Tool: Tool, Version: "kubernetes " + KubernetesVersion, InfoURI: "https://github.com/yannh/kubeconform"}
	var docs []Doc
	for _, p := range in.Paths {
		files, err := yamlFiles(dir, p)
		if err != nil {
			return nil, Stats{}, err
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return nil, Stats{}, err
			}
			data, err := os.ReadFile(inDir(dir, f))
			if err != nil {
				return nil, Stats{}, fmt.Errorf("read manifest: %w", err)
			}
			docs = append(docs, SplitDocuments(f, data, r)...)
		}
	}
	for _, k := range in.Kustomize {
		if err := ctx.Err(); err != nil {
			return nil, Stats{}, err
		}
		out, err := KustomizeBuild(inDir(dir, k))
		name := filepath.ToSlash(k) + " (kustomize build)"
		if err != nil {
			r.Add(findings.Finding{File: filepath.ToSlash(k), Rule: RuleKustomize, Severity: findings.Error, Message: err.Error()})
			continue
		}
		docs = append(docs, SplitDocuments(name, out, r)...)
	}
	for _, rd := range in.Rendered {
		docs = append(docs, SplitDocuments(rd.Name, rd.Data, r)...)
	}
	for _, c := range in.CRDs {
		data, err := os.ReadFile(inDir(dir, c))
		if err != nil {
			return nil, Stats{}, fmt.Errorf("read CRD: %w", err)
		}
		if err := v.Registry.AddCRD(c, data); err != nil {
			return nil, Stats{}, err
		}
	}
	// CRDs among the inputs define the schemas of their custom resources.
	for _, d := range docs {
		if g, _ := Identify(d.Node); g.Kind == "CustomResourceDefinition" {
			data, err := yaml.Marshal(d.Node)
			if err == nil {
				_ = v.Registry.AddCRD(d.Source, data) // a broken CRD is reported by its own validation
			}
		}
	}
	var st Stats
	for _, d := range docs {
		st.Documents++
		before := len(r.Findings)
		if !v.Validate(d, r) {
			st.Skipped++
			continue
		}
		if len(r.Findings) == before {
			st.Valid++
		}
	}
	r.Sort()
	return r, st, nil
}

// inDir resolves a path the user gave: an absolute path as it is, a
// relative one from dir.
func inDir(dir, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, path)
}

// yamlFiles lists the manifest files of path (a file or a directory), as
// paths relative to dir, or absolute when path is absolute.
func yamlFiles(dir, path string) ([]string, error) {
	root := inDir(dir, path)
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("manifests %s: %w", path, err)
	}
	if !fi.IsDir() {
		return []string{filepath.ToSlash(filepath.Clean(path))}, nil
	}
	var out []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "Chart.yaml")); err == nil {
				return filepath.SkipDir // a Helm chart: validated through helm-template
			}
			return nil
		}
		name := d.Name()
		switch strings.ToLower(name) {
		case "kustomization.yaml", "kustomization.yml", "kustomization":
			return nil
		}
		ext := strings.ToLower(filepath.Ext(name))
		if ext == ".yaml" || ext == ".yml" || ext == ".json" {
			if filepath.IsAbs(path) {
				out = append(out, filepath.ToSlash(p))
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	return out, nil
}

// KustomizeBuild runs `kustomize build dir` in-process.
func KustomizeBuild(dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build: encode: %w", err)
	}
	return out, nil
}
