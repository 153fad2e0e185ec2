package options

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// ServeQueue holds gantry serve's flags for triggers and the run queue.
type ServeQueue struct {
	// Workers is how many runs the server executes at once.
	Workers int
	// Repos are the repositories the server builds: URL or URL#BRANCH
	// (the default branch, whose pipeline file's on: decides; main).
	Repos []string
	// WebhookSecretFile holds the webhooks' HMAC secret(s); webhooks are
	// served only with it.
	WebhookSecretFile string
	// AllowLocalRepos permits local paths and file:// repositories.
	AllowLocalRepos bool
	// SSHKey and KnownHosts: the deploy key of ssh repositories and the
	// known_hosts file their host keys are checked against.
	SSHKey, KnownHosts string
	// KeepFailed is how long failed runs' workspaces are kept.
	KeepFailed time.Duration
	// Lease is how long a worker's claim on a run lasts unrenewed.
	Lease time.Duration
}

// AddFlags registers the flags.
func (o *ServeQueue) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Workers, "workers", 1, "runs this server executes at once")
	fs.StringArrayVar(&o.Repos, "repo", nil, "repository the server builds: `URL` (https://, ssh://, user@host:path) or URL#BRANCH to name its default branch (default main); repeatable")
	fs.StringVar(&o.WebhookSecretFile, "webhook-secret-file", "", "file (mode 0600) holding the webhooks' HMAC secret, one per line; enables /webhooks/github and /webhooks/gitea on the TCP listener")
	fs.BoolVar(&o.AllowLocalRepos, "allow-local-repos", false, "allow local paths and file:// repositories (--repo, and gantry run --server from this machine's owner)")
	fs.StringVar(&o.SSHKey, "ssh-key", "", "deploy key `file` for ssh repositories")
	fs.StringVar(&o.KnownHosts, "ssh-known-hosts", "", "known_hosts `file` the ssh repositories' host keys are checked against (required with --ssh-key)")
	fs.DurationVar(&o.KeepFailed, "keep-failed", 24*time.Hour, "how long the workspace of a failed or interrupted run is kept for inspection")
	fs.DurationVar(&o.Lease, "lease", 30*time.Second, "how long a worker's claim on a run lasts without renewal; a run whose server stopped renewing it becomes interrupted")
}

// Validate checks the flags.
func (o *ServeQueue) Validate() error {
	if o.Workers < 1 {
		return fmt.Errorf("--workers %d: want at least 1", o.Workers)
	}
	if o.WebhookSecretFile != "" && len(o.Repos) == 0 {
		return errors.New("--webhook-secret-file needs at least one --repo: deliveries of other repositories are refused")
	}
	if (o.SSHKey == "") != (o.KnownHosts == "") {
		return errors.New("--ssh-key and --ssh-known-hosts go together: host keys are always checked")
	}
	if o.Lease < 3*time.Second {
		return fmt.Errorf("--lease %s: want at least 3s", o.Lease)
	}
	for _, r := range o.Repos {
		if strings.TrimSpace(r) == "" {
			return errors.New("--repo: empty")
		}
	}
	return nil
}

// Repo splits a --repo value into its URL and default branch.
func Repo(v string) (url, branch string) {
	url, branch, _ = strings.Cut(v, "#")
	if branch == "" {
		branch = "main"
	}
	return url, branch
}
