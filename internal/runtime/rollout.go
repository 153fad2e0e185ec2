package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
)

// BlueGreen is the strategy of a blue/green rollout: spec.strategy.blueGreen
// of the chart's Argo Rollout, read unchanged, plus what gantry adds for one
// machine (the share of active traffic sent to green before promotion).
// Durations are Argo's *Seconds fields; a nil pointer is Argo's default.
type BlueGreen struct {
	// ActiveService and PreviewService are the Service names of the
	// Rollout. Active traffic goes to the environment's URL, preview
	// traffic to its preview URL; the names label the instances' metrics
	// (service="NAME", as Prometheus labels a target scraped through a
	// Service) so that the chart's AnalysisTemplate queries find them.
	ActiveService  string `json:"activeService"`
	PreviewService string `json:"previewService,omitempty"`
	// PreviewReplicaCount is how many green instances run before
	// promotion (nil: the workload's replicas).
	PreviewReplicaCount *int `json:"previewReplicaCount,omitempty"`
	// AutoPromotionEnabled false pauses the rollout before the switch
	// until `gantry rollout promote` (Argo's default is true).
	AutoPromotionEnabled bool `json:"autoPromotionEnabled"`
	// AutoPromotionSeconds promotes a paused rollout after this long.
	AutoPromotionSeconds int `json:"autoPromotionSeconds,omitempty"`
	// PrePromotionAnalysis runs against green before the switch,
	// PostPromotionAnalysis after it (while blue is still up).
	PrePromotionAnalysis  *RolloutAnalysis `json:"prePromotionAnalysis,omitempty"`
	PostPromotionAnalysis *RolloutAnalysis `json:"postPromotionAnalysis,omitempty"`
	// ScaleDownDelaySeconds keeps blue running after the switch (Argo's
	// default 30); AbortScaleDownDelaySeconds keeps green after an abort
	// (default 30; 0 keeps it until the next rollout).
	ScaleDownDelaySeconds      *int `json:"scaleDownDelaySeconds,omitempty"`
	AbortScaleDownDelaySeconds *int `json:"abortScaleDownDelaySeconds,omitempty"`
	// ScaleDownDelayRevisionLimit bounds how many old revisions wait out
	// their scale-down delay at once (nil: no bound).
	ScaleDownDelayRevisionLimit *int `json:"scaleDownDelayRevisionLimit,omitempty"`
	// PreviewTraffic sends a subset of active traffic to green before
	// promotion (the seed's "preview traffic routed to green for a subset
	// of requests"); nil sends none.
	PreviewTraffic *TrafficSplit `json:"previewTraffic,omitempty"`
	// Notes say which fields were read and ignored on this runtime
	// (antiAffinity on one machine), for the step to show.
	Notes []string `json:"notes,omitempty"`
}

// TrafficSplit chooses the active requests that go to green before
// promotion: those carrying Header with Value, or (when Header is empty)
// Percent of them.
type TrafficSplit struct {
	Header  string `json:"header,omitempty"`
	Value   string `json:"value,omitempty"`
	Percent int    `json:"percent,omitempty"`
}

// RolloutAnalysis is a prePromotionAnalysis or postPromotionAnalysis: the
// AnalysisTemplates it names, carried by value (as parsed from the rendered
// chart), and the arguments passed to them.
type RolloutAnalysis struct {
	Templates []*analysis.Template `json:"templates"`
	Args      []AnalysisArg        `json:"args,omitempty"`
	// PrometheusURL, when set, replaces the address of every prometheus
	// metric: the chart's in-cluster address means nothing on one machine,
	// so the environment's own Prometheus answers instead.
	PrometheusURL string `json:"prometheusURL,omitempty"`
	// Secrets are the values of the templates' valueFrom.secretKeyRef, by
	// analysis.SecretEnvName (SECRET_<NAME>_<KEY>): the pipeline's
	// secrets the blue-green step lists. They are kept with the rollout
	// (in the state dir's store, as a revision's workload env is) so a
	// restart can measure again, and never shown: RolloutStatus holds no
	// strategy, and the analysis masks every value it resolved.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// AnalysisArg is one argument of a RolloutAnalysis.
type AnalysisArg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Monitor is a synthetic HTTP check run against the active URL after
// promotion, every Interval, from each of its Locations.
type Monitor struct {
	Name   string            `json:"name"`
	Method string            `json:"method"` // default GET
	Path   string            `json:"path"`
	Header map[string]string `json:"header,omitempty"`
	Body   string            `json:"body,omitempty"`
	// Status is the expected status code (default 200).
	Status int `json:"status,omitempty"`
	// JSON assertions on the response body.
	JSON []JSONAssertion `json:"json,omitempty"`
	// Latency is the budget of one check; a slower answer fails it.
	Latency  time.Duration `json:"latency,omitempty"`
	Interval time.Duration `json:"interval"`
	// Locations are the probe agents that run the check ("local" is the
	// serve process itself).
	Locations []string `json:"locations"`
}

// JSONAssertion checks one value of a JSON body: Path is a dotted path
// (items.0.status), Equals the expected JSON value.
type JSONAssertion struct {
	Path   string          `json:"path"`
	Equals json.RawMessage `json:"equals"`
}

// MonitorResult is one check of one monitor from one location.
type MonitorResult struct {
	Monitor  string        `json:"monitor"`
	Location string        `json:"location"`
	At       time.Time     `json:"at"`
	OK       bool          `json:"ok"`
	Status   int           `json:"status,omitempty"`
	Latency  time.Duration `json:"latency"`
	Message  string        `json:"message,omitempty"` // why it failed
}

// LocationLocal is the probe location of the gantry server itself; any
// other location is a probe agent (gantry monitor agent) that reports
// through MonitorAgents.
const LocationLocal = "local"

// MonitorAssignment is what one probe agent checks for one rollout in its
// post-promotion window: the monitors that list the agent's location,
// against URL.
type MonitorAssignment struct {
	Environment string `json:"environment"`
	// Revision is the promoted revision; a result names it, so that a
	// result for an earlier rollout is not counted for this one.
	Revision int `json:"revision"`
	// URL is the environment's active URL as agents reach it.
	URL string `json:"url"`
	// Until is the end of the post-promotion window (the old revision's
	// scale-down deadline).
	Until    time.Time `json:"until"`
	Monitors []Monitor `json:"monitors"`
}

// MonitorReport carries a probe agent's results for one rollout.
type MonitorReport struct {
	Environment string          `json:"environment"`
	Revision    int             `json:"revision"`
	Results     []MonitorResult `json:"results"`
}

// MonitorReportResult says what became of a report: Recorded results
// count; Ignored ones came for a rollout whose post-promotion window is
// over or that another revision replaced (the agent catches up at its
// next poll); Aborted names the environments a failing result aborted.
type MonitorReportResult struct {
	Recorded int `json:"recorded"`
	Ignored  int `json:"ignored"`
	// Failed names the failing results recorded, as ENV/MONITOR.
	Failed  []string `json:"failed,omitempty"`
	Aborted []string `json:"aborted,omitempty"`
}

// MonitorAgents is the optional ability of a Roller to serve probe
// agents on other machines: what they check, and their results, which
// count as the local ones do (the gate and the auto-abort). A result for
// a monitor or location the rollout does not pair is an
// ErrInvalidRequest.
type MonitorAgents interface {
	MonitorAssignments(ctx context.Context, location string) ([]MonitorAssignment, error)
	ReportMonitors(ctx context.Context, location string, reports []MonitorReport) (MonitorReportResult, error)
}

// RolloutRequest asks an environment to roll a new revision out
// blue/green.
type RolloutRequest struct {
	// Deploy carries the workloads, the environment's spec, who and the
	// run, as a plain deploy does.
	Deploy   DeployRequest `json:"deploy"`
	Strategy BlueGreen     `json:"strategy"`
	// Monitors run after promotion; a failing one in the post-promotion
	// window (until blue is scaled down) aborts the rollout.
	Monitors []Monitor `json:"monitors,omitempty"`
}

// RolloutPhase is a rollout's phase as Argo names it.
type RolloutPhase string

// Rollout phases.
const (
	RolloutProgressing RolloutPhase = "Progressing"
	RolloutPaused      RolloutPhase = "Paused"
	RolloutHealthy     RolloutPhase = "Healthy"
	RolloutDegraded    RolloutPhase = "Degraded"
)

// RolloutStep is where a rollout is in Argo's blue/green state machine.
type RolloutStep string

// Rollout steps, in order; Aborted ends a cycle that failed or was
// aborted.
const (
	StepPreview       RolloutStep = "preview"       // green starting, preview URL on green once ready
	StepPrePromotion  RolloutStep = "prePromotion"  // pre-promotion analysis against green
	StepPaused        RolloutStep = "paused"        // waiting for promotion
	StepPostPromotion RolloutStep = "postPromotion" // active on green, post-promotion analysis and monitors
	StepScaleDown     RolloutStep = "scaleDown"     // blue kept until its scale-down deadline
	StepCompleted     RolloutStep = "completed"
	StepAborted       RolloutStep = "aborted"
)

// RolloutCondition is one of Argo's conditions (Progressing, Available,
// Paused, Healthy, ...) with its status and reason.
type RolloutCondition struct {
	Type    string    `json:"type"`
	Status  string    `json:"status"` // True, False, Unknown
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	Changed time.Time `json:"changed"`
}

// AnalysisStatus is one analysis run of a rollout, with its measurements
// as they arrive.
type AnalysisStatus struct {
	// Kind is prePromotion or postPromotion.
	Kind     string          `json:"kind"`
	Revision int             `json:"revision"`
	Runs     []*analysis.Run `json:"runs"` // one per template
	Phase    analysis.Phase  `json:"phase"`
}

// RolloutStatus is a rollout as `gantry rollout status` shows it.
type RolloutStatus struct {
	Environment string       `json:"environment"`
	Phase       RolloutPhase `json:"phase"`
	Step        RolloutStep  `json:"step"`
	Message     string       `json:"message,omitempty"`
	// Stable is the revision the active URL serves (blue before
	// promotion); Desired the revision being rolled out (green). They are
	// equal once a rollout is complete.
	Stable  int    `json:"stable"`
	Desired int    `json:"desired"`
	Digest  string `json:"digest"` // of the desired revision
	// ActiveURL is the environment's URL, PreviewURL its preview URL.
	ActiveURL  string             `json:"activeURL"`
	PreviewURL string             `json:"previewURL,omitempty"`
	Conditions []RolloutCondition `json:"conditions,omitempty"`
	Analyses   []AnalysisStatus   `json:"analyses,omitempty"`
	Monitors   []MonitorResult    `json:"monitors,omitempty"` // the latest per monitor and location
	// PromotedBy is who promoted the rollout (empty for an automatic
	// promotion); AbortedBy who aborted it ("gantry" for an automatic
	// abort).
	PromotedBy string `json:"promotedBy,omitempty"`
	AbortedBy  string `json:"abortedBy,omitempty"`
	// ScaleDownAt is when the old revision's instances stop; PauseUntil
	// when a paused rollout promotes itself (autoPromotionSeconds).
	ScaleDownAt time.Time `json:"scaleDownAt,omitzero"`
	PauseUntil  time.Time `json:"pauseUntil,omitzero"`
	// PromotedAt is when the active URL switched to the desired revision:
	// monitors count from then on (Monitors holds results of this
	// promotion only).
	PromotedAt time.Time `json:"promotedAt,omitzero"`
	Updated    time.Time `json:"updated"`
}

// ErrNoRollout is returned for an environment that has no rollout.
var ErrNoRollout = errors.New("no rollout in this environment")

// ErrRolloutState is wrapped by a verb that the rollout's step does not
// allow (promote a completed rollout, retry one that is not aborted).
var ErrRolloutState = errors.New("not allowed in the rollout's current state")

// Roller runs blue/green rollouts on environments: the serve process
// implements it, and a client over its socket too. Every verb is recorded
// with who asked.
type Roller interface {
	// Rollout admits the image (as Deploy does), records the new revision
	// and the rollout as desired state and starts green; it returns once
	// the cycle has started. An environment with no serving revision is
	// deployed at once and is Healthy, as Argo does for a first rollout.
	Rollout(ctx context.Context, req RolloutRequest) (RolloutStatus, error)
	// Promote ends a pause (full also skips the remaining analysis).
	Promote(ctx context.Context, environment string, full bool, who string) (RolloutStatus, error)
	// Abort sends active traffic back to blue at once and marks the
	// rollout Degraded.
	Abort(ctx context.Context, environment, who, reason string) (RolloutStatus, error)
	// Retry starts an aborted rollout's cycle again, with a fresh
	// analysis.
	Retry(ctx context.Context, environment, who string) (RolloutStatus, error)
	// Undo rolls out the previous revision (toRevision 0) or the given
	// one as a new blue/green cycle, through admission.
	Undo(ctx context.Context, environment string, toRevision int, who string) (RolloutStatus, error)
	RolloutStatus(ctx context.Context, environment string) (RolloutStatus, error)
	// Watch calls f with the rollout's status now and on every change
	// (each measurement, each step) until f returns false or ctx ends.
	Watch(ctx context.Context, environment string, f func(RolloutStatus) bool) error
}
