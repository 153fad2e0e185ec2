package spec

import (
	"strings"
	"unicode"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// checkScript refuses every ${...} in a run: script. A value pasted into
// shell code runs as code: a branch named x$(touch${IFS}pwned) would run
// touch. Values reach scripts as environment variables instead, which the
// shell never parses. "$${" stays the way to write the shell's own "${".
func (v *validator) checkScript(s *Step) {
	pos := s.At["run"]
	for k, start := range exprStarts(s.Run) {
		src := exprSource(s.Run, start)
		name := envNameFor(src)
		v.errAt(v.nthExprPos(pos, k),
			"${%s} in run: would paste a pipeline value into shell code; pass it through env: instead: env: {%s: \"${%s}\"} and write \"$%s\" in the script (write $${ for the shell's own ${)",
			src, name, src, name)
	}
	if strings.Contains(s.Shell, "${") {
		v.errAt(s.At["shell"], "shell: is a program name, not a template; ${...} is not evaluated here")
	}
}

// exprStarts returns the offsets of each "${" in s that is not written
// "$${".
func exprStarts(s string) []int {
	var out []int
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			out = append(out, i)
			i += 2
		default:
			i++
		}
	}
	return out
}

// exprSource returns the text between the "${" at start and its "}", or
// the rest of the line when it is not closed.
func exprSource(s string, start int) string {
	rest := s[start+2:]
	if t, err := expression.ParseTemplate(s[start:]); err == nil {
		if progs := t.Programs(); len(progs) > 0 && strings.HasPrefix(rest, progs[0].String()) {
			return progs[0].String()
		}
	}
	if i := strings.IndexAny(rest, "}\n"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// envNameFor suggests a variable name for an expression: the last name in
// it, upper-cased (git.branch → BRANCH).
func envNameFor(src string) string {
	refs, err := expression.Refs(src)
	last := ""
	if err == nil {
		for _, r := range refs {
			if len(r) > 0 {
				last = r[len(r)-1]
			}
		}
	}
	var b strings.Builder
	for _, c := range last {
		switch {
		case c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c)):
			b.WriteRune(unicode.ToUpper(c))
		default:
			b.WriteByte('_')
		}
	}
	name := strings.Trim(b.String(), "_")
	if name == "" || !envNameRE.MatchString(name) {
		return "VALUE"
	}
	return name
}

// nthExprPos finds the k-th unescaped "${" in the source text from the
// start of a scalar at pos, so an error points at the expression itself,
// also inside a multi-line block. It falls back to pos.
func (v *validator) nthExprPos(pos yamlx.Pos, k int) yamlx.Pos {
	off := offsetOf(v.src, pos)
	if off < 0 {
		return pos
	}
	starts := exprStarts(string(v.src[off:]))
	if k >= len(starts) {
		return pos
	}
	return posOf(v.src, off+starts[k])
}

// offsetOf converts a 1-based line and column (in characters) to a byte
// offset in src, or -1.
func offsetOf(src []byte, pos yamlx.Pos) int {
	if pos.Line < 1 || pos.Column < 1 {
		return -1
	}
	line, off := 1, 0
	for line < pos.Line {
		i := strings.IndexByte(string(src[off:]), '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
		line++
	}
	col := 1
	for _, c := range string(src[off:]) {
		if col == pos.Column {
			return off
		}
		if c == '\n' {
			return -1
		}
		off += len(string(c))
		col++
	}
	return -1
}

// posOf converts a byte offset in src to a 1-based line and column.
func posOf(src []byte, off int) yamlx.Pos {
	p := yamlx.Pos{Line: 1, Column: 1}
	for _, c := range string(src[:off]) {
		if c == '\n' {
			p.Line++
			p.Column = 1
		} else {
			p.Column++
		}
	}
	return p
}
