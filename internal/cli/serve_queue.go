package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/webhook"
)

// serverQueue is what gantry serve adds for runs: the queue (Run it), its
// API endpoints and, with a webhook secret, the webhook receiver.
type serverQueue struct {
	q        *queue.Queue
	api      http.Handler
	webhooks http.Handler
	log      *slog.Logger
}

// newServerQueue wires the run queue of stateDir over st: the fetcher
// (workspaces under STATE_DIR/workspaces, default branches cached under
// STATE_DIR/repos), the workers (child gantry run processes of this
// binary on the same state dir) and the webhook receiver.
func newServerQueue(stateDir string, st *store.Store, o *options.ServeQueue, logger *slog.Logger) (*serverQueue, error) {
	f := &queue.Fetcher{SSHKey: o.SSHKey, KnownHosts: o.KnownHosts, AllowLocal: o.AllowLocalRepos, CacheDir: filepath.Join(stateDir, "repos")}
	var repos []webhook.Repository
	var urls []string
	branches := map[string]string{}
	for _, v := range o.Repos {
		url, branch := options.Repo(v)
		if err := queue.CheckRepo(url, o.AllowLocalRepos); err != nil {
			return nil, fmt.Errorf("--repo: %w", err)
		}
		if err := queue.CheckBranch(branch); err != nil {
			return nil, fmt.Errorf("--repo %s: default branch: %w", url, err)
		}
		repos = append(repos, webhook.Repository{URL: url, DefaultBranch: branch})
		urls = append(urls, url)
		branches[url] = branch
	}
	q, err := queue.New(queue.Config{Store: st, StateDir: stateDir, Workers: o.Workers, Lease: o.Lease, KeepFailed: o.KeepFailed,
		Fetcher: f, DefaultBranches: branches, Logger: logger.With("component", "queue")})
	if err != nil {
		return nil, err
	}
	sq := &serverQueue{q: q, api: q.HTTP(urls, logger), log: logger}
	if o.WebhookSecretFile != "" {
		secrets, err := webhook.ReadSecrets(o.WebhookSecretFile)
		if err != nil {
			return nil, err
		}
		sq.webhooks, err = webhook.New(webhook.Config{Secrets: secrets, Repositories: repos, Deliveries: st, Queue: q, Pipelines: f,
			Logger: logger.With("component", "webhooks")})
		if err != nil {
			return nil, err
		}
	}
	return sq, nil
}

// run executes the queue until ctx ends (serve.Config.Background).
func (s *serverQueue) run(ctx context.Context) {
	if err := s.q.Run(ctx); err != nil {
		s.log.Error("the run queue stopped", "err", err)
	}
}
