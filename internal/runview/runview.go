// Package runview is what a recorded run looks like to a reader: the
// shapes `gantry runs`, `gantry show` and the server's /api/v1/runs
// answer, built once from the store so that the local commands and the
// API (and the CLI talking to a server) show the same thing.
package runview

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// Run is the JSON shape of a run.
type Run struct {
	ID       int64             `json:"id"`
	Pipeline string            `json:"pipeline"`
	Status   store.Status      `json:"status"`
	Message  string            `json:"message,omitempty"`
	Event    string            `json:"event"`
	Branch   string            `json:"branch,omitempty"`
	Base     string            `json:"base,omitempty"`
	SHA      string            `json:"sha,omitempty"`
	Dir      string            `json:"dir"`
	Trigger  string            `json:"trigger,omitempty"`
	Started  time.Time         `json:"started"`
	Finished *time.Time        `json:"finished,omitempty"`
	Duration float64           `json:"duration_seconds,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
}

// NewRun returns the view of r.
func NewRun(r store.Run) Run {
	v := Run{ID: r.ID, Pipeline: r.Pipeline, Status: r.Status, Message: r.Message, Event: r.Event,
		Branch: r.Branch, Base: r.BaseRef, SHA: r.SHA, Dir: r.Dir, Trigger: r.Trigger, Started: r.Started, Params: r.Params}
	if !r.Finished.IsZero() {
		f := r.Finished
		v.Finished = &f
		v.Duration = r.Finished.Sub(r.Started).Seconds()
	}
	return v
}

// Stage is one stage of a shown run.
type Stage struct {
	Name       string       `json:"name"`
	Status     store.Status `json:"status"`
	Message    string       `json:"message,omitempty"`
	Gate       string       `json:"gate,omitempty"`
	GateResult *bool        `json:"gate_passed,omitempty"`
	Duration   float64      `json:"duration_seconds,omitempty"`
	Steps      []Step       `json:"steps"`
}

// Step is one step of a shown run.
type Step struct {
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Status     store.Status   `json:"status"`
	Attempt    int            `json:"attempt,omitempty"`
	Message    string         `json:"message,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	CachedFrom int64          `json:"cached_from,omitempty"`
	Duration   float64        `json:"duration_seconds,omitempty"`
	Outputs    map[string]any `json:"outputs,omitempty"`
	Artifacts  []Artifact     `json:"artifacts,omitempty"`
}

// Artifact is an artifact of a run. Stage and Step are set in lists of
// a whole run's artifacts.
type Artifact struct {
	Stage     string `json:"stage,omitempty"`
	Step      string `json:"step,omitempty"`
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// NewArtifact returns the view of a (with its stage and step).
func NewArtifact(a store.Artifact) Artifact {
	return Artifact{Stage: a.Stage, Step: a.Step, Name: a.Name, Digest: a.Digest, Size: a.Size, MediaType: a.MediaType}
}

// Show is a run with its stages, steps and approvals.
type Show struct {
	Run
	Stages    []Stage    `json:"stages"`
	Approvals []Approval `json:"approvals,omitempty"`
}

// Approval is one approval of a run: for a pending one, what its
// decider is asked to approve now (the image digest, the stage
// verdicts); for a decided one, what its decider was shown.
type Approval struct {
	Stage     string                `json:"stage"`
	Status    string                `json:"status"`
	Roles     []string              `json:"roles,omitempty"`
	Requested time.Time             `json:"requested"`
	Deadline  *time.Time            `json:"deadline,omitempty"`
	Actor     string                `json:"actor,omitempty"`
	Comment   string                `json:"comment,omitempty"`
	Decided   *time.Time            `json:"decided,omitempty"`
	Digest    string                `json:"digest,omitempty"`
	Evidence  []engine.StageVerdict `json:"evidence,omitempty"`
}

// Records is what Load reads from the store.
type Records interface {
	engine.RunRecords
	Artifacts(ctx context.Context, runID int64) ([]store.Artifact, error)
	Approvals(ctx context.Context, runID int64) ([]store.Approval, error)
}

// Load returns the view of run r: its stages in order (with the stages
// of steps recorded without a stage record last, as pending), their
// steps with outputs and artifacts, and its approvals.
func Load(ctx context.Context, src Records, r *store.Run) (*Show, error) {
	id := r.ID
	stages, err := src.Stages(ctx, id)
	if err != nil {
		return nil, err
	}
	steps, err := src.Steps(ctx, id)
	if err != nil {
		return nil, err
	}
	arts, err := src.Artifacts(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &Show{Run: NewRun(*r), Stages: []Stage{}}
	index := map[string]int{}
	for _, st := range stages {
		sv := Stage{Name: st.Name, Status: st.Status, Message: st.Message, Gate: st.Gate, GateResult: st.GateResult, Steps: []Step{}}
		if !st.Finished.IsZero() && !st.Started.IsZero() {
			sv.Duration = st.Finished.Sub(st.Started).Seconds()
		}
		index[st.Name] = len(v.Stages)
		v.Stages = append(v.Stages, sv)
	}
	for _, s := range steps {
		i, ok := index[s.Stage]
		if !ok {
			index[s.Stage] = len(v.Stages)
			i = len(v.Stages)
			v.Stages = append(v.Stages, Stage{Name: s.Stage, Status: store.StatusPending, Steps: []Step{}})
		}
		sj := Step{Name: s.Name, Kind: s.Kind, Status: s.Status, Attempt: s.Attempt, Message: s.Message,
			Summary: s.Summary, CachedFrom: s.CachedFrom, Outputs: s.Outputs}
		if !s.Finished.IsZero() && !s.Started.IsZero() {
			sj.Duration = s.Finished.Sub(s.Started).Seconds()
		}
		for _, art := range arts {
			if art.Stage == s.Stage && art.Step == s.Name {
				sj.Artifacts = append(sj.Artifacts, Artifact{Name: art.Name, Digest: art.Digest, Size: art.Size, MediaType: art.MediaType})
			}
		}
		v.Stages[i].Steps = append(v.Stages[i].Steps, sj)
	}
	if v.Approvals, err = LoadApprovals(ctx, src, id); err != nil {
		return nil, err
	}
	return v, nil
}

// LoadApprovals returns the views of run id's approvals. A pending one
// carries what its decider would be shown now.
func LoadApprovals(ctx context.Context, src Records, id int64) ([]Approval, error) {
	approvals, err := src.Approvals(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []Approval
	for _, ap := range approvals {
		av := Approval{Stage: ap.Stage, Status: ap.Status, Roles: SplitRoles(ap.RequestedRoles), Requested: ap.Requested,
			Actor: ap.Actor, Comment: ap.Comment, Digest: ap.Digest}
		if !ap.Deadline.IsZero() {
			d := ap.Deadline
			av.Deadline = &d
		}
		if !ap.Decided.IsZero() {
			d := ap.Decided
			av.Decided = &d
		}
		if ap.Status == store.ApprovalPending {
			if av.Evidence, av.Digest, err = engine.DeciderView(ctx, src, id); err != nil {
				return nil, err
			}
		} else if ap.Evidence != "" {
			if err := json.Unmarshal([]byte(ap.Evidence), &av.Evidence); err != nil {
				return nil, fmt.Errorf("run %d stage %s: the evidence stored with the approval: %w", id, ap.Stage, err)
			}
		}
		out = append(out, av)
	}
	return out, nil
}

// SplitRoles splits a comma-separated role list, dropping empty names.
func SplitRoles(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// LogLine is one line of a run's log as the API answers it.
type LogLine struct {
	Stage  string    `json:"stage"`
	Step   string    `json:"step"`
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Text   string    `json:"text"`
}

// NewLogLine returns the view of l.
func NewLogLine(l store.LogLine) LogLine {
	return LogLine{Stage: l.Stage, Step: l.Step, Seq: l.Seq, Time: l.Time, Stream: l.Stream, Text: l.Text}
}

// Line returns the store's form of v.
func (v LogLine) Line() store.LogLine {
	return store.LogLine{Stage: v.Stage, Step: v.Step, Seq: v.Seq, Time: v.Time, Stream: v.Stream, Text: v.Text}
}
