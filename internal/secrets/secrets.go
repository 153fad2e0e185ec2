// Package secrets finds credentials committed to a repository: known key
// and token formats (AWS access key ids, GitHub tokens, Slack tokens and
// webhooks, private key PEM blocks) and high-entropy values assigned to
// names such as password, secret or token. It scans a source tree and the
// lines added by a range of git commits. Findings never carry the secret:
// messages show a redacted prefix only.
package secrets

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/gantry-ci/gantry/internal/findings"
)

// Rule is one secret format.
type Rule struct {
	// ID is the finding's rule ("aws-access-key-id").
	ID string
	// Description names what was found.
	Description string
	re          *regexp.Regexp
	// group is the submatch holding the secret (0: the whole match).
	group int
	// minEntropy, when > 0, is the Shannon entropy in bits per character
	// the secret must reach, to skip placeholders and words.
	minEntropy float64
}

// DefaultMinEntropy is the entropy a generic assignment's value must reach.
const DefaultMinEntropy = 3.5

// Rules returns the built-in rules.
func Rules() []Rule {
	return []Rule{
		{ID: "aws-access-key-id", Description: "AWS access key id",
			re: regexp.MustCompile(`\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z2-7]{16})\b`), group: 1},
		{ID: "github-token", Description: "GitHub token",
			re: regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{36,251})\b`), group: 1},
		{ID: "github-fine-grained-token", Description: "GitHub fine-grained personal access token",
			re: regexp.MustCompile(`\b(github_pat_[A-Za-z0-9_]{60,255})\b`), group: 1},
		{ID: "slack-token", Description: "Slack token",
			re: regexp.MustCompile(`\b(xox[abposr]-[A-Za-z0-9-]{10,250})\b`), group: 1},
		{ID: "slack-webhook", Description: "Slack incoming-webhook URL",
			re: regexp.MustCompile(`(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,})`), group: 1},
		{ID: "private-key", Description: "private key",
			re: regexp.MustCompile(`-----BEGIN (?:RSA |DSA |EC |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----`)},
		{ID: "generic-secret", Description: "high-entropy secret assigned to a credential name",
			re:    regexp.MustCompile(`(?i)(?:^|[^a-z0-9])[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api_?key|access_?key|auth)[a-z0-9_.-]*["']?\s*(?::=|==|=|:)\s*["'\x60]([^"'\x60\s]{8,})["'\x60]`),
			group: 1, minEntropy: DefaultMinEntropy},
	}
}

// Match is one secret found in a line.
type Match struct {
	Rule *Rule
	// Column is the 1-based byte column of the secret.
	Column int
	// Redacted is a safe rendering of the secret ("AKIA****").
	Redacted string
	// fingerprint identifies the secret without holding it.
	Fingerprint string
}

// ScanLine returns the secrets in one line of text.
func ScanLine(rules []Rule, line string) []Match {
	var out []Match
	for i := range rules {
		r := &rules[i]
		for _, m := range r.re.FindAllStringSubmatchIndex(line, -1) {
			start, end := m[2*r.group], m[2*r.group+1]
			if start < 0 {
				continue
			}
			secret := line[start:end]
			if r.minEntropy > 0 && (Entropy(secret) < r.minEntropy || placeholder(secret)) {
				continue
			}
			out = append(out, Match{Rule: r, Column: start + 1, Redacted: Redact(secret), Fingerprint: fingerprint(r.ID, secret)})
		}
	}
	return out
}

// Finding turns a match at file:line into a finding; where says where it
// was seen ("" for the working tree, "commit 1a2b3c4" for history).
func (m Match) Finding(file string, line int, where string) findings.Finding {
	msg := fmt.Sprintf("%s %s", m.Rule.Description, m.Redacted)
	if where != "" {
		msg += " added in " + where
	}
	return findings.Finding{File: file, Line: line, Column: m.Column, Rule: m.Rule.ID, Severity: findings.Error, Message: msg}
}

// Entropy is the Shannon entropy of s in bits per byte.
func Entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c == 0 {
			continue
		}
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}

// placeholder reports values that are references, not secrets:
// ${VAR}, $(cmd), {{ template }}, <changeme>, os.Getenv(...).
func placeholder(s string) bool {
	return strings.ContainsAny(s, "${}<>()") || strings.HasPrefix(strings.ToLower(s), "changeme")
}

// Redact keeps the first four characters of a secret.
func Redact(s string) string {
	if len(s) <= 8 {
		return "****"
	}
	return s[:4] + "****"
}

// fingerprint is a short non-reversible identity for deduplication.
func fingerprint(rule, secret string) string {
	// FNV-1a, 64 bit: enough to tell secrets apart within one scan.
	var h uint64 = 14695981039346656037
	for _, b := range []byte(rule + "\x00" + secret) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return fmt.Sprintf("%016x", h)
}
