package gotest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// fixture is a module under ../steps/gotest/testdata shared by the kind's
// tests.
func fixture(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "steps", "gotest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
}

var totalRe = regexp.MustCompile(`(?m)^total:\s+\(statements\)\s+([0-9.]+)%$`)

// coverFunc returns the total that `go tool cover -func` prints.
func coverFunc(t *testing.T, dir, profile string) float64 {
	t.Helper()
	cmd := exec.Command("go", "tool", "cover", "-func="+profile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool cover -func: %v\n%s", err, out)
	}
	m := totalRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no total line in:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func runCover(t *testing.T, dir, profile string, tags []string, race bool) *Report {
	t.Helper()
	r, err := Run(context.Background(), Options{Dir: dir, CoverProfile: profile, Tags: tags, Race: race})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// TestCoverageMatchesCoverFunc compares gantry's figure with
// `go tool cover -func` on real profiles: unit, integration, their merge,
// and a synthetic one.
func TestCoverageMatchesCoverFunc(t *testing.T) {
	needGo(t)
	dir := fixture(t, "cover")
	tmp := t.TempDir()
	unit := filepath.Join(tmp, "unit.out")
	integ := filepath.Join(tmp, "integration.out")
	runCover(t, dir, unit, nil, false)
	runCover(t, dir, integ, []string{"integration"}, false)

	pu, err := ParseProfileFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := ParseProfileFile(integ)
	if err != nil {
		t.Fatal(err)
	}
	merged := &Profile{}
	for _, p := range []*Profile{pu, pi} {
		if err := merged.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	mergedFile := filepath.Join(tmp, "merged.out")
	writeProfile(t, mergedFile, merged)

	// A profile whose blocks appear twice (two runs concatenated), which
	// go tool cover merges on reading.
	dup := filepath.Join(tmp, "dup.out")
	b1, _ := os.ReadFile(unit)
	b2, _ := os.ReadFile(integ)
	lines := strings.SplitN(string(b2), "\n", 2)
	if err := os.WriteFile(dup, append(b1, lines[1]...), 0o644); err != nil {
		t.Fatal(err)
	}

	src := ModuleSource(dir, "example.com/cover")
	for _, c := range []struct{ name, file string }{
		{"unit", unit}, {"integration", integ}, {"merged", mergedFile}, {"concatenated", dup},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseProfileFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			cov, err := p.Coverage(src)
			if err != nil {
				t.Fatal(err)
			}
			got, want := cov.Total.Percent(), coverFunc(t, dir, c.file)
			if got != want {
				t.Errorf("coverage = %v, go tool cover -func says %v", got, want)
			}
		})
	}
	// Merging must raise coverage above either run alone.
	cu, _ := pu.Coverage(src)
	cm, _ := merged.Coverage(src)
	if !(cm.Total.Covered > cu.Total.Covered) {
		t.Errorf("merged covered %d, unit alone %d: merge added nothing", cm.Total.Covered, cu.Total.Covered)
	}
}

// TestCoverageGeneratedModule builds a module with exactly 799 of 1000
// statements covered: 79.9%, which must fail an 80% gate.
func TestCoverageGeneratedModule(t *testing.T) {
	needGo(t)
	dir := GenerateCoverageModule(t, 799, 201)
	profile := filepath.Join(t.TempDir(), "c.out")
	runCover(t, dir, profile, nil, false)
	p, err := ParseProfileFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := p.Coverage(ModuleSource(dir, "example.com/gen"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cov.Total.Percent(), 79.9; got != want {
		t.Errorf("coverage = %v, want %v", got, want)
	}
	if got, want := cov.Total.Percent(), coverFunc(t, dir, profile); got != want {
		t.Errorf("coverage = %v, go tool cover -func says %v", got, want)
	}
	if cov.Total.Percent() >= 80 {
		t.Errorf("gate coverage >= 80 passed at %v", cov.Total.Percent())
	}
}

// GenerateCoverageModule writes a module whose tests cover `covered` of
// covered+uncovered statements.
func GenerateCoverageModule(t *testing.T, covered, uncovered int) string {
	t.Helper()
	dir := t.TempDir()
	var src bytes.Buffer
	src.WriteString("package gen\n\nvar x int\n\nfunc Covered() {\n")
	for i := 0; i < covered; i++ {
		src.WriteString("\tx++\n")
	}
	src.WriteString("}\n\nfunc Uncovered() {\n")
	for i := 0; i < uncovered; i++ {
		src.WriteString("\tx--\n")
	}
	src.WriteString("}\n")
	files := map[string]string{
		"go.mod":      "module example.com/gen\n\ngo 1.22\n",
		"gen.go":      src.String(),
		"gen_test.go": "package gen\n\nimport \"testing\"\n\nfunc TestCovered(t *testing.T) { Covered() }\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeProfile(t *testing.T, name string, p *Profile) {
	t.Helper()
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStmtsPercent(t *testing.T) {
	for _, c := range []struct {
		s    Stmts
		want float64
	}{
		{Stmts{799, 1000}, 79.9},
		{Stmts{0, 0}, 0},
		{Stmts{1, 3}, 33.3},
		{Stmts{2, 3}, 66.7},
		{Stmts{1999, 2000}, 100.0}, // 99.95 prints as 100.0 with %.1f
		{Stmts{7, 8}, 87.5},
	} {
		if got := c.s.Percent(); got != c.want {
			t.Errorf("%+v.Percent() = %v, want %v (Sprintf %.1f)", c.s, got, c.want, 100*float64(c.s.Covered)/float64(c.s.Total))
		}
	}
}

func TestMergeModes(t *testing.T) {
	a, err := ParseProfile(strings.NewReader("mode: set\nm/a.go:1.1,2.2 3 1\nm/a.go:3.1,4.2 2 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseProfile(strings.NewReader("mode: set\nm/a.go:3.1,4.2 2 1\nm/b.go:1.1,2.2 5 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	cov, err := a.Coverage(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cov.Total, (Stmts{Covered: 5, Total: 10}); got != want {
		t.Errorf("total = %+v, want %+v", got, want)
	}
	if got, want := cov.Packages["m"], (Stmts{5, 10}); got != want {
		t.Errorf("package m = %+v, want %+v", got, want)
	}
	c, _ := ParseProfile(strings.NewReader("mode: count\nm/a.go:1.1,2.2 3 4\n"))
	if err := a.Merge(c); err == nil {
		t.Error("merging set and count profiles: no error")
	}
}

func FuzzParseProfile(f *testing.F) {
	f.Add("mode: set\nm/a.go:1.1,2.2 3 1\n")
	f.Add("mode: atomic\nm/a.go:1.1,2.2 3 1\nm/a.go:1.1,2.2 3 1\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProfile(strings.NewReader(s))
		if err != nil {
			return
		}
		cov, err := p.Coverage(nil)
		if err != nil {
			t.Fatal(err)
		}
		if cov.Total.Covered > cov.Total.Total && cov.Total.Total >= 0 {
			// NumStmt may be negative in hostile input; only check sane ones.
			for _, bs := range p.Files {
				for _, b := range bs {
					if b.NumStmt < 0 {
						return
					}
				}
			}
			t.Fatalf("covered %d > total %d", cov.Total.Covered, cov.Total.Total)
		}
		_ = fmt.Sprint(cov.Total.Percent())
	})
}
