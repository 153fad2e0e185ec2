// Package evidence turns the gate verdicts of a run into in-toto
// predicates, one predicate type per gate, and checks that an image
// carries the verdicts a deployment requires.
//
// A verdict is recorded per gate, not per step: the lint gate covers every
// lint-like step of the run, the tests gate every go-test step and the
// stage gate (coverage) they feed. The sign step attests them on the image
// digest; `gantry verify --require tests,vuln-scan` demands them.
package evidence

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/step"
)

// TypePrefix starts every gantry evidence predicate type; the gate name and
// a version follow: TypePrefix + "tests/v1".
const TypePrefix = "https://github.com/gantry-ci/gantry/attestations/"

// PredicateType returns the predicate type of gate.
func PredicateType(gate string) string { return TypePrefix + gate + "/v1" }

// GateOf returns the gate a predicate type records, or "".
func GateOf(predicateType string) string {
	rest, ok := strings.CutPrefix(predicateType, TypePrefix)
	if !ok {
		return ""
	}
	gate, _, _ := strings.Cut(rest, "/")
	return gate
}

// Verdicts, from best to worst.
const (
	Pass = "pass"
	// AllowedFailure: every step passed except ones that failed with
	// `allow_failure: true`. It is not a pass: Check refuses it unless
	// the caller accepts allowed failures.
	AllowedFailure = "allowed-failure"
	Fail           = "fail"
)

// worse returns the worse of two verdicts.
func worse(a, b string) string {
	rank := map[string]int{Pass: 0, AllowedFailure: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// stepGates are the gates step kinds attest (step.Kind.Gate), in
// pipeline order.
var stepGates = []string{"lint", "commit-messages", "tests", "vuln-scan", "sast", "licenses", "sbom"}

// Gates lists the gate names, in pipeline order; the approval gate last.
func Gates() []string {
	return append(slices.Clip(stepGates), GateApproval)
}

// Predicate is one gate's verdict on an image.
type Predicate struct {
	Gate string `json:"gate"`
	// Verdict is pass or fail.
	Verdict string `json:"verdict"`
	Run     Run    `json:"run"`
	// Stages are the stage gates the steps fed, when they had ended.
	Stages []Stage `json:"stages,omitempty"`
	// Steps are the steps of the gate's kinds, with their key figures
	// (outputs).
	Steps []Step `json:"steps"`
	// Exceptions lists the risk exceptions the steps applied.
	Exceptions []string `json:"exceptions,omitempty"`
	// Approvals are the granted approvals (the approval gate).
	Approvals []Approval `json:"approvals,omitempty"`
}

// Run identifies the run that reached the verdict.
type Run struct {
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	Commit   string `json:"commit,omitempty"`
	Branch   string `json:"branch,omitempty"`
	// Time is when the predicate was written (RFC 3339, UTC).
	Time string `json:"time"`
}

// Stage is a stage gate.
type Stage struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Gate is the gate expression; GatePassed its verdict.
	Gate       string `json:"gate,omitempty"`
	GatePassed *bool  `json:"gate_passed,omitempty"`
}

// Step is one step's outcome.
type Step struct {
	Stage   string `json:"stage"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Summary string `json:"summary,omitempty"`
	Message string `json:"message,omitempty"`
	// AllowFailure is set when the step may fail without failing its
	// stage (`allow_failure: true`).
	AllowFailure bool           `json:"allow_failure,omitempty"`
	Figures      map[string]any `json:"figures,omitempty"`
}

// Collect returns the predicate of every gate that has steps in view, in
// pipeline order. A gate passes when each of its steps passed (or was
// cached) and each stage gate they fed, once decided, passed. When the
// only steps that did not pass failed with allow_failure, the verdict is
// AllowedFailure, and those steps are marked so in the predicate.
func Collect(view step.RunView, run Run, now time.Time) []Predicate {
	run.Pipeline = view.Pipeline
	run.Time = now.UTC().Format(time.RFC3339)
	byGate := map[string]*Predicate{}
	for _, st := range view.Stages {
		for _, s := range st.Steps {
			gate := s.Gate
			if gate == "" {
				continue
			}
			p := byGate[gate]
			if p == nil {
				p = &Predicate{Gate: gate, Verdict: Pass, Run: run}
				byGate[gate] = p
			}
			p.Steps = append(p.Steps, Step{Stage: st.Name, Name: s.Name, Kind: s.Kind, Status: s.Status, Summary: s.Summary, Message: s.Message, AllowFailure: s.AllowFailure, Figures: s.Outputs})
			p.Verdict = worse(p.Verdict, stepVerdict(s))
			p.Exceptions = append(p.Exceptions, exceptionsOf(s.Outputs)...)
			if len(p.Stages) == 0 || p.Stages[len(p.Stages)-1].Name != st.Name {
				p.Stages = append(p.Stages, Stage{Name: st.Name, Status: st.Status, Gate: st.Gate, GatePassed: st.GatePassed})
				if st.GatePassed != nil && !*st.GatePassed {
					p.Verdict = Fail
				}
			}
		}
	}
	var out []Predicate
	for _, g := range Gates() {
		if p := byGate[g]; p != nil {
			sort.Strings(p.Exceptions)
			p.Exceptions = slices.Compact(p.Exceptions)
			out = append(out, *p)
		}
	}
	if p := approvalPredicate(view, run); p != nil {
		out = append(out, *p)
	}
	return out
}

func stepVerdict(s step.StepView) string {
	switch {
	case s.Status == "passed" || s.Status == "cached":
		return Pass
	case s.Status == "failed" && s.AllowFailure:
		return AllowedFailure
	}
	return Fail
}

// exceptionsOf reads a step's `exceptions` output: the IDs of the risk
// exceptions it applied.
func exceptionsOf(outputs map[string]any) []string {
	list, _ := outputs["exceptions"].([]any)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	if l, ok := outputs["exceptions"].([]string); ok {
		out = append(out, l...)
	}
	return out
}

// Check failures.
var (
	// ErrMissing: no attestation of a required gate verified.
	ErrMissing = errors.New("required evidence missing")
	// ErrFailing: a required gate's verdict is not pass.
	ErrFailing = errors.New("required evidence failing")
	// ErrAllowedFailure: a required gate's verdict is AllowedFailure and
	// the caller did not accept allowed failures. It wraps ErrFailing.
	ErrAllowedFailure = fmt.Errorf("%w: a step failed with allow_failure", ErrFailing)
)

// CheckOptions adjust Check.
type CheckOptions struct {
	// AcceptAllowedFailures counts an AllowedFailure verdict as passing
	// (default: refused).
	AcceptAllowedFailures bool
}

// Verdict is a verified gate verdict.
type Verdict struct {
	Gate    string `json:"gate"`
	Verdict string `json:"verdict"`
	RunID   string `json:"run_id"`
	Time    string `json:"time"`
}

// Check reads the verified attestations of an image and returns the
// verdict of each required gate. It fails, naming every gate concerned,
// when a required gate has no verified attestation (wrapping ErrMissing,
// or the signing error that rejected one: wrong key, altered, another
// digest) or its latest verdict is not pass (ErrFailing; ErrAllowedFailure
// for an AllowedFailure verdict unless opts accept it).
func Check(atts []signing.Attestation, require []string, opts CheckOptions) ([]Verdict, error) {
	known := Gates()
	for _, g := range require {
		if !slices.Contains(known, g) {
			return nil, fmt.Errorf("unknown gate %q in --require; gates are %s", g, strings.Join(known, ", "))
		}
	}
	found, rejected := latest(atts)
	var out []Verdict
	var errs []error
	for _, g := range require {
		v, ok := found[g]
		switch {
		case !ok && rejected[g] != nil:
			errs = append(errs, fmt.Errorf("%s: %w", g, rejected[g]))
		case !ok:
			errs = append(errs, fmt.Errorf("%w: %s: no signed %s attestation on the image", ErrMissing, g, PredicateType(g)))
		case v.Verdict == AllowedFailure && !opts.AcceptAllowedFailures:
			out = append(out, v)
			errs = append(errs, fmt.Errorf("%w: %s: verdict %q (run %s)", ErrAllowedFailure, g, v.Verdict, v.RunID))
		case v.Verdict != Pass && (v.Verdict != AllowedFailure || !opts.AcceptAllowedFailures):
			out = append(out, v)
			errs = append(errs, fmt.Errorf("%w: %s: verdict %q (run %s)", ErrFailing, g, v.Verdict, v.RunID))
		default:
			out = append(out, v)
		}
	}
	return out, errors.Join(errs...)
}

// latest returns, for each gate attested in atts, the newest verdict of
// the attestations that verified, and the reason one was rejected.
func latest(atts []signing.Attestation) (found map[string]Verdict, rejected map[string]error) {
	found, rejected = map[string]Verdict{}, map[string]error{}
	for _, a := range atts {
		gate := GateOf(a.PredicateType)
		if gate == "" {
			continue
		}
		if a.Err != nil {
			rejected[gate] = a.Err
			continue
		}
		p, err := decode(a.Statement.Predicate)
		if err != nil {
			rejected[gate] = fmt.Errorf("%w: %s: %v", signing.ErrTampered, gate, err)
			continue
		}
		v := Verdict{Gate: gate, Verdict: p.Verdict, RunID: p.Run.ID, Time: p.Run.Time}
		if prev, ok := found[gate]; !ok || v.Time > prev.Time {
			found[gate] = v
		}
	}
	return found, rejected
}
