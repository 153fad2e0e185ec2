package envctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/service"
)

// ensureServices starts the services spec names that do not run yet, each
// with its data in Dir/NAME/services/KIND, and computes the connection
// settings handed to every instance. Services run for the environment's
// life: a later revision that no longer names one leaves it running.
func (c *Controller) ensureServices(ctx context.Context, en *env, spec runtime.EnvironmentSpec) error {
	for _, kind := range spec.Services {
		en.mu.Lock()
		_, ok := en.services[kind]
		en.mu.Unlock()
		if ok {
			continue
		}
		p, ok := c.cfg.Services[kind]
		if !ok {
			known := make([]string, 0, len(c.cfg.Services))
			for k := range c.cfg.Services {
				known = append(known, k)
			}
			sort.Strings(known)
			return fmt.Errorf("environment %s: unknown service %q (known: %v)", en.name, kind, known)
		}
		dir := filepath.Join(c.cfg.Dir, en.name, "services", kind)
		// Searchable by others: a service may run as its own user (as root,
		// PostgreSQL runs as postgres); the service's own dir is its to guard.
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("environment %s: %w", en.name, err)
		}
		var inst service.Instance
		var err error
		if k, ok := p.(service.Keeper); ok {
			inst, err = k.StartKept(ctx, dir)
		} else {
			c.log.Warn("service keeps no data across restarts", "environment", en.name, "service", kind)
			inst, err = p.Start(ctx, dir)
		}
		if err != nil {
			return fmt.Errorf("environment %s: start service %s: %w", en.name, kind, err)
		}
		c.log.Info("service started", "environment", en.name, "service", kind)
		en.mu.Lock()
		en.services[kind] = inst
		en.svcEnv = serviceEnv(en.services)
		en.mu.Unlock()
	}
	return nil
}

// exiter is the ability of a service instance to say that its server has
// ended (localproc's instances have it).
type exiter interface{ Exited() bool }

// dropExited forgets the services whose server has ended, so that
// ensureServices starts them again on their kept data.
func (c *Controller) dropExited(ctx context.Context, en *env) {
	en.mu.Lock()
	var gone map[string]service.Instance
	for kind, inst := range en.services {
		if x, ok := inst.(exiter); ok && x.Exited() {
			if gone == nil {
				gone = map[string]service.Instance{}
			}
			gone[kind] = inst
			delete(en.services, kind)
		}
	}
	en.svcEnv = serviceEnv(en.services)
	en.mu.Unlock()
	for kind, inst := range gone {
		c.log.Warn("service ended; starting it again", "environment", en.name, "service", kind)
		_ = inst.Stop(ctx) // releases what the ended server left (its process record)
	}
}

// serviceEnv is the KEY=VALUE settings of the services, sorted.
func serviceEnv(svcs map[string]service.Instance) []string {
	var out []string
	for _, inst := range svcs {
		for k, v := range inst.Env() {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// stopServices stops the environment's services.
func (c *Controller) stopServices(ctx context.Context, en *env) error {
	en.mu.Lock()
	svcs := en.services
	en.services, en.svcEnv = map[string]service.Instance{}, nil
	en.mu.Unlock()
	var first error
	for kind, inst := range svcs {
		if err := inst.Stop(ctx); err != nil {
			c.log.Warn("stop service", "environment", en.name, "service", kind, "err", err)
			if first == nil {
				first = fmt.Errorf("environment %s: stop service %s: %w", en.name, kind, err)
			}
		}
	}
	return first
}
