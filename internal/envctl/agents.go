package envctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// This file serves probe agents on other machines (gantry monitor agent):
// what they check, and their results, recorded in the same status field
// as the local monitors' and feeding the same gate and auto-abort.

var _ runtime.MonitorAgents = (*Controller)(nil)

// Bounds of one report, against a greedy or broken agent.
const (
	maxReports       = 64
	maxReportResults = 256
	maxResultMessage = 2048
)

// inWindow says whether the record is in its post-promotion window: the
// active URL on the desired revision, the old revision not yet scaled
// down.
func inWindow(r *record) bool {
	return r != nil && (r.Status.Step == runtime.StepPostPromotion || r.Status.Step == runtime.StepScaleDown)
}

// assigned returns the monitors of r that run from location.
func assigned(r *record, location string) []runtime.Monitor {
	var out []runtime.Monitor
	for _, m := range r.Monitors {
		if slices.Contains(m.Locations, location) {
			out = append(out, m)
		}
	}
	return out
}

// MonitorAssignments implements runtime.MonitorAgents: for every
// environment whose rollout is in its post-promotion window, the monitors
// that list location, with the URL agents check.
func (c *Controller) MonitorAssignments(ctx context.Context, location string) ([]runtime.MonitorAssignment, error) {
	if location == runtime.LocationLocal {
		return nil, fmt.Errorf("%w: location %q is the gantry server itself; an agent needs a name of its own", runtime.ErrInvalidRequest, location)
	}
	envs, err := c.cfg.Store.Environments(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor assignments: %w", err)
	}
	out := []runtime.MonitorAssignment{}
	for _, e := range envs {
		en, err := c.env(e)
		if err != nil {
			return nil, err
		}
		r, _, err := c.load(ctx, en)
		if err != nil {
			return nil, fmt.Errorf("monitor assignments: %w", err)
		}
		if !inWindow(r) {
			continue
		}
		ms := assigned(r, location)
		if len(ms) == 0 {
			continue
		}
		out = append(out, runtime.MonitorAssignment{Environment: en.name, Revision: r.Status.Desired,
			URL: c.agentURL(en), Until: r.Status.ScaleDownAt, Monitors: ms})
	}
	return out, nil
}

// agentURL is the URL agents check for en.
func (c *Controller) agentURL(en *env) string {
	if u := c.cfg.AgentURLs[en.name]; u != "" {
		return u
	}
	return c.url(en.port)
}

// ReportMonitors implements runtime.MonitorAgents. Every result must name
// a monitor of the rollout that lists location, else the whole report is
// refused (ErrInvalidRequest) and nothing is recorded. A result for a
// rollout that is no longer in its post-promotion window, or for another
// revision, is ignored. A failing result in the window aborts the rollout,
// as a failing local monitor does.
func (c *Controller) ReportMonitors(ctx context.Context, location string, reports []runtime.MonitorReport) (runtime.MonitorReportResult, error) {
	var res runtime.MonitorReportResult
	if location == runtime.LocationLocal {
		return res, fmt.Errorf("%w: location %q is the gantry server itself; an agent reports under a name of its own", runtime.ErrInvalidRequest, location)
	}
	if len(reports) > maxReports {
		return res, fmt.Errorf("%w: %d reports in one request, at most %d", runtime.ErrInvalidRequest, len(reports), maxReports)
	}
	type target struct {
		en  *env
		rep runtime.MonitorReport
	}
	var targets []target
	seen := map[string]bool{}
	for i, rep := range reports {
		where := fmt.Sprintf("reports[%d]", i)
		switch {
		case seen[rep.Environment]:
			return res, fmt.Errorf("%w: %s: environment %q is reported twice", runtime.ErrInvalidRequest, where, rep.Environment)
		case len(rep.Results) == 0:
			return res, fmt.Errorf("%w: %s: no results", runtime.ErrInvalidRequest, where)
		case len(rep.Results) > maxReportResults:
			return res, fmt.Errorf("%w: %s: %d results, at most %d", runtime.ErrInvalidRequest, where, len(rep.Results), maxReportResults)
		}
		seen[rep.Environment] = true
		en, err := c.envFor(ctx, rep.Environment)
		if err != nil {
			if errors.Is(err, runtime.ErrNoRollout) {
				return res, fmt.Errorf("%w: %s: %w", runtime.ErrInvalidRequest, where, err)
			}
			return res, err
		}
		r, _, err := c.load(ctx, en)
		if err != nil {
			return res, err
		}
		if r == nil {
			return res, fmt.Errorf("%w: %s: environment %s has no rollout", runtime.ErrInvalidRequest, where, rep.Environment)
		}
		for j, mr := range rep.Results {
			if err := checkResult(r, location, mr); err != nil {
				return res, fmt.Errorf("%w: %s.results[%d]: environment %s: %v", runtime.ErrInvalidRequest, where, j, rep.Environment, err)
			}
		}
		targets = append(targets, target{en, rep})
	}
	for _, t := range targets {
		n, names, failed, cycle, err := c.recordAgent(ctx, t.en, location, t.rep)
		if err != nil {
			return res, err
		}
		res.Recorded += n
		res.Failed = append(res.Failed, names...)
		res.Ignored += len(t.rep.Results) - n
		if failed == "" {
			continue
		}
		err = c.autoAbort(t.en, &record{Cycle: cycle}, failed)
		switch {
		case errors.Is(err, errStale):
		case err != nil:
			return res, fmt.Errorf("abort the rollout of %s: %w", t.en.name, err)
		default:
			res.Aborted = append(res.Aborted, t.en.name)
		}
	}
	return res, nil
}

// checkResult checks one agent result against the rollout r: its monitor
// must be the rollout's and list location.
func checkResult(r *record, location string, mr runtime.MonitorResult) error {
	switch {
	case mr.Location != "" && mr.Location != location:
		return fmt.Errorf("result from location %q in a report of %q", mr.Location, location)
	case mr.Monitor == "":
		return errors.New("no monitor named")
	case mr.At.IsZero():
		return fmt.Errorf("monitor %s: no time (at)", mr.Monitor)
	case mr.Latency < 0:
		return fmt.Errorf("monitor %s: negative latency", mr.Monitor)
	case mr.Status != 0 && (mr.Status < 100 || mr.Status > 599):
		return fmt.Errorf("monitor %s: status %d is not an HTTP status code", mr.Monitor, mr.Status)
	case len(mr.Message) > maxResultMessage:
		return fmt.Errorf("monitor %s: message longer than %d bytes", mr.Monitor, maxResultMessage)
	}
	i := slices.IndexFunc(r.Monitors, func(m runtime.Monitor) bool { return m.Name == mr.Monitor })
	if i < 0 {
		return fmt.Errorf("the rollout has no monitor %q", mr.Monitor)
	}
	if !slices.Contains(r.Monitors[i].Locations, location) {
		return fmt.Errorf("monitor %s does not run from %s (its locations: %s)", mr.Monitor, location, strings.Join(r.Monitors[i].Locations, ", "))
	}
	return nil
}

// recordAgent records the results of rep from location when the rollout
// is still in the window for rep's revision; it returns how many it
// recorded, the failing ones (ENV/MONITOR), why the first failed ("" for
// none) and the cycle they were recorded in.
func (c *Controller) recordAgent(ctx context.Context, en *env, location string, rep runtime.MonitorReport) (int, []string, string, int, error) {
	var n, cycle int
	var failed string
	var names []string
	b := en.bg()
	_, err := c.update(ctx, en, false, func(x *record) error {
		if !inWindow(x) || x.Status.Desired != rep.Revision {
			return errStale
		}
		// update holds b.mu.
		from := b.watching
		if b.watchCycle != x.Cycle || b.watchRev != x.Status.Desired || from.IsZero() {
			return errStale // this process does not watch the window yet
		}
		n, names, failed, cycle = 0, nil, "", x.Cycle
		for _, mr := range rep.Results {
			mr.Location = location
			if mr.At.After(time.Now()) {
				mr.At = time.Now().UTC() // an agent's clock ahead does not outlive its results
			}
			if mr.At.Before(x.Status.PromotedAt) || mr.At.Before(from) {
				continue // checked before this promotion, or before this process watched it
			}
			mr.Message = cleanMessage(mr.Message)
			i := slices.IndexFunc(x.Status.Monitors, func(m runtime.MonitorResult) bool {
				return m.Monitor == mr.Monitor && m.Location == mr.Location
			})
			switch {
			case i < 0:
				x.Status.Monitors = append(x.Status.Monitors, mr)
			case x.Status.Monitors[i].At.After(mr.At):
				continue // a later result is recorded already
			default:
				x.Status.Monitors[i] = mr
			}
			n++
			if !mr.OK {
				names = append(names, en.name+"/"+mr.Monitor)
				if failed == "" {
					failed = fmt.Sprintf("monitor %s from %s failed: %s", mr.Monitor, mr.Location, mr.Message)
				}
			}
		}
		if n == 0 {
			return errStale
		}
		return nil
	})
	if errors.Is(err, errStale) {
		return 0, nil, "", 0, nil
	}
	if err != nil {
		return 0, nil, "", 0, fmt.Errorf("record monitor results of %s: %w", en.name, err)
	}
	return n, names, failed, cycle, nil
}

// cleanMessage drops control characters from an agent's message: it is
// shown in terminals and the web UI.
func cleanMessage(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
