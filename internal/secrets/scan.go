package secrets

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
)

// Tool names the secrets report.
const Tool = "gantry-secrets"

// MaxFileSize is the largest file scanned; bigger files are skipped.
const MaxFileSize = 2 << 20

// Scanner scans trees and git history with a rule set.
type Scanner struct {
	// Rules defaults to Rules().
	Rules []Rule
	// Exclude holds doublestar patterns of paths (relative,
	// slash-separated) not scanned, e.g. "**/testdata/**".
	Exclude []string
	// Env is the environment of the git child process (nil: inherit).
	Env []string

	seen map[string]bool
}

func (s *Scanner) rules() []Rule {
	if s.Rules == nil {
		s.Rules = Rules()
	}
	return s.Rules
}

func (s *Scanner) excluded(rel string) bool {
	for _, p := range s.Exclude {
		if ok, _ := doublestar.Match(p, rel); ok {
			return true
		}
	}
	return false
}

// ScanTree scans every text file under dir (skipping .git, vendor,
// node_modules, binary files and files over MaxFileSize) and adds the
// findings to r.
func (s *Scanner) ScanTree(ctx context.Context, dir string, r *findings.Report) error {
	rules := s.rules()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "vendor", "node_modules":
				return filepath.SkipDir
			}
			if rel != "." && s.excluded(rel+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || s.excluded(rel) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > MaxFileSize {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		if bytes.IndexByte(data, 0) >= 0 {
			return nil // binary
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range ScanLine(rules, line) {
				s.seen[m.Fingerprint] = true
				r.Add(m.Finding(rel, i+1, ""))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan %s for secrets: %w", dir, err)
	}
	return nil
}

// ScanHistory scans the lines added by the commits in revRange (a git
// revision range such as "base..head", or one commit) to the files under
// dir (a repository or a directory within one; paths are relative to dir)
// and adds the findings to r. A secret also present in the tree
// scanned before by ScanTree is reported once, for the tree.
func (s *Scanner) ScanHistory(ctx context.Context, dir string, revRange []string, r *findings.Report) error {
	rules := s.rules()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	args := append([]string{"-C", dir, "-c", "core.quotePath=false", "log", "-p", "--no-color", "--no-ext-diff",
		"--no-renames", "--relative", "-U0", "--format=commit %H", "--end-of-options"}, revRange...)
	cmd := proc.Command(ctx, "git", args...)
	cmd.Env = s.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("git log: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start git log: %w", err)
	}
	perr := s.parseLog(out, rules, r)
	if perr != nil {
		_, _ = io.Copy(io.Discard, out) // let git finish writing before waiting
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git log %s: %w: %s", strings.Join(revRange, " "), err, strings.TrimSpace(stderr.String()))
	}
	return perr
}

// parseLog reads `git log -p -U0 --format='commit %H'` output.
func (s *Scanner) parseLog(rd io.Reader, rules []Rule, r *findings.Report) error {
	br := bufio.NewReaderSize(rd, 64<<10)
	var commit, file string
	line := 0
	for {
		t, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("read git log: %w", rerr)
		}
		if rerr == io.EOF && t == "" {
			return nil
		}
		t = strings.TrimSuffix(t, "\n")
		switch {
		case strings.HasPrefix(t, "commit "):
			commit, file = strings.TrimPrefix(t, "commit "), ""
		case strings.HasPrefix(t, "diff --git "):
			file = ""
		case strings.HasPrefix(t, "+++ "):
			p := strings.TrimPrefix(t, "+++ ")
			if p == "/dev/null" {
				file = ""
			} else {
				file = strings.TrimPrefix(p, "b/")
			}
			if file != "" && s.excluded(file) {
				file = ""
			}
		case strings.HasPrefix(t, "@@ "):
			n, err := hunkStart(t)
			if err != nil {
				return fmt.Errorf("commit %s %s: %w", commit, file, err)
			}
			line = n
		case strings.HasPrefix(t, "+") && file != "":
			for _, m := range ScanLine(rules, t[1:]) {
				if s.seen[m.Fingerprint] {
					continue
				}
				s.seen[m.Fingerprint] = true
				f := m.Finding(file, line, "commit "+short(commit))
				r.Add(f)
			}
			line++
		case strings.HasPrefix(t, " "):
			line++
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// hunkStart reads the new-file start line of "@@ -a,b +c,d @@".
func hunkStart(h string) (int, error) {
	i := strings.Index(h, " +")
	if i < 0 {
		return 0, errors.New("malformed hunk header")
	}
	rest := h[i+2:]
	end := strings.IndexAny(rest, ", ")
	if end < 0 {
		return 0, errors.New("malformed hunk header")
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, fmt.Errorf("malformed hunk header: %w", err)
	}
	return n, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
