// Package tfmt checks Terraform files' formatting in-process with hclwrite,
// with the verdict and diff of `terraform fmt -check -diff -recursive`:
// canonical layout, and interpolation-only strings ("${var.x}") unwrapped.
package tfmt

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/gantry-ci/gantry/internal/findings"
)

// Tool is the findings tool name.
const Tool = "terraform-fmt"

// Rules of the findings.
const (
	RuleFormat = "terraform-fmt"
	RuleSyntax = "hcl-syntax"
)

// Extensions are the file kinds terraform fmt formats.
var Extensions = []string{".tf", ".tfvars", ".tftest.hcl"}

// File is the result for one file.
type File struct {
	// Path is relative to the checked directory, slash-separated.
	Path      string
	Formatted []byte
	// Diff is the unified diff in terraform fmt -diff's form; empty when
	// the file is formatted.
	Diff string
}

// Result is what Check found.
type Result struct {
	Report *findings.Report
	// Files lists the unformatted files.
	Files []File
	// Checked counts the files looked at.
	Checked int
}

// Diff joins the diffs of every unformatted file, as terraform prints them.
func (r *Result) Diff() string {
	var b strings.Builder
	for _, f := range r.Files {
		b.WriteString(f.Path + "\n" + f.Diff)
	}
	return b.String()
}

// Check formats every Terraform file under dir (recursively; hidden
// directories are skipped, as terraform fmt does) and reports each file
// that is not formatted and each syntax error.
func Check(ctx context.Context, dir string) (*Result, error) {
	res := &Result{Report: &findings.Report{Tool: Tool, InfoURI: "https://developer.hashicorp.com/terraform/cli/commands/fmt"}}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && slices.ContainsFunc(Extensions, func(ext string) bool { return strings.HasSuffix(d.Name(), ext) }) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", dir, err)
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			rel = p
		}
		rel = filepath.ToSlash(rel)
		res.Checked++
		f, diags := FormatFile(rel, src)
		for _, d := range diags {
			fd := findings.Finding{File: rel, Rule: RuleSyntax, Severity: findings.Error, Message: strings.TrimSuffix(d.Summary+": "+d.Detail, ": ")}
			if d.Subject != nil {
				fd.Line, fd.Column = d.Subject.Start.Line, d.Subject.Start.Column
			}
			res.Report.Add(fd)
		}
		if diags.HasErrors() || f.Diff == "" {
			continue
		}
		res.Files = append(res.Files, f)
		res.Report.Add(findings.Finding{File: rel, Line: firstChange(src, f.Formatted), Column: 1, Rule: RuleFormat, Severity: findings.Error,
			Message: "file is not formatted (run terraform fmt)"})
	}
	return res, nil
}

// FormatFile formats one file's source. Syntax errors come back as
// diagnostics and no diff.
func FormatFile(name string, src []byte) (File, hcl.Diagnostics) {
	f := File{Path: name}
	file, diags := hclwrite.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return f, diags
	}
	// hclwrite is lenient; the native parser reports what terraform would.
	if _, d := hclsyntax.ParseConfig(src, name, hcl.InitialPos); d.HasErrors() {
		return f, d
	}
	cleanBody(file.Body(), false)
	f.Formatted = hclwrite.Format(file.Bytes())
	if string(f.Formatted) != string(src) {
		f.Diff = udiff.Unified("old/"+name, "new/"+name, string(src), string(f.Formatted))
	}
	return f, nil
}

// cleanBody applies terraform fmt's rewrites beyond layout: attribute
// values that are a single interpolation lose the quotes and "${ }", and
// legacy quoted type names in variable blocks become type expressions.
func cleanBody(body *hclwrite.Body, inVariable bool) {
	for name, attr := range body.Attributes() {
		toks := attr.Expr().BuildTokens(nil)
		if inVariable && name == "type" {
			if t, ok := legacyType(toks); ok {
				body.SetAttributeRaw(name, t)
				continue
			}
		}
		if t, ok := unwrapInterpolation(toks); ok {
			body.SetAttributeRaw(name, t)
		}
	}
	for _, b := range body.Blocks() {
		cleanBody(b.Body(), b.Type() == "variable")
	}
}

// unwrapInterpolation turns `"${expr}"` into `expr` when the template is
// exactly one interpolation; multi-line expressions get parentheses.
func unwrapInterpolation(toks hclwrite.Tokens) (hclwrite.Tokens, bool) {
	if len(toks) < 5 {
		return nil, false
	}
	first, last := toks[0], toks[len(toks)-1]
	if first.Type != hclsyntax.TokenOQuote || last.Type != hclsyntax.TokenCQuote ||
		toks[1].Type != hclsyntax.TokenTemplateInterp || toks[len(toks)-2].Type != hclsyntax.TokenTemplateSeqEnd {
		return nil, false
	}
	inner := toks[2 : len(toks)-2]
	for len(inner) > 0 && inner[0].Type == hclsyntax.TokenNewline {
		inner = inner[1:]
	}
	for len(inner) > 0 && inner[len(inner)-1].Type == hclsyntax.TokenNewline {
		inner = inner[:len(inner)-1]
	}
	if len(inner) == 0 {
		return nil, false
	}
	quotes := 0
	multiline := false
	for _, t := range inner {
		switch t.Type {
		case hclsyntax.TokenOQuote:
			quotes++
		case hclsyntax.TokenCQuote:
			quotes--
		case hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenTemplateControl:
			if quotes == 0 {
				return nil, false
			}
		case hclsyntax.TokenNewline:
			multiline = true
		}
	}
	out := make(hclwrite.Tokens, 0, len(inner)+2)
	if multiline {
		out = append(out, &hclwrite.Token{Type: hclsyntax.TokenOParen, Bytes: []byte("(")})
	}
	for _, t := range inner {
		c := *t
		out = append(out, &c)
	}
	if len(out) > 0 {
		out[0].SpacesBefore = 0
		if multiline {
			out[1].SpacesBefore = 0
		}
	}
	if multiline {
		out = append(out, &hclwrite.Token{Type: hclsyntax.TokenCParen, Bytes: []byte(")")})
	}
	return out, true
}

// legacyType rewrites type = "string" / "list" / "map" (Terraform 0.11
// syntax) as terraform fmt does.
func legacyType(toks hclwrite.Tokens) (hclwrite.Tokens, bool) {
	if len(toks) != 3 || toks[0].Type != hclsyntax.TokenOQuote || toks[1].Type != hclsyntax.TokenQuotedLit || toks[2].Type != hclsyntax.TokenCQuote {
		return nil, false
	}
	var expr string
	switch string(toks[1].Bytes) {
	case "string":
		expr = "string"
	case "list":
		expr = "list(string)"
	case "map":
		expr = "map(string)"
	default:
		return nil, false
	}
	return hclwrite.Tokens{{Type: hclsyntax.TokenIdent, Bytes: []byte(expr)}}, true
}

// firstChange returns the 1-based line of the first difference.
func firstChange(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb))
}
