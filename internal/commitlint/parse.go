// Package commitlint checks commit messages against the Conventional
// Commits rules of @commitlint/config-conventional, with the same parser
// behaviour and verdicts as commitlint (conventional-commits-parser with the
// conventionalcommits preset, commitlint's default ignores for merge,
// revert, fixup and release commits).
package commitlint

import (
	"regexp"
	"strings"
	"unicode"
)

// Commit is a parsed commit message.
type Commit struct {
	Raw     string
	Header  string
	Type    string
	Scope   string
	Subject string
	Body    string
	Footer  string
	// Breaking is set by a "!" before the colon or a BREAKING CHANGE note.
	Breaking bool
	// Notes are the BREAKING CHANGE texts.
	Notes []string
	// Empty is true when the message has no header, body or footer
	// (commitlint skips such messages).
	Empty bool
}

var (
	headerPattern         = regexp.MustCompile(`^(\w*)(?:\((.*)\))?!?: (.*)$`)
	breakingHeaderPattern = regexp.MustCompile(`^(\w*)(?:\((.*)\))?!: (.*)$`)
	notesPattern          = regexp.MustCompile(`(?i)^[\s|*]*(BREAKING CHANGE|BREAKING-CHANGE)[:\s]+(.*)`)
	gpgLine               = regexp.MustCompile(`^\s*gpg:`)
	parserURL             = regexp.MustCompile(`\bhttps?://(?:www\.)?[-a-zA-Z0-9@:%_+.~#?&/=]+\b`)
	lineBreak             = regexp.MustCompile(`\r?\n`)
)

// Parse parses a commit message as commitlint does: the first line is the
// header, lines from the first issue reference or BREAKING CHANGE note on
// are the footer. When commentChar is set (commitlint --edit, reading
// .git/COMMIT_EDITMSG), comment lines and everything below the scissors
// line are dropped.
func Parse(msg, commentChar string) Commit {
	c := Commit{Raw: msg}
	if strings.TrimSpace(msg) == "" {
		c.Empty = true
		return c
	}
	raw := lineBreak.Split(trimNewLines(msg), -1)
	if commentChar != "" {
		if i := indexOf(raw, commentChar+" ------------------------ >8 ------------------------"); i >= 0 {
			raw = raw[:i]
		}
	}
	var lines []string
	for _, l := range raw {
		if commentChar != "" && strings.HasPrefix(l, commentChar) || gpgLine.MatchString(l) {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		c.Empty = true
		return c
	}
	p := &parser{lines: lines, c: &c}
	header := p.next()
	if header != "" {
		c.Header = header
		m := breakingHeaderPattern.FindStringSubmatch(header)
		if m == nil {
			m = headerPattern.FindStringSubmatch(header)
		}
		if m != nil {
			c.Type, c.Scope, c.Subject = m[1], m[2], m[3]
		}
	}
	var body, footer []string
	hasBody, hasFooter := false, false
	isBody := true
	for p.more() {
		if note, ok := p.notes(&footer, &hasFooter); ok {
			c.Notes = append(c.Notes, note...)
			isBody = false
		}
		if !p.more() {
			break
		}
		line := p.next()
		if !hasReference(line) && isBody {
			body = append(body, line)
			hasBody = true
		} else {
			footer = append(footer, line)
			hasFooter = true
			isBody = false
		}
	}
	if len(c.Notes) == 0 && header != "" && breakingHeaderPattern.MatchString(header) {
		c.Notes = append(c.Notes, breakingHeaderPattern.FindStringSubmatch(header)[3])
	}
	c.Breaking = len(c.Notes) > 0
	if hasBody {
		c.Body = trimNewLines(strings.Join(body, "\n"))
	}
	if hasFooter {
		c.Footer = trimNewLines(strings.Join(footer, "\n"))
	}
	c.Empty = c.Header == "" && c.Body == "" && c.Footer == ""
	return c
}

type parser struct {
	lines []string
	i     int
	c     *Commit
}

func (p *parser) more() bool   { return p.i < len(p.lines) }
func (p *parser) cur() string  { return p.lines[p.i] }
func (p *parser) next() string { l := p.lines[p.i]; p.i++; return l }

// notes reads a BREAKING CHANGE note and the lines that continue it, as
// conventional-commits-parser's parseNotes does.
func (p *parser) notes(footer *[]string, hasFooter *bool) ([]string, bool) {
	if !p.more() {
		return nil, false
	}
	m := notesPattern.FindStringSubmatch(p.cur())
	if m == nil {
		return nil, false
	}
	texts := []string{m[2]}
	*footer = append(*footer, p.next())
	*hasFooter = true
	for p.more() {
		if more, ok := p.notes(footer, hasFooter); ok {
			return append(texts, more...), true
		}
		line := p.next()
		*footer = append(*footer, line)
		if hasReference(line) {
			break
		}
		texts[0] += "\n" + line
	}
	return texts, true
}

var referenceKeywords = []string{"close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved"}

// hasReference reports whether conventional-commits-parser finds an issue
// reference ("#123", "closes #12") in line, which starts the footer.
func hasReference(line string) bool {
	for _, s := range referenceSentences(line) {
		if parserURL.MatchString(s) {
			continue
		}
		if hasIssue(s) {
			return true
		}
	}
	return false
}

// referenceSentences splits line at reference actions ("fixes ...") the way
// the parser's references pattern does; without an action the whole line is
// one sentence.
func referenceSentences(line string) []string {
	lower := strings.ToLower(line)
	var out []string
	pos := 0
	for pos < len(line) {
		start, end := -1, -1
		for p := pos; p < len(line) && start < 0; p++ {
			for _, k := range referenceKeywords {
				if strings.HasPrefix(lower[p:], k) {
					rest := line[p+len(k):]
					ws := len(rest) - len(strings.TrimLeftFunc(rest, unicode.IsSpace))
					if ws > 0 {
						start, end = p, p+len(k)+ws
						break
					}
				}
			}
		}
		if start < 0 {
			break
		}
		stop := len(line)
		for q := end; q < len(line); q++ {
			if strings.HasPrefix(lower[q:], "close") || strings.HasPrefix(lower[q:], "fix") || strings.HasPrefix(lower[q:], "resolve") {
				stop = q
				break
			}
		}
		out = append(out, line[end:stop])
		pos = stop
	}
	if out == nil && line != "" {
		return []string{line}
	}
	return out
}

// hasIssue reports a "#" followed by word characters or dashes and then
// whitespace, the end, or one of ",;)]".
func hasIssue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '#' {
			continue
		}
		j := i + 1
		for j < len(s) && isWordOrDash(s[j]) {
			j++
		}
		if j == i+1 {
			continue
		}
		if j == len(s) || strings.ContainsRune(",;)]", rune(s[j])) || unicode.IsSpace(rune(s[j])) {
			return true
		}
	}
	return false
}

func isWordOrDash(b byte) bool {
	return b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func trimNewLines(s string) string {
	return strings.TrimRight(strings.TrimLeft(s, "\r\n"), "\r\n")
}

func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}

var (
	ignoreMerge    = regexp.MustCompile(`(?m)^((Merge pull request)|(Merge (.*?) into (.*?)|(Merge branch (.*?)))(?:\r?\n)*$)`)
	ignoreTag      = regexp.MustCompile(`(?m)^(Merge tag (.*?))(?:\r?\n)*$`)
	ignoreRevert   = regexp.MustCompile(`^(R|r)evert (.*)`)
	ignoreReapply  = regexp.MustCompile(`^(R|r)eapply (.*)`)
	ignoreFixup    = regexp.MustCompile(`^(amend|fixup|squash)!`)
	ignoreMerged   = regexp.MustCompile(`^(Merged (.*?)(in|into) (.*)|Merged PR (.*): (.*))`)
	ignoreRemote   = regexp.MustCompile(`^Merge remote-tracking branch(\s*)(.*)`)
	ignoreAutoMrg  = regexp.MustCompile(`^Automatic merge(.*)`)
	ignoreAutoMrgd = regexp.MustCompile(`^Auto-merged (.*?) into (.*)`)
	releaseChore   = regexp.MustCompile(`^chore(\([^)]+\))?:`)
	releaseSkip1   = regexp.MustCompile(`(?i)\[(skip|ci)(-|\s)(ci|skip)\]`)
	releaseSkip2   = regexp.MustCompile(`(?i)\((skip|ci)(-|\s)(ci|skip)\)`)
	semverRe       = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
)

// Ignored reports whether commitlint's default ignores skip msg: merge
// commits, reverts and reapplies made by git, fixup!/squash!/amend!
// commits, and release commits whose header is a version.
func Ignored(msg string) bool {
	for _, re := range []*regexp.Regexp{ignoreMerge, ignoreTag, ignoreRevert, ignoreReapply, ignoreFixup, ignoreMerged, ignoreRemote, ignoreAutoMrg, ignoreAutoMrgd} {
		if re.MatchString(msg) {
			return true
		}
	}
	first, _, _ := strings.Cut(msg, "\n")
	s := releaseChore.ReplaceAllString(first, "")
	s = releaseSkip1.ReplaceAllString(s, "")
	s = releaseSkip2.ReplaceAllString(s, "")
	s = strings.TrimSpace(s)
	return semverRe.MatchString(s)
}
