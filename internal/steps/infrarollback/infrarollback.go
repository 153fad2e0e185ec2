// Package infrarollback holds the step kinds that restore a Terraform state
// kept in a versioned S3 bucket: `infra-snapshot` records which version of
// the state is current when it runs (early in a run), and `infra-rollback`
// restores that version (in a failed stage's on_failure, or as a step),
// with the checks of gantry infra state rollback (internal/infra/s3state).
package infrarollback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/infra/backend"
	"github.com/gantry-ci/gantry/internal/infra/s3state"
	"github.com/gantry-ci/gantry/internal/step"
)

// Backend locates the state, as gantry infra's flags do.
type Backend struct {
	// Dir holds the Terraform configuration with the backend "s3" block,
	// relative to the workspace (default ".").
	Dir string `yaml:"dir"`
	// BackendConfig are -backend-config files (relative to the workspace)
	// or name=value pairs, applied in order.
	BackendConfig []string `yaml:"backend_config"`
	// Workspace is the Terraform workspace (default: the one selected in
	// Dir/.terraform, else default).
	Workspace string `yaml:"workspace"`
}

func (b *Backend) client(ctx context.Context, env *step.Env) (*s3state.Client, error) {
	dir := filepath.Join(env.Dir, b.Dir)
	var bc []string
	for _, v := range b.BackendConfig {
		if name, _, ok := strings.Cut(v, "="); ok && !strings.ContainsAny(name, `/\.`) {
			bc = append(bc, v)
			continue
		}
		bc = append(bc, filepath.Join(env.Dir, v))
	}
	cfg, err := backend.Load(dir, bc)
	if err != nil {
		return nil, err
	}
	ws := b.Workspace
	if ws == "" {
		if ws, err = backend.Workspace(dir, ""); err != nil {
			return nil, err
		}
	}
	opts := []s3state.Option{s3state.WithEnv(env.Vars)}
	if env.Log != nil {
		opts = append(opts, s3state.WithLogger(env.Log))
	}
	return s3state.New(ctx, cfg, ws, opts...)
}

// Paths names the configuration directory.
func (b *Backend) paths() []step.PathRef {
	return []step.PathRef{{Field: "dir", Value: b.Dir, Type: step.PathDir}}
}

// SnapshotConfig is infra-snapshot's `with:` block.
type SnapshotConfig struct {
	Backend `yaml:",inline"`
}

// SnapshotKind records the state's current version.
var SnapshotKind = step.Kind{
	Name:    "infra-snapshot",
	Summary: "record the current version of a Terraform state in a versioned S3 bucket, for infra-rollback",
	Outputs: []string{"version_id", "serial", "lineage", "location"},
	New: func(in step.Inputs) (step.Step, error) {
		var c SnapshotConfig
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		return &Snapshot{cfg: c}, nil
	},
}

// Snapshot is an infra-snapshot step.
type Snapshot struct{ cfg SnapshotConfig }

var (
	_ step.Step       = (*Snapshot)(nil)
	_ step.PathInputs = (*Snapshot)(nil)
)

// Paths names the configuration directory.
func (s *Snapshot) Paths() []step.PathRef { return s.cfg.paths() }

// Run reads the current version. The bucket must be versioned (else
// nothing could be restored later); a state that does not exist yet is
// recorded as version_id "".
func (s *Snapshot) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	c, err := s.cfg.client(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := c.CheckVersioning(ctx); err != nil {
		return nil, err
	}
	cur, err := c.Current(ctx)
	if errors.Is(err, s3state.ErrNotFound) {
		fmt.Fprintf(logOf(env), "%s does not exist yet: nothing to restore to\n", c.Location())
		return &step.Result{
			Outputs: map[string]any{"version_id": "", "serial": 0, "lineage": "", "location": c.Location()},
			Summary: c.Location() + ": no state yet",
		}, nil
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logOf(env), "%s: current version %s (serial %d, lineage %s)\n", c.Location(), cur.VersionID, cur.State.Serial, cur.State.Lineage)
	return &step.Result{
		Outputs: map[string]any{"version_id": cur.VersionID, "serial": cur.State.Serial, "lineage": cur.State.Lineage, "location": c.Location()},
		Summary: fmt.Sprintf("%s: version %s, serial %d", c.Location(), cur.VersionID, cur.State.Serial),
	}, nil
}

// RollbackConfig is infra-rollback's `with:` block.
type RollbackConfig struct {
	Backend `yaml:",inline"`
	// Snapshot is the infra-snapshot step (STEP of the same stage, or
	// STAGE/STEP) whose recorded version is restored.
	Snapshot string `yaml:"snapshot"`
	// ToVersion restores this version ID instead.
	ToVersion string `yaml:"to_version"`
	// Reason is logged with the rollback (default: the run, stage and step).
	Reason string `yaml:"reason"`
}

// Kind restores a recorded state version.
var Kind = step.Kind{
	Name:    "infra-rollback",
	Summary: "restore the Terraform state version an infra-snapshot step recorded (or to_version), as a new S3 object version",
	Outputs: []string{"restored", "from_version", "to_version", "version_id", "serial"},
	New: func(in step.Inputs) (step.Step, error) {
		var c RollbackConfig
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		if (c.Snapshot == "") == (c.ToVersion == "") {
			return nil, in.Errorf("snapshot", "infra-rollback needs exactly one of snapshot (the infra-snapshot step that recorded the version) or to_version")
		}
		if c.Snapshot != "" && strings.Count(c.Snapshot, "/") > 1 {
			return nil, in.Errorf("snapshot", "snapshot %q must be STEP or STAGE/STEP", c.Snapshot)
		}
		return &Rollback{cfg: c}, nil
	},
}

// Rollback is an infra-rollback step.
type Rollback struct{ cfg RollbackConfig }

var (
	_ step.Step       = (*Rollback)(nil)
	_ step.PathInputs = (*Rollback)(nil)
)

// Paths names the configuration directory.
func (r *Rollback) Paths() []step.PathRef { return r.cfg.paths() }

// ErrNoSnapshot is returned when the snapshot step did not record a
// version (it did not run, failed, or the state did not exist yet).
var ErrNoSnapshot = errors.New("no recorded state version to restore")

// Run restores the version. When it is already current the step passes
// with restored=false and changes nothing.
func (r *Rollback) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	target := r.cfg.ToVersion
	if r.cfg.Snapshot != "" {
		out, where, ok := env.OutputsOf(r.cfg.Snapshot)
		if !ok {
			return nil, fmt.Errorf("snapshot %s: %w: that step has not run", where, ErrNoSnapshot)
		}
		id, _ := out["version_id"].(string)
		if id == "" {
			return nil, fmt.Errorf("snapshot %s: %w: the state did not exist when it ran", where, ErrNoSnapshot)
		}
		target = id
	}
	c, err := r.cfg.client(ctx, env)
	if err != nil {
		return nil, err
	}
	w := logOf(env)
	p, err := c.Prepare(ctx, target)
	if errors.Is(err, s3state.ErrNothingToDo) {
		fmt.Fprintf(w, "%s: version %s is still current: nothing to restore\n", c.Location(), target)
		return &step.Result{
			Outputs: map[string]any{"restored": false, "from_version": target, "to_version": target, "version_id": target, "serial": 0},
			Summary: "state unchanged since the snapshot",
		}, nil
	}
	if err != nil {
		return nil, err
	}
	reason := r.cfg.Reason
	if reason == "" {
		reason = fmt.Sprintf("gantry run %s, %s/%s", env.RunID, env.Stage, env.Step)
	}
	fmt.Fprintf(w, "%s\n  current: version %s, serial %d\n  restore: version %s (serial %d) as serial %d\n  reason: %s\n",
		p.Location, p.Current.VersionID, p.Current.State.Serial, p.TargetID, p.Target.Serial, p.NewSerial, reason)
	if !p.Changes.Empty() {
		fmt.Fprintf(w, "  resource changes from the current state: %s\n", p.Changes)
	}
	res, err := c.Apply(ctx, p)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "restored: now version %s\n", res.VersionID)
	return &step.Result{
		Outputs: map[string]any{"restored": true, "from_version": p.Current.VersionID, "to_version": p.TargetID, "version_id": res.VersionID, "serial": p.NewSerial},
		Summary: fmt.Sprintf("restored version %s of %s as %s (serial %d)", p.TargetID, p.Location, res.VersionID, p.NewSerial),
	}, nil
}

func logOf(env *step.Env) io.Writer {
	if env.Stdout != nil {
		return env.Stdout
	}
	return io.Discard
}
