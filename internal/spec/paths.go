package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/step"
)

// Option changes what Load and Parse check.
type Option func(*options)

type options struct {
	repo string
}

// WithRepository checks the repository paths that steps name in `with:`
// (the step.PathInputs of their kinds) against the repository at dir:
// each must exist and be of the right type. Without it only the paths
// that leave the repository (absolute, ../) are reported.
func WithRepository(dir string) Option {
	return func(o *options) { o.repo = dir }
}

// Path problems, for errors.Is on a *PathError.
var (
	ErrPathNotFound = errors.New("path does not exist in the repository")
	ErrPathType     = errors.New("path is not of the type the input needs")
	ErrPathOutside  = errors.New("path leaves the repository")
)

// PathError is a path named in `with:` that validation rejects. It
// unwraps to its located *yamlx.Error and to one of ErrPathNotFound,
// ErrPathType or ErrPathOutside.
type PathError struct {
	Ref step.PathRef
	// Suggestion is the nearest existing path of the right type, if one
	// is close.
	Suggestion string
	// At is the error located at the `with:` field.
	At  error
	Err error
}

func (e *PathError) Error() string   { return e.At.Error() }
func (e *PathError) Unwrap() []error { return []error{e.At, e.Err} }

// CheckPaths checks the paths st names (when its kind implements
// step.PathInputs) against the repository at root ("" checks only that
// they stay inside). in locates the errors. Paths still holding ${...}
// are left for the run, which checks them resolved.
func CheckPaths(root string, st step.Step, in step.Inputs) []error {
	pi, ok := st.(step.PathInputs)
	if !ok {
		return nil
	}
	var errs []error
	for _, ref := range pi.Paths() {
		if ref.Value == "" || strings.Contains(ref.Value, "${") {
			continue
		}
		msg, kind, suggestion := checkPath(root, ref)
		if kind == nil {
			continue
		}
		if suggestion != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", suggestion)
		}
		errs = append(errs, &PathError{Ref: ref, Suggestion: suggestion, At: in.Errorf(ref.Field, "%s: %s", ref.Field, msg), Err: kind})
	}
	return errs
}

// checkPath returns what is wrong with ref, the matching sentinel (nil
// when nothing is) and a suggestion.
func checkPath(root string, ref step.PathRef) (string, error, string) {
	p := filepath.ToSlash(ref.Value)
	if filepath.IsAbs(ref.Value) || strings.HasPrefix(p, "/") {
		if ref.Outside {
			return "", nil, ""
		}
		return fmt.Sprintf("%q must be a path inside the repository, not an absolute path", ref.Value), ErrPathOutside, ""
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		if ref.Outside {
			return "", nil, ""
		}
		return fmt.Sprintf("%q leaves the repository (..); name a path inside it", ref.Value), ErrPathOutside, ""
	}
	if root == "" {
		return "", nil, ""
	}
	full := filepath.Join(root, filepath.FromSlash(clean))
	fi, err := os.Stat(full)
	if err != nil {
		if _, lerr := os.Lstat(full); lerr == nil {
			return fmt.Sprintf("%s is a symbolic link to nothing", clean), ErrPathNotFound, ""
		}
		return fmt.Sprintf("%s does not exist in the repository", clean), ErrPathNotFound, nearest(root, clean, ref.Type)
	}
	if !ref.Outside && escapes(root, full) {
		return fmt.Sprintf("%s leads outside the repository through a symbolic link", clean), ErrPathOutside, ""
	}
	if msg := typeProblem(full, fi, ref.Type); msg != "" {
		return clean + " " + msg, ErrPathType, nearest(root, clean, ref.Type)
	}
	return "", nil, ""
}

// escapes reports whether full, with symbolic links resolved, is outside
// root.
func escapes(root, full string) bool {
	r, err1 := filepath.EvalSymlinks(root)
	f, err2 := filepath.EvalSymlinks(full)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(r, f)
	return err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// typeProblem says how fi is not of type t ("" when it is).
func typeProblem(full string, fi fs.FileInfo, t step.PathType) string {
	switch t {
	case step.PathDir:
		if !fi.IsDir() {
			return "is a file, not a directory"
		}
	case step.PathFile:
		if !fi.Mode().IsRegular() {
			return "is a directory, not a file"
		}
	case step.PathChart:
		if !fi.IsDir() {
			return "is a file, not a Helm chart directory"
		}
		if _, err := os.Stat(filepath.Join(full, "Chart.yaml")); err != nil {
			return "is not a Helm chart (no Chart.yaml)"
		}
	case step.PathKustomization:
		if !fi.IsDir() {
			return "is a file, not a kustomize directory"
		}
		for _, k := range kustomizationFiles {
			if _, err := os.Stat(filepath.Join(full, k)); err == nil {
				return ""
			}
		}
		return "is not a kustomize directory (no kustomization.yaml)"
	}
	return ""
}

// maxSuggestWalk bounds the files looked at for a suggestion.
const maxSuggestWalk = 20000

// nearest returns the existing path of type t closest to p by edit
// distance over path segments, or "" when none is close: at most one
// segment added, dropped or replaced, counting a misspelt segment by how
// much of it changed, and the last segments alike in at least half their
// characters.
func nearest(root, p string, t step.PathType) string {
	want := strings.Split(p, "/")
	best, bestScore := "", 1.0001
	seen := 0
	_ = filepath.WalkDir(root, func(full string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // unreadable parts are not suggested
		}
		seen++
		if seen > maxSuggestWalk {
			return filepath.SkipAll
		}
		name := e.Name()
		if e.IsDir() && full != root && (name == ".git" || name == "node_modules" || name == "vendor") {
			return filepath.SkipDir
		}
		if full == root {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return nil //nolint:nilerr // not a candidate
		}
		rel = filepath.ToSlash(rel)
		got := strings.Split(rel, "/")
		if segmentCost(want[len(want)-1], got[len(got)-1]) > 0.5 {
			return nil
		}
		score := segmentDistance(want, got)
		if score > bestScore || (score == bestScore && rel >= best) {
			return nil
		}
		fi, err := os.Stat(full)
		if err != nil || typeProblem(full, fi, t) != "" {
			return nil //nolint:nilerr // not a candidate
		}
		best, bestScore = rel, score
		return nil
	})
	return best
}

// segmentDistance is the edit distance between two paths as lists of
// segments: adding or dropping a segment costs 1, replacing one costs the
// share of its characters that changed.
func segmentDistance(a, b []string) float64 {
	prev := make([]float64, len(b)+1)
	cur := make([]float64, len(b)+1)
	for j := range prev {
		prev[j] = float64(j)
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = float64(i)
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1] + segmentCost(a[i-1], b[j-1])
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func segmentCost(a, b string) float64 {
	if a == b {
		return 0
	}
	n := max(len([]rune(a)), len([]rune(b)))
	return float64(levenshtein([]rune(a), []rune(b))) / float64(n)
}

func levenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
