package queue

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrInvalid is what every refusal of an attacker-written value (branch,
// SHA, repository URL) wraps.
var ErrInvalid = errors.New("invalid value")

var shaRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// CheckSHA accepts a full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase
// hex digits.
func CheckSHA(sha string) error {
	if !shaRE.MatchString(sha) {
		return fmt.Errorf("commit %q: want 40 or 64 lowercase hex digits: %w", clip(sha), ErrInvalid)
	}
	return nil
}

// CheckBranch accepts a branch name by git check-ref-format's rules (as
// `git check-ref-format --branch`), and refuses a leading "-" so that the
// name can never be read as an option.
func CheckBranch(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("branch %q: %s: %w", clip(name), why, ErrInvalid)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 255:
		return bad("longer than 255 bytes")
	case name == "@":
		return bad(`"@" is not a branch name`)
	case strings.HasPrefix(name, "-"):
		return bad(`starts with "-"`)
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return bad(`starts or ends with "/"`)
	case strings.HasSuffix(name, "."):
		return bad(`ends with "."`)
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	case strings.Contains(name, "//"):
		return bad(`contains "//"`)
	case strings.Contains(name, "@{"):
		return bad(`contains "@{"`)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return bad(fmt.Sprintf("contains %q", r))
		}
	}
	for _, c := range strings.Split(name, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return bad(`a component starts with "." or ends with ".lock"`)
		}
	}
	return nil
}

// BranchOfRef returns the branch of a "refs/heads/NAME" ref, checked with
// CheckBranch.
func BranchOfRef(ref string) (string, error) {
	name, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return "", fmt.Errorf("ref %q is not a branch (refs/heads/...): %w", clip(ref), ErrInvalid)
	}
	return name, CheckBranch(name)
}

// CheckRepo accepts the address of a repository gantry may fetch from:
// https://, ssh:// or scp-like user@host:path, and, when local is true, an
// absolute local path or a file:// URL. Everything else is refused: other
// transports (ext::, fd::, git://, http://), anything starting with "-",
// whitespace and control characters.
func CheckRepo(repo string, local bool) error {
	bad := func(why string) error {
		return fmt.Errorf("repository %q: %s: %w", clip(repo), why, ErrInvalid)
	}
	if repo == "" {
		return bad("empty")
	}
	if strings.HasPrefix(repo, "-") {
		return bad(`starts with "-"`)
	}
	for _, r := range repo {
		if r <= 0x20 || r == 0x7f {
			return bad("contains whitespace or a control character")
		}
	}
	if strings.Contains(repo, "::") {
		return bad("git transport helpers (ext::, fd::) are not allowed")
	}
	if filepath.IsAbs(repo) {
		if !local {
			return bad("local paths are not allowed here")
		}
		return nil
	}
	if u, err := url.Parse(repo); err == nil && u.Scheme != "" {
		switch u.Scheme {
		case "https", "ssh":
			if u.Host == "" || strings.HasPrefix(u.Host, "-") {
				return bad("no host")
			}
			return nil
		case "file":
			if !local {
				return bad("file:// is not allowed here")
			}
			return nil
		}
		return bad(fmt.Sprintf("scheme %q is not allowed (https, ssh)", u.Scheme))
	}
	// scp-like: [user@]host:path
	host, path, ok := strings.Cut(repo, ":")
	if ok && host != "" && path != "" && !strings.Contains(host, "/") {
		if _, h, _ := strings.Cut(host, "@"); strings.HasPrefix(h, "-") || strings.HasPrefix(host, "-") {
			return bad(`host starts with "-"`)
		}
		return nil
	}
	return bad("want https://, ssh:// or user@host:path")
}

// SameRepo reports whether two repository addresses name the same
// repository: equal after dropping a trailing "/" and ".git" and
// lower-casing the host.
func SameRepo(a, b string) bool {
	return normRepo(a) == normRepo(b)
}

func normRepo(s string) string {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		u.Host = strings.ToLower(u.Host)
		return u.String()
	}
	return s
}

// clip bounds a refused value quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
