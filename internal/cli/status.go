package cli

import (
	"fmt"
	"log/slog"
	"sync"

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
	// stages are the pipeline's stages in order; ended those that
	// reported how they ended in this run.
	stages []string
	mu     sync.Mutex
	ended  map[string]bool
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
	names := make([]string, len(p.Stages))
	for i, st := range p.Stages {
		names[i] = st.Name
	}
	return &statusObserver{r: githubstatus.NewReporter(c, cs.Repository, sha, log), targetURL: cs.TargetURL, stages: names}, nil
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
		s.mu.Lock()
		if s.ended == nil {
			s.ended = map[string]bool{}
		}
		s.ended[e.Stage] = true
		s.mu.Unlock()
		s.r.Report(githubstatus.Status{State: stageState(e), Context: githubstatus.StageContext(e.Stage), Description: desc, TargetURL: s.link()})
	case engine.RunFinished:
		if e.Status != store.StatusCancelled && e.Status != store.StatusInterrupted {
			return
		}
		// The stages after the one the cancellation stopped never
		// reported: mark them, so that no earlier run's success on the
		// same commit stands for them.
		s.mu.Lock()
		defer s.mu.Unlock()
		last := -1
		for i, name := range s.stages {
			if s.ended[name] {
				last = i
			}
		}
		for _, name := range s.stages[last+1:] {
			s.r.Report(githubstatus.Status{State: githubstatus.Error, Context: githubstatus.StageContext(name), Description: "not run: the run was " + string(e.Status), TargetURL: s.link()})
		}
	}
}

// stageState maps how a stage ended to a commit status, so that branch
// protection cannot be satisfied by a stage that never passed: success
// only for a passed stage or one its own when: skipped; failure for a
// failed or rejected stage and one skipped because an earlier stage failed; error for
// a cancelled or interrupted run (and a skip for a reason not known);
// pending while a stage waits for approval.
func stageState(e engine.Event) githubstatus.State {
	switch e.Status {
	case store.StatusPassed:
		return githubstatus.Success
	case store.StatusWaiting:
		return githubstatus.Pending
	case store.StatusFailed, store.StatusRejected:
		return githubstatus.Failure
	case store.StatusSkipped:
		switch e.Skip {
		case engine.SkipWhen:
			return githubstatus.Success
		case engine.SkipAfterFailure:
			return githubstatus.Failure
		}
	}
	return githubstatus.Error
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
