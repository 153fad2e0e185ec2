// Package gotest runs `go test`, reads its test2json event stream into
// per-test results, and computes statement coverage from coverage profiles
// the way `go tool cover -func` does. It also renders JUnit XML.
package gotest

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/tools/cover"
)

// Profile is a merged coverage profile: blocks per file, duplicates (the
// same block reported by several test binaries or runs) combined.
type Profile struct {
	Mode  string
	Files map[string][]cover.ProfileBlock
}

// ParseProfile reads one coverage profile as written by -coverprofile.
func ParseProfile(r io.Reader) (*Profile, error) {
	ps, err := cover.ParseProfilesFromReader(r)
	if err != nil {
		return nil, fmt.Errorf("parse coverage profile: %w", err)
	}
	p := &Profile{Files: map[string][]cover.ProfileBlock{}}
	for _, fp := range ps {
		if p.Mode == "" {
			p.Mode = fp.Mode
		}
		p.Files[fp.FileName] = append(p.Files[fp.FileName], fp.Blocks...)
	}
	p.normalize()
	return p, nil
}

// ParseProfileFile reads the profile at path.
func ParseProfileFile(name string) (*Profile, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read coverage profile: %w", err)
	}
	p, err := ParseProfile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// Merge adds the blocks of o to p. Counts of the same block are added
// (mode count/atomic) or or-ed (mode set). Merging profiles of different
// modes is an error, as in `go tool cover`.
func (p *Profile) Merge(o *Profile) error {
	if o == nil {
		return nil
	}
	if p.Files == nil {
		p.Files = map[string][]cover.ProfileBlock{}
	}
	if p.Mode == "" {
		p.Mode = o.Mode
	} else if o.Mode != "" && o.Mode != p.Mode {
		return fmt.Errorf("merge coverage profiles: mode %q does not match %q", o.Mode, p.Mode)
	}
	for f, bs := range o.Files {
		p.Files[f] = append(p.Files[f], bs...)
	}
	p.normalize()
	return nil
}

func (p *Profile) normalize() {
	for f, bs := range p.Files {
		sort.SliceStable(bs, func(i, j int) bool {
			a, b := bs[i], bs[j]
			if a.StartLine != b.StartLine {
				return a.StartLine < b.StartLine
			}
			if a.StartCol != b.StartCol {
				return a.StartCol < b.StartCol
			}
			if a.EndLine != b.EndLine {
				return a.EndLine < b.EndLine
			}
			return a.EndCol < b.EndCol
		})
		out := bs[:0]
		for _, b := range bs {
			if n := len(out); n > 0 && sameBlock(out[n-1], b) {
				if p.Mode == "set" {
					if b.Count > 0 {
						out[n-1].Count = 1
					}
				} else {
					out[n-1].Count += b.Count
				}
				continue
			}
			out = append(out, b)
		}
		p.Files[f] = out
	}
}

func sameBlock(a, b cover.ProfileBlock) bool {
	return a.StartLine == b.StartLine && a.StartCol == b.StartCol &&
		a.EndLine == b.EndLine && a.EndCol == b.EndCol && a.NumStmt == b.NumStmt
}

// Write writes p in the -coverprofile format, files sorted.
func (p *Profile) Write(w io.Writer) error {
	mode := p.Mode
	if mode == "" {
		mode = "set"
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "mode: %s\n", mode)
	for _, f := range sortedKeys(p.Files) {
		for _, b := range p.Files[f] {
			fmt.Fprintf(&buf, "%s:%d.%d,%d.%d %d %d\n", f, b.StartLine, b.StartCol, b.EndLine, b.EndCol, b.NumStmt, b.Count)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Stmts is a statement count: covered of total.
type Stmts struct {
	Covered int64 `json:"covered"`
	Total   int64 `json:"total"`
}

// Percent returns the coverage in percent rounded to one decimal exactly
// as `go tool cover -func` prints it (fmt's %.1f of 100*covered/total:
// round half to even on the binary value). Zero statements give 0.
func (s Stmts) Percent() float64 {
	if s.Total == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(100*float64(s.Covered)/float64(s.Total), 'f', 1, 64), 64)
	return v
}

func (s *Stmts) add(o Stmts) { s.Covered += o.Covered; s.Total += o.Total }

// SourceFunc maps a profile file name (import path + "/file.go") to the
// file on disk, or "" if it is not available.
type SourceFunc func(profileFile string) string

// ModuleSource resolves profile file names of the module at dir (whose
// go.mod declares modulePath) to files under dir.
func ModuleSource(dir, modulePath string) SourceFunc {
	return func(f string) string {
		if rel, ok := strings.CutPrefix(f, modulePath+"/"); ok {
			return filepath.Join(dir, filepath.FromSlash(rel))
		}
		return ""
	}
}

// Coverage is statement coverage, total and per package.
type Coverage struct {
	Total     Stmts
	Packages  map[string]Stmts
	Functions []FuncCoverage
}

// FuncCoverage is the coverage of one function, as a line of
// `go tool cover -func`.
type FuncCoverage struct {
	File string
	Line int
	Name string
	Stmts
}

// Coverage computes statement coverage. Like `go tool cover -func`, only
// blocks inside function declarations count when the source file is found
// through src (a block in a package-level function literal belongs to no
// function); files whose source is not found count every block.
func (p *Profile) Coverage(src SourceFunc) (*Coverage, error) {
	c := &Coverage{Packages: map[string]Stmts{}}
	fset := token.NewFileSet()
	for _, f := range sortedKeys(p.Files) {
		blocks := p.Files[f]
		pkg := path.Dir(f)
		var file string
		if src != nil {
			file = src(f)
		}
		var fileStmts Stmts
		if file != "" {
			funcs, err := funcExtents(fset, file)
			if err != nil {
				return nil, fmt.Errorf("coverage of %s: %w", f, err)
			}
			for _, fe := range funcs {
				s := fe.coverage(blocks)
				fileStmts.add(s)
				c.Functions = append(c.Functions, FuncCoverage{File: f, Line: fe.startLine, Name: fe.name, Stmts: s})
			}
		} else {
			for _, b := range blocks {
				fileStmts.Total += int64(b.NumStmt)
				if b.Count > 0 {
					fileStmts.Covered += int64(b.NumStmt)
				}
			}
		}
		ps := c.Packages[pkg]
		ps.add(fileStmts)
		c.Packages[pkg] = ps
		c.Total.add(fileStmts)
	}
	return c, nil
}

type funcExtent struct {
	name                                 string
	startLine, startCol, endLine, endCol int
}

func funcExtents(fset *token.FileSet, file string) ([]funcExtent, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	f, err := parser.ParseFile(fset, file, src, 0)
	if err != nil {
		return nil, fmt.Errorf("parse source: %w", err)
	}
	var out []funcExtent
	ast.Inspect(f, func(n ast.Node) bool {
		fd, ok := n.(*ast.FuncDecl)
		if !ok {
			return true
		}
		if fd.Body == nil {
			return false
		}
		s, e := fset.Position(fd.Pos()), fset.Position(fd.End())
		name := fd.Name.Name
		if fd.Recv != nil && len(fd.Recv.List) > 0 {
			name = recvName(fd.Recv.List[0].Type) + "." + name
		}
		out = append(out, funcExtent{name: name, startLine: s.Line, startCol: s.Column, endLine: e.Line, endCol: e.Column})
		return false
	})
	return out, nil
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return "*" + recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

// coverage mirrors cmd/cover: blocks overlapping the function's extent.
func (fe funcExtent) coverage(blocks []cover.ProfileBlock) Stmts {
	var s Stmts
	for _, b := range blocks {
		if b.StartLine > fe.endLine || (b.StartLine == fe.endLine && b.StartCol >= fe.endCol) {
			break
		}
		if b.EndLine < fe.startLine || (b.EndLine == fe.startLine && b.EndCol <= fe.startCol) {
			continue
		}
		s.Total += int64(b.NumStmt)
		if b.Count > 0 {
			s.Covered += int64(b.NumStmt)
		}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
