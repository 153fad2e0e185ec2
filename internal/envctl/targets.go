package envctl

import (
	"context"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// ServiceTargets are the ready instances behind one Service name of the
// environment: the active Service (blue, then green once promoted) or the
// preview Service (green). Service is "" for an environment whose
// strategy names no Service (a plain deploy that never had a rollout).
type ServiceTargets struct {
	Service string
	Addrs   []string
}

// servingServices tells Config.ServingServices (or Config.Serving) the
// ready instances of en by the Service they are behind; with op held.
func (c *Controller) servingServices(ctx context.Context, en *env) {
	en.mu.Lock()
	rev := en.rev
	en.mu.Unlock()
	if rev == 0 {
		return
	}
	_, spec, err := c.revisionOf(ctx, en, rev)
	if err != nil {
		c.log.Warn("serving hook", "environment", en.name, "err", err)
		return
	}
	c.serving(ctx, en, spec)
}

// serviceTargets groups en's ready instances by Service: the active ones
// under the strategy's activeService, green under its previewService.
func (c *Controller) serviceTargets(ctx context.Context, en *env) []ServiceTargets {
	en.mu.Lock()
	active := append([]runtime.Instance(nil), en.instances...)
	en.mu.Unlock()
	var strategy runtime.BlueGreen
	if r, _, err := c.load(ctx, en); err == nil && r != nil {
		strategy = r.Strategy
	}
	groups := []ServiceTargets{{Service: strategy.ActiveService, Addrs: readyAddrs(active)}}
	if strategy.PreviewService != "" {
		b := en.bg()
		// Before promotion green is behind the preview Service; after it,
		// both Services select green (as on Kubernetes), so the preview
		// name keeps measuring the new revision.
		preview := b.green
		if len(preview) == 0 {
			if r, _, err := c.load(ctx, en); err == nil && r != nil && r.Status.Step != runtime.StepAborted && r.Status.Stable == r.Status.Desired {
				preview = active
			}
		}
		groups = append(groups, ServiceTargets{Service: strategy.PreviewService, Addrs: readyAddrs(preview)})
	}
	return groups
}

func readyAddrs(insts []runtime.Instance) []string {
	var addrs []string
	for _, inst := range insts {
		if inst.Ready() {
			addrs = append(addrs, inst.Addr())
		}
	}
	return addrs
}
