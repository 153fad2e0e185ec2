package yamlx

import (
	"fmt"
	"strconv"
	"strings"
)

// syntaxError turns a yaml.v3 syntax error into an *Error. yaml.v3 gives
// a line (and for errors on the first line, none) but never a column, and
// its line is sometimes where the construct began rather than where it
// went wrong; the column is found by re-reading the text for what each
// message complains about.
func syntaxError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	lines := strings.Split(string(data), "\n")
	if quoteSymptom(msg) {
		// A quoted scalar may span lines, so an unclosed quote makes
		// yaml.v3 read on and fail somewhere else (or at the end of the
		// file) with a message that does not mention quotes.
		from := line
		if strings.HasPrefix(msg, "found unexpected end of stream") {
			from = 1
		}
		for l := max(from, 1); l <= len(lines); l++ {
			if i := unclosedQuote(lines[l-1]); i >= 0 {
				return &Error{File: file, Line: l, Column: charCol(lines[l-1], i),
					Msg: fmt.Sprintf("quoted string starting here is not closed: add the closing %c on this line (yaml: %s)", lines[l-1][i], msg)}
			}
		}
	}
	line, col := locateSyntax(lines, line, msg)
	return &Error{File: file, Line: line, Column: col, Msg: msg}
}

// quoteSymptom reports whether msg is one of the errors yaml.v3 gives
// when a quoted string is left open.
func quoteSymptom(msg string) bool {
	for _, p := range []string{
		"found unexpected end of stream",
		"did not find expected key",
		"could not find expected ':'",
		"did not find expected '-' indicator",
		"did not find expected comment or line break",
		"found unexpected end of stream while scanning a quoted scalar",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// unclosedQuote finds a quote that starts a value (at the start of the
// line or after "- ", ": ", "[", "{" or ",") and is not closed on the
// same line. It returns the quote's byte index, or -1.
func unclosedQuote(s string) int {
	valueStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			continue
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return -1
		case (c == '"' || c == '\'') && valueStart:
			end := closingQuote(s, i)
			if end < 0 {
				return i
			}
			i = end
			valueStart = false
			continue
		}
		switch {
		case (c == '-' || c == '?') && valueStart && (i+1 == len(s) || s[i+1] == ' '):
			valueStart = true
		case (c == '[' || c == '{') && valueStart, c == ',':
			valueStart = true
		case c == ':' && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t'):
			valueStart = true
		default:
			valueStart = false
		}
	}
	return -1
}

// closingQuote returns the index of the quote that closes the one at
// open, or -1 if the line ends first.
func closingQuote(s string, open int) int {
	q := s[open]
	for j := open + 1; j < len(s); j++ {
		switch {
		case q == '"' && s[j] == '\\':
			j++
		case s[j] == q && q == '\'' && j+1 < len(s) && s[j+1] == '\'':
			j++
		case s[j] == q:
			return j
		}
	}
	return -1
}

// locateSyntax returns the line and column (1-based, in characters) that
// msg most likely refers to, searching from line on.
func locateSyntax(lines []string, line int, msg string) (int, int) {
	if line < 1 {
		line = 1
	}
	// find searches from line on for the first line where at returns a
	// byte index.
	find := func(at func(string) int) (int, int, bool) {
		for l := line; l <= len(lines); l++ {
			if i := at(lines[l-1]); i >= 0 {
				return l, charCol(lines[l-1], i), true
			}
		}
		return 0, 0, false
	}
	var at func(string) int
	switch {
	case strings.HasPrefix(msg, "found character that cannot start any token"):
		at = badTokenStart
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		at = secondMappingValue
	case strings.HasPrefix(msg, "found unknown escape character"):
		at = badEscape
	case strings.HasPrefix(msg, "found a tab character"):
		at = func(s string) int { return strings.IndexByte(s, '\t') }
	case strings.HasPrefix(msg, "did not find expected ',' or ']'"),
		strings.HasPrefix(msg, "did not find expected ',' or '}'"):
		// Either a value with a second ": " in it, or a collection
		// that is never closed (yaml.v3 names the line it opened on).
		open, close := byte('['), byte(']')
		if strings.HasSuffix(msg, "'}'") {
			open, close = '{', '}'
		}
		if line <= len(lines) {
			if i := unclosed(lines[line-1], open, close); i >= 0 && flowExtraColon(lines[line-1]) < 0 {
				return line, charCol(lines[line-1], i)
			}
		}
		if l, c, ok := find(flowExtraColon); ok {
			return l, c
		}
		at = func(s string) int { return unclosed(s, open, close) }
	case strings.HasPrefix(msg, "did not find expected node content"):
		// Usually a flow collection the file ends inside of.
		at = func(s string) int {
			if i := unclosed(s, '[', ']'); i >= 0 {
				return i
			}
			return unclosed(s, '{', '}')
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name, _, _ := strings.Cut(strings.TrimPrefix(msg, "unknown anchor '"), "'")
		line = 1
		at = func(s string) int { return strings.Index(s, "*"+name) }
	case strings.HasPrefix(msg, "found unexpected end of stream"):
		for l := len(lines); l >= 1; l-- {
			if strings.TrimSpace(lines[l-1]) != "" {
				return l, charCol(lines[l-1], len(lines[l-1]))
			}
		}
		return 1, 1
	}
	if at != nil {
		if l, c, ok := find(at); ok {
			return l, c
		}
	}
	if line > len(lines) {
		return line, 1
	}
	s := lines[line-1]
	return line, charCol(s, len(s)-len(strings.TrimLeft(s, " ")))
}

// charCol converts byte index i of s to a 1-based column in characters.
func charCol(s string, i int) int {
	if i > len(s) {
		i = len(s)
	}
	return len([]rune(s[:i])) + 1
}

// badTokenStart finds a character no YAML token starts with: a tab used
// for indentation, or one of @ and ` where a value starts.
func badTokenStart(s string) int {
	if strings.HasPrefix(strings.TrimLeft(s, " "), "\t") {
		return strings.IndexByte(s, '\t')
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '@' && s[i] != '`' {
			continue
		}
		before := strings.TrimRight(s[:i], " ")
		if before == "" || strings.HasSuffix(before, ":") || strings.HasSuffix(before, "-") ||
			strings.HasSuffix(before, "[") || strings.HasSuffix(before, "{") || strings.HasSuffix(before, ",") {
			return i
		}
	}
	return -1
}

// secondMappingValue finds the ": " after the first one of a line, outside
// quotes: a plain value holding a mapping indicator.
func secondMappingValue(s string) int {
	seen := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return -1
		case c == ':' && (i+1 == len(s) || s[i+1] == ' '):
			if seen {
				return i
			}
			seen = true
		}
	}
	return -1
}

// badEscape finds a backslash inside a double-quoted string followed by a
// character YAML does not define an escape for.
func badEscape(s string) int {
	const valid = "0abt\tnvfre \"/\\N_LPxuU"
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case !in && s[i] == '"':
			in = true
		case in && s[i] == '"':
			in = false
		case in && s[i] == '\\':
			if i+1 < len(s) && !strings.ContainsRune(valid, rune(s[i+1])) {
				return i
			}
			i++
		}
	}
	return -1
}

// unclosed finds the last open bracket of a line that the line does not
// close.
func unclosed(s string, open, close byte) int {
	var stack []int
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == open:
			stack = append(stack, i)
		case c == close && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) == 0 {
		return -1
	}
	return stack[0]
}

// flowExtraColon finds, inside a flow collection, a ": " that follows
// another one with no "," between them: {run: echo: x}.
func flowExtraColon(s string) int {
	depth := 0
	colon := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			depth++
			colon = false
		case c == '}' || c == ']':
			depth--
			colon = false
		case c == ',':
			colon = false
		case c == ':' && depth > 0 && (i+1 == len(s) || s[i+1] == ' '):
			if colon {
				return i
			}
			colon = true
		}
	}
	return -1
}
