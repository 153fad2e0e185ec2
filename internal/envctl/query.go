package envctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// ErrNoRollbackTarget is returned by Rollback when there is no revision
// to roll back to.
var ErrNoRollbackTarget = errors.New("no revision to roll back to")

// Rollback implements runtime.Deployer: toRevision 0 redeploys the newest
// revision that served before the one serving now; N redeploys revision N
// (which must have served). The workloads and spec are the recorded ones;
// admission decides again. The new revision's reason is "rollback to N"
// unless reason says otherwise.
func (c *Controller) Rollback(ctx context.Context, environment string, toRevision int, who, reason string) (runtime.Revision, error) {
	if _, err := c.cfg.Store.Environment(ctx, environment); err != nil {
		return runtime.Revision{}, fmt.Errorf("roll back %s: %w", environment, err)
	}
	revs, err := c.cfg.Store.EnvRevisions(ctx, environment)
	if err != nil {
		return runtime.Revision{}, fmt.Errorf("roll back %s: %w", environment, err)
	}
	var target *store.EnvRevision
	if toRevision == 0 {
		cur := desired(revs)
		if cur == nil {
			return runtime.Revision{}, fmt.Errorf("roll back %s: no revision serves: %w", environment, ErrNoRollbackTarget)
		}
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].Number < cur.Number && revs[i].Status == store.RevisionSuperseded {
				target = &revs[i]
				break
			}
		}
		if target == nil {
			return runtime.Revision{}, fmt.Errorf("roll back %s: revision %d is the first that served: %w", environment, cur.Number, ErrNoRollbackTarget)
		}
	} else {
		for i := range revs {
			if revs[i].Number == toRevision {
				target = &revs[i]
			}
		}
		if target == nil {
			return runtime.Revision{}, fmt.Errorf("roll back %s to revision %d: it does not exist (%d revisions): %w (%w)", environment, toRevision, len(revs), ErrNoRollbackTarget, store.ErrNotFound)
		}
		if target.Status != store.RevisionSuperseded && target.Status != store.RevisionServing {
			return runtime.Revision{}, fmt.Errorf("roll back %s to revision %d: it never served (%s): %w", environment, toRevision, target.Status, ErrNoRollbackTarget)
		}
	}
	req := runtime.DeployRequest{Environment: environment, Who: who, Reason: reason}
	if req.Reason == "" {
		req.Reason = fmt.Sprintf("rollback to %d", target.Number)
	}
	if err := json.Unmarshal(target.Workloads, &req.Workloads); err != nil {
		return runtime.Revision{}, fmt.Errorf("roll back %s: decode revision %d's workloads: %w", environment, target.Number, err)
	}
	if err := json.Unmarshal(target.Spec, &req.Spec); err != nil {
		return runtime.Revision{}, fmt.Errorf("roll back %s: decode revision %d's spec: %w", environment, target.Number, err)
	}
	return c.Deploy(ctx, req)
}

// Status implements runtime.Deployer.
func (c *Controller) Status(ctx context.Context, environment string) (runtime.EnvironmentStatus, error) {
	e, err := c.cfg.Store.Environment(ctx, environment)
	if err != nil {
		return runtime.EnvironmentStatus{}, err
	}
	return c.status(ctx, e)
}

func (c *Controller) status(ctx context.Context, e store.Environment) (runtime.EnvironmentStatus, error) {
	st := runtime.EnvironmentStatus{Name: e.Name, URL: c.url(e.Port)}
	if c.cfg.Describe != nil {
		c.cfg.Describe(e.Name, &st)
	}
	revs, err := c.cfg.Store.EnvRevisions(ctx, e.Name)
	if err != nil {
		return st, err
	}
	if d := desired(revs); d != nil {
		r := toRevision(d)
		st.Current = &r
	}
	c.mu.Lock()
	en := c.envs[e.Name]
	c.mu.Unlock()
	if en != nil {
		en.mu.Lock()
		for _, inst := range en.instances {
			st.Instances = append(st.Instances, inst.Status())
		}
		en.mu.Unlock()
	}
	return st, nil
}

// List implements runtime.Deployer.
func (c *Controller) List(ctx context.Context) ([]runtime.EnvironmentStatus, error) {
	envs, err := c.cfg.Store.Environments(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.EnvironmentStatus, 0, len(envs))
	for _, e := range envs {
		st, err := c.status(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// History implements runtime.Deployer: the revisions, oldest first.
func (c *Controller) History(ctx context.Context, environment string) ([]runtime.Revision, error) {
	if _, err := c.cfg.Store.Environment(ctx, environment); err != nil {
		return nil, err
	}
	revs, err := c.cfg.Store.EnvRevisions(ctx, environment)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Revision, 0, len(revs))
	for i := range revs {
		out = append(out, toRevision(&revs[i]))
	}
	return out, nil
}

// logPoll is how often Logs looks for new lines when following.
const logPoll = 200 * time.Millisecond

// Logs implements runtime.Deployer: the logs of the instances of the
// revision that serves, read from each instance's directory
// (Dir/NAME/instances/ID/log, written by the runtime), each line prefixed
// with "ID | ". With follow it keeps copying new lines until ctx ends.
func (c *Controller) Logs(ctx context.Context, environment string, follow bool, w io.Writer) error {
	if _, err := c.cfg.Store.Environment(ctx, environment); err != nil {
		return err
	}
	revs, err := c.cfg.Store.EnvRevisions(ctx, environment)
	if err != nil {
		return err
	}
	cur := desired(revs)
	if cur == nil {
		return fmt.Errorf("logs of %s: no revision serves", environment)
	}
	var workloads []runtime.Workload
	if err := json.Unmarshal(cur.Workloads, &workloads); err != nil {
		return fmt.Errorf("logs of %s: decode revision %d: %w", environment, cur.Number, err)
	}
	var tails []*tail
	for _, wl := range workloads {
		for i := range wl.Replicas {
			id := instanceID(environment, cur.Number, wl.Name, i)
			tails = append(tails, &tail{id: id, path: filepath.Join(c.instanceDir(environment, id), "log")})
		}
	}
	defer func() {
		for _, t := range tails {
			t.close()
		}
	}()
	for {
		for _, t := range tails {
			if err := t.copy(w); err != nil {
				return fmt.Errorf("logs of %s: %w", environment, err)
			}
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPoll):
		}
	}
}

// tail copies the complete lines added to a log file since the last call.
type tail struct {
	id, path string
	f        *os.File
	r        *bufio.Reader
	partial  []byte
}

func (t *tail) copy(w io.Writer) error {
	if t.f == nil {
		f, err := os.Open(t.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // not written yet
		}
		if err != nil {
			return err
		}
		t.f, t.r = f, bufio.NewReader(f)
	}
	for {
		line, err := t.r.ReadBytes('\n')
		t.partial = append(t.partial, line...)
		if err == io.EOF {
			if !t.rotated() {
				return nil
			}
			// The runtime rotated the log (log -> log.1): what the old
			// file held is read (an unfinished last line as it is); go
			// on with the new one.
			if len(t.partial) > 0 {
				if _, err := fmt.Fprintf(w, "%s | %s\n", t.id, t.partial); err != nil {
					return err
				}
				t.partial = t.partial[:0]
			}
			t.close()
			t.f, t.r = nil, nil
			return t.copy(w)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", t.path, err)
		}
		if _, err := fmt.Fprintf(w, "%s | %s", t.id, t.partial); err != nil {
			return err
		}
		t.partial = t.partial[:0]
	}
}

// rotated reports whether the file at the path is no longer the one
// being read.
func (t *tail) rotated() bool {
	a, err := t.f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(t.path)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return !os.SameFile(a, b)
}

func (t *tail) close() {
	if t.f != nil {
		t.f.Close()
	}
}
