package step

// PathType says what a path named in `with:` must be in the repository.
type PathType int

const (
	// PathAny is a file or a directory.
	PathAny PathType = iota
	// PathDir is a directory.
	PathDir
	// PathFile is a regular file.
	PathFile
	// PathChart is a Helm chart: a directory with Chart.yaml.
	PathChart
	// PathKustomization is a kustomize directory: one with
	// kustomization.yaml, kustomization.yml or Kustomization.
	PathKustomization
)

func (t PathType) String() string {
	switch t {
	case PathDir:
		return "directory"
	case PathFile:
		return "file"
	case PathChart:
		return "Helm chart"
	case PathKustomization:
		return "kustomize directory"
	}
	return "file or directory"
}

// PathRef is a repository path a step's inputs name.
type PathRef struct {
	// Field is the `with:` field holding it, as Inputs.Errorf takes it
	// ("chart", "kustomize.1", "helm.0.chart").
	Field string
	// Value is the path as written, relative to the repository root.
	Value string
	Type  PathType
	// Outside allows an absolute path or one leaving the repository with
	// ../ (a key file in the user's home, a database elsewhere); it is
	// then checked only when it is inside.
	Outside bool
}

// PathInputs is implemented by steps whose inputs name files or
// directories of the repository. Validation checks that each exists and
// has the right type, and that none leaves the repository unless the
// kind allows it. Paths holding ${...} are checked once resolved.
type PathInputs interface {
	Paths() []PathRef
}
