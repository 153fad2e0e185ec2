package bluegreen

import (
	"fmt"
	"io"
	"strings"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// Progress writes what changes in a rollout's successive statuses, one
// line each: the phase and step, the conditions, each analysis
// measurement and each monitor result as it arrives. The blue-green step
// and `gantry rollout status --watch` both print through it. Text from
// the statuses is made terminal-safe by Clean.
type Progress struct {
	w io.Writer
	// Clean makes a string safe to print (nil: control characters are
	// replaced).
	Clean func(string) string

	phase      runtime.RolloutPhase
	step       runtime.RolloutStep
	conditions map[string]string
	// measured counts the measurements printed per analysis, template
	// and metric.
	measured map[string]int
	monitors map[string]string
}

// NewProgress writes to w.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, conditions: map[string]string{}, measured: map[string]int{}, monitors: map[string]string{}}
}

func (p *Progress) clean(s string) string {
	if p.Clean != nil {
		return p.Clean(s)
	}
	return cleanText(s)
}

// cleanText replaces control characters, so that text from a chart or a
// service cannot drive the terminal.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// Report prints what changed since the previous status.
func (p *Progress) Report(st runtime.RolloutStatus) {
	if st.Phase != p.phase || st.Step != p.step {
		msg := ""
		if st.Message != "" {
			msg = ": " + p.clean(st.Message)
		}
		fmt.Fprintf(p.w, "%s: %s, step %s (revision %d → %d)%s\n", p.clean(st.Environment), st.Phase, st.Step, st.Stable, st.Desired, msg)
		p.phase, p.step = st.Phase, st.Step
	}
	for _, c := range st.Conditions {
		v := c.Status + "/" + c.Reason + "/" + c.Message
		if p.conditions[c.Type] == v {
			continue
		}
		p.conditions[c.Type] = v
		line := fmt.Sprintf("condition %s=%s", p.clean(c.Type), p.clean(c.Status))
		if c.Reason != "" {
			line += " " + p.clean(c.Reason)
		}
		if c.Message != "" {
			line += ": " + p.clean(c.Message)
		}
		fmt.Fprintln(p.w, line)
	}
	for _, a := range st.Analyses {
		for _, run := range a.Runs {
			if run == nil {
				continue
			}
			for _, m := range run.Metrics {
				key := fmt.Sprintf("%s/%d/%s/%s", a.Kind, a.Revision, run.Template, m.Name)
				for i := p.measured[key]; i < len(m.Measurements); i++ {
					fmt.Fprintln(p.w, p.measurement(a, run, m, i))
				}
				p.measured[key] = len(m.Measurements)
			}
		}
	}
	for _, r := range st.Monitors {
		key := r.Monitor + "@" + r.Location
		v := fmt.Sprintf("%v/%d/%s", r.OK, r.Status, r.Message)
		if p.monitors[key] == v {
			continue
		}
		p.monitors[key] = v
		verdict := "ok"
		if !r.OK {
			verdict = "FAILED"
		}
		line := fmt.Sprintf("monitor %s from %s: %s (status %d, %s)", p.clean(r.Monitor), p.clean(r.Location), verdict, r.Status, r.Latency.Round(1e6))
		if r.Message != "" {
			line += ": " + p.clean(r.Message)
		}
		fmt.Fprintln(p.w, line)
	}
}

func (p *Progress) measurement(a runtime.AnalysisStatus, run *analysis.Run, m analysis.MetricResult, i int) string {
	ms := m.Measurements[i]
	line := fmt.Sprintf("analysis %s %s/%s measurement %d: %s", a.Kind, p.clean(run.Template), p.clean(m.Name), i+1, ms.Phase)
	if ms.Value != "" {
		line += " value " + p.clean(ms.Value)
	}
	if ms.Message != "" {
		line += ": " + p.clean(ms.Message)
	}
	return line
}

// Failure describes why a Degraded rollout failed: its message, then
// each failed, errored or inconclusive metric with its measured values,
// and each failing monitor.
func Failure(st runtime.RolloutStatus) string {
	var parts []string
	if st.Message != "" {
		parts = append(parts, cleanText(st.Message))
	}
	for _, a := range st.Analyses {
		for _, run := range a.Runs {
			if run == nil {
				continue
			}
			for _, m := range run.Metrics {
				switch m.Phase {
				case analysis.PhaseFailed, analysis.PhaseError, analysis.PhaseInconclusive, analysis.PhaseStopped:
				default:
					continue
				}
				var values []string
				for _, ms := range m.Measurements {
					v := ms.Value
					if v == "" {
						v = "(" + string(ms.Phase) + ")"
					}
					values = append(values, cleanText(v))
				}
				s := fmt.Sprintf("%s analysis metric %s/%s %s (%d failed of %d)", a.Kind, cleanText(run.Template), cleanText(m.Name), m.Phase, m.Failed, m.Count)
				if len(values) > 0 {
					s += ", measured " + strings.Join(values, ", ")
				}
				if m.Message != "" {
					s += ": " + cleanText(m.Message)
				}
				parts = append(parts, s)
			}
		}
	}
	for _, r := range st.Monitors {
		if !r.OK {
			parts = append(parts, fmt.Sprintf("monitor %s from %s failed (status %d, %s): %s", cleanText(r.Monitor), cleanText(r.Location), r.Status, r.Latency.Round(1e6), cleanText(r.Message)))
		}
	}
	if len(parts) == 0 {
		return "the rollout is Degraded"
	}
	return strings.Join(parts, "; ")
}

// PromoteCommand is the command that ends a pause for manual promotion.
func PromoteCommand(environment string) string {
	return "gantry rollout promote " + environment
}
