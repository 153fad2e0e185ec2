package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
)

// ErrNoPipeline is returned by Fetcher.DefaultPipeline when the default
// branch has no pipeline file.
var ErrNoPipeline = errors.New("no pipeline file on the default branch")

// Fetcher brings commits of repositories onto this machine with git. It
// only ever passes values to git after "--" or in positions git cannot
// read as an option, restricts git to the transports it allows
// (GIT_ALLOW_PROTOCOL) and never runs a shell.
type Fetcher struct {
	// Git is the git binary (default "git").
	Git string
	// SSHKey is a deploy key file for ssh repositories; KnownHosts the
	// known_hosts file their host keys are checked against (required
	// with SSHKey: host keys are always checked).
	SSHKey, KnownHosts string
	// AllowLocal permits local paths and file:// repositories.
	AllowLocal bool
	// CacheDir holds one bare repository per remote, used to read the
	// default branch's pipeline file.
	CacheDir string

	mu    sync.Mutex
	files map[string]*branchFile
}

func (f *Fetcher) git() string {
	if f.Git == "" {
		return "git"
	}
	return f.Git
}

// env is the environment of every git command.
func (f *Fetcher) env() []string {
	protos := "https:ssh"
	if f.AllowLocal {
		protos += ":file"
	}
	env := append(os.Environ(),
		"GIT_ALLOW_PROTOCOL="+protos,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
	)
	if f.SSHKey != "" {
		env = append(env, "GIT_SSH_COMMAND="+sshCommand(f.SSHKey, f.KnownHosts))
	}
	return env
}

// sshCommand is the GIT_SSH_COMMAND of a deploy key: only that key, host
// keys checked against knownHosts. Paths come from the server's
// configuration; they are single-quoted for the shell git runs it with.
func sshCommand(key, knownHosts string) string {
	return "ssh -i " + shQuote(key) + " -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + shQuote(knownHosts) + " -o BatchMode=yes"
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// run runs git with args in dir and returns its standard output; the
// error carries its standard error.
func (f *Fetcher) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := proc.Command(ctx, f.git(), args...)
	cmd.Dir = dir
	cmd.Env = f.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	return out.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (f *Fetcher) check(repo string) error {
	if err := CheckRepo(repo, f.AllowLocal); err != nil {
		return err
	}
	if f.SSHKey != "" && f.KnownHosts == "" {
		return errors.New("an ssh deploy key needs a known_hosts file (host keys are always checked)")
	}
	return nil
}

// Fetch puts commit sha of repo, checked out (detached), into dir, which
// must not exist or be empty. Only that commit is fetched (depth 1).
func (f *Fetcher) Fetch(ctx context.Context, repo, sha, dir string) error {
	if err := f.check(repo); err != nil {
		return err
	}
	if err := CheckSHA(sha); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fetch %s: create the workspace: %w", sha, err)
	}
	format := "sha1"
	if len(sha) == 64 {
		format = "sha256"
	}
	steps := [][]string{
		{"init", "-q", "--object-format=" + format, "."},
		{"fetch", "-q", "--no-tags", "--no-recurse-submodules", "--depth=1", "--", repo, sha},
		{"-c", "advice.detachedHead=false", "checkout", "-q", "--detach", sha},
	}
	for _, args := range steps {
		if _, err := f.run(ctx, dir, args...); err != nil {
			return fmt.Errorf("fetch %s of %s: %w", sha, repo, err)
		}
	}
	head, err := f.run(ctx, dir, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return fmt.Errorf("fetch %s of %s: %w", sha, repo, err)
	}
	if got := strings.TrimSpace(string(head)); got != sha {
		return fmt.Errorf("fetch %s of %s: checked out %s instead", sha, repo, got)
	}
	return nil
}

// DefaultPipeline returns the bytes of file (a path inside the
// repository) on branch of repo, fetched into the bare repository the
// fetcher keeps for repo. ErrNoPipeline when the branch has no such file.
//
// Every answer comes from a fetch that started after the call: calls
// that arrive while a fetch of the same branch runs wait for the next
// one, and calls that arrived before a fetch started share its result,
// so a burst of deliveries costs about two fetches.
func (f *Fetcher) DefaultPipeline(ctx context.Context, repo, branch, file string) ([]byte, error) {
	arrived := time.Now()
	if err := f.check(repo); err != nil {
		return nil, err
	}
	if err := CheckBranch(branch); err != nil {
		return nil, err
	}
	if f.CacheDir == "" {
		return nil, errors.New("read the default branch's pipeline: the fetcher has no cache dir")
	}
	sum := sha256.Sum256([]byte(repo))
	dir := filepath.Join(f.CacheDir, hex.EncodeToString(sum[:8])+".git")
	// One read at a time per bare repository (git locks its refs).
	c := f.cache(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.After(arrived) && c.branch == branch && c.file == file {
		return c.data, c.err
	}
	c.started, c.branch, c.file = time.Now(), branch, file
	c.data, c.err = f.readBranchFile(ctx, repo, dir, branch, file)
	if ctx.Err() != nil {
		// A cancelled caller's failure is not an answer for the others.
		c.started = time.Time{}
	}
	return c.data, c.err
}

func (f *Fetcher) readBranchFile(ctx context.Context, repo, dir, branch, file string) ([]byte, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("read the default branch's pipeline: %w", err)
		}
		if _, err := f.run(ctx, dir, "init", "-q", "--bare", "."); err != nil {
			return nil, fmt.Errorf("read the default branch's pipeline of %s: %w", repo, err)
		}
	}
	ref := "refs/heads/" + branch
	if _, err := f.run(ctx, dir, "fetch", "-q", "--no-tags", "--depth=1", "--", repo, "+"+ref+":"+ref); err != nil {
		return nil, fmt.Errorf("read the default branch's pipeline of %s: %w", repo, err)
	}
	if _, err := f.run(ctx, dir, "cat-file", "-e", ref+":"+file); err != nil {
		return nil, fmt.Errorf("%s on %s of %s: %w", file, branch, repo, ErrNoPipeline)
	}
	b, err := f.run(ctx, dir, "cat-file", "blob", ref+":"+file)
	if err != nil {
		return nil, fmt.Errorf("read %s on %s of %s: %w", file, branch, repo, err)
	}
	return b, nil
}

// branchFile is the last read of a file of a branch of one repository.
type branchFile struct {
	mu           sync.Mutex
	started      time.Time
	branch, file string
	data         []byte
	err          error
}

func (f *Fetcher) cache(key string) *branchFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.files == nil {
		f.files = map[string]*branchFile{}
	}
	c, ok := f.files[key]
	if !ok {
		c = &branchFile{}
		f.files[key] = c
	}
	return c
}
