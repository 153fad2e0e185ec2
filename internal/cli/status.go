package cli

import (
	"fmt"
	"log/slog"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/notify/githubstatus"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

// statusObserver posts a commit status per stage as the run goes.
type statusObserver struct {
	r         *githubstatus.Reporter
	targetURL string
	runID     int64
}

var _ engine.Observer = (*statusObserver)(nil)

// newStatusObserver returns nil when the pipeline posts no statuses. A
// configured but empty token turns statuses off with a warning rather than
// failing the run.
func newStatusObserver(p *spec.Pipeline, dir, sha string, log *slog.Logger) (*statusObserver, error) {
	cs := p.CommitStatus
	if cs == nil {
		return nil, nil
	}
	if sha == "" {
		log.Warn("commit statuses are off: the workspace has no commit")
		return nil, nil
	}
	secrets, err := spec.ResolveSecrets(p, dir)
	if err != nil {
		return nil, err
	}
	token := secrets[cs.Token]
	if token == "" {
		log.Warn("commit statuses are off: secret is empty", "secret", cs.Token)
		return nil, nil
	}
	var opts []githubstatus.Option
	if cs.APIURL != "" {
		opts = append(opts, githubstatus.WithBaseURL(cs.APIURL))
	}
	c, err := githubstatus.New(token, opts...)
	if err != nil {
		return nil, fmt.Errorf("commit statuses: %w", err)
	}
	return &statusObserver{r: githubstatus.NewReporter(c, cs.Repository, sha, log), targetURL: cs.TargetURL}, nil
}

func (s *statusObserver) link() string {
	if s.targetURL == "" {
		return ""
	}
	t, err := expression.ParseTemplate(s.targetURL)
	if err != nil {
		return ""
	}
	out, err := t.EvalString(map[string]any{"run": map[string]any{"id": s.runID}})
	if err != nil {
		return ""
	}
	return out
}

// Observe implements engine.Observer.
func (s *statusObserver) Observe(e engine.Event) {
	switch e.Type {
	case engine.RunStarted:
		s.runID = e.RunID
	case engine.StageStarted:
		s.r.StageStarted(e.Stage, s.link())
	case engine.StageFinished:
		desc := string(e.Status)
		if e.Message != "" {
			desc += ": " + e.Message
		}
		switch e.Status {
		case store.StatusPassed, store.StatusSkipped:
			s.r.StageFinished(e.Stage, true, desc, s.link())
		case store.StatusAwaitingApproval:
			s.r.Report(githubstatus.Status{State: githubstatus.Pending, Context: githubstatus.StageContext(e.Stage), Description: desc, TargetURL: s.link()})
		default:
			s.r.StageFinished(e.Stage, false, desc, s.link())
		}
	}
}

// Close waits until every status is posted.
func (s *statusObserver) Close() { s.r.Close() }

// observers fans events out to several observers.
type observers []engine.Observer

func (o observers) Observe(e engine.Event) {
	for _, x := range o {
		x.Observe(e)
	}
}
