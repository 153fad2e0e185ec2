package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/yaml"

	gchart "github.com/gantry-ci/gantry/internal/chart"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// DefaultTimeout bounds the wait for readiness when Target.Timeout is 0.
const DefaultTimeout = 5 * time.Minute

// Deployer deploys one environment: installs or upgrades its Helm
// release, waits for its workloads, reads and rolls back its history. It
// runs in the calling process (the deploy step, `gantry deploy`, `gantry
// env`): the cluster keeps the state (the release history in Secrets of
// the namespace), so no serve process is needed.
type Deployer struct {
	t       Target
	c       *Cluster
	spec    runtime.EnvironmentSpec
	admit   runtime.Admitter
	log     *slog.Logger
	poll    time.Duration
	mu      sync.Mutex
	helmCfg *action.Configuration
}

// Option configures a Deployer.
type Option func(*Deployer)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(d *Deployer) { d.log = l } }

// withPoll sets how often the wait reads the workloads' status (default
// 1s), for tests.
func withPoll(p time.Duration) Option { return func(d *Deployer) { d.poll = p } }

// New returns the deployer of target t on cluster c. spec is the
// environment's admission input (policies, required evidence, key): every
// image passes admit before Helm is called, on deploys and rollbacks.
func New(t Target, c *Cluster, spec runtime.EnvironmentSpec, admit runtime.Admitter, opts ...Option) (*Deployer, error) {
	if admit == nil {
		return nil, errors.New("kubernetes deployer: no admitter")
	}
	if t.Release == "" {
		t.Release = t.Environment
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.RepositoryValue == "" {
		t.RepositoryValue = "image.repository"
	}
	if t.DigestValue == "" {
		t.DigestValue = "image.digest"
	}
	d := &Deployer{t: t, c: c, spec: spec, admit: admit, log: slog.New(slog.DiscardHandler), poll: time.Second}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Namespace is where the release lives.
func (d *Deployer) Namespace() string { return d.c.Namespace }

// Release is the Helm release name.
func (d *Deployer) Release() string { return d.t.Release }

func (d *Deployer) where() string {
	return fmt.Sprintf("release %s in namespace %s", d.t.Release, d.c.Namespace)
}

// helm returns the Helm action configuration (made once).
func (d *Deployer) helm() (*action.Configuration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.helmCfg != nil {
		return d.helmCfg, nil
	}
	cfg := new(action.Configuration)
	logf := func(format string, v ...any) { d.log.Debug(fmt.Sprintf(format, v...), "component", "helm") }
	if err := cfg.Init(d.c.getter, d.c.Namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("kubernetes: helm: %w", err)
	}
	d.helmCfg = cfg
	return cfg, nil
}

// Request is what to deploy: the chart and its values as the environment
// names them, and the image.
type Request struct {
	// Chart is the chart directory; ValuesFiles are applied in order after
	// its values.yaml, then Set (dotted paths, as the local runtime reads
	// them).
	Chart       string
	ValuesFiles []string
	Set         map[string]any
	// Image is REPO@sha256:... (admission may rewrite a tag to a digest).
	Image string
	// Who asked, from which run (0: none) and why, for the history.
	Who    string
	Run    int64
	Reason string
}

// Upgraded is a release revision applied to the cluster, not yet waited
// for.
type Upgraded struct {
	Revision int
	// Image is the admitted reference the release runs (REPO@sha256:...).
	Image string
	// Previous is the digest the release ran before ("" on a first
	// install).
	Previous string
	rel      *release.Release
}

// Deploy admits the image, installs or upgrades the release with it and
// waits until the workloads are ready (Target.Timeout, or ctx's deadline
// when earlier). A revision that does not become ready is marked failed
// in the release history and the error (wrapping runtime.ErrNotReady)
// names the failing pod, its events and its last log lines.
func (d *Deployer) Deploy(ctx context.Context, req Request) (runtime.Revision, error) {
	up, err := d.Upgrade(ctx, req)
	if err != nil {
		return runtime.Revision{}, err
	}
	return d.finish(ctx, up.rel)
}

// Upgrade admits the image and installs or upgrades the release, without
// waiting for readiness: what the blue-green step needs before it drives
// the Rollout with internal/kube/argo. Use Wait to wait.
func (d *Deployer) Upgrade(ctx context.Context, req Request) (*Upgraded, error) {
	pinned, err := d.admit.Admit(ctx, d.t.Environment, d.spec, req.Image)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", d.t.Environment, err)
	}
	ref, err := name.NewDigest(pinned)
	if err != nil {
		return nil, fmt.Errorf("environment %s: admission returned %q, not REPO@sha256:...: %w", d.t.Environment, pinned, err)
	}
	ch, err := loader.Load(req.Chart)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", req.Chart, err)
	}
	vals, err := d.values(req, ref)
	if err != nil {
		return nil, err
	}
	manifest, err := renderManifest(ctx, ch, vals, d.t.Release, d.c.Namespace)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", req.Chart, err)
	}
	objs, err := parseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", req.Chart, err)
	}
	if err := checkPinned(objs, ref, d.t); err != nil {
		return nil, err
	}
	if err := d.checkKinds(objs); err != nil {
		return nil, err
	}
	cfg, err := d.helm()
	if err != nil {
		return nil, err
	}
	last, err := cfg.Releases.Last(d.t.Release)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, explain("read the history of "+d.where(), err)
	}
	up := &Upgraded{Image: ref.String()}
	if last != nil {
		if last.Info.Status.IsPending() {
			return nil, fmt.Errorf("upgrade %s: %w: revision %d is %s since %s (%s); wait for it, or if its process died, roll back with gantry env rollback", d.where(), ErrConflict, last.Version, last.Info.Status, last.Info.LastDeployed.Format(time.RFC3339), last.Info.Description)
		}
		up.Previous = d.digestOf(last)
	}
	labels := historyLabels(req.Who, req.Run)
	desc := describe(req.Reason, req.Who)
	var rel *release.Release
	if last == nil || (last.Info.Status == release.StatusUninstalled) {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace = d.t.Release, d.c.Namespace
		in.CreateNamespace = true
		in.Labels, in.Description = labels, desc
		in.Timeout = d.t.Timeout
		rel, err = in.RunWithContext(ctx, ch, vals)
		if err != nil {
			return nil, explain("install "+d.where(), err)
		}
	} else {
		u := action.NewUpgrade(cfg)
		u.Namespace = d.c.Namespace
		u.Labels, u.Description = labels, desc
		u.Timeout = d.t.Timeout
		u.MaxHistory = 20
		rel, err = u.RunWithContext(ctx, d.t.Release, ch, vals)
		if err != nil {
			return nil, explain("upgrade "+d.where(), err)
		}
	}
	up.Revision, up.rel = rel.Version, rel
	d.log.InfoContext(ctx, "release applied", "environment", d.t.Environment, "release", d.t.Release, "namespace", d.c.Namespace, "revision", rel.Version, "image", up.Image)
	return up, nil
}

// Wait waits until the workloads of the release's revision are ready, as
// Deploy does, and records the outcome in the release history.
func (d *Deployer) Wait(ctx context.Context, revision int) (runtime.Revision, error) {
	cfg, err := d.helm()
	if err != nil {
		return runtime.Revision{}, err
	}
	rel, err := cfg.Releases.Get(d.t.Release, revision)
	if err != nil {
		return runtime.Revision{}, explain(fmt.Sprintf("read revision %d of %s", revision, d.where()), err)
	}
	return d.finish(ctx, rel)
}

// finish waits for rel's workloads; on failure it marks the revision
// failed with the reason.
func (d *Deployer) finish(ctx context.Context, rel *release.Release) (runtime.Revision, error) {
	wctx, cancel := context.WithTimeout(ctx, d.t.Timeout)
	defer cancel()
	objs, err := parseManifest(rel.Manifest)
	if err != nil {
		return runtime.Revision{}, err
	}
	note, werr := d.waitReady(wctx, objs)
	if werr != nil {
		werr = fmt.Errorf("environment %s: revision %d of %s: %w", d.t.Environment, rel.Version, d.where(), werr)
		// The release record must say so even when ctx ended.
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer scancel()
		d.markFailed(sctx, rel, werr)
		return d.revision(rel), werr
	}
	rev := d.revision(rel)
	if note != "" {
		rev.Message = note
	}
	return rev, nil
}

func (d *Deployer) markFailed(ctx context.Context, rel *release.Release, cause error) {
	if ctx.Err() != nil {
		return
	}
	cfg, err := d.helm()
	if err != nil {
		return
	}
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	rel.SetStatus(release.StatusFailed, describe("not ready: "+msg, whoOf(rel)))
	if err := cfg.Releases.Update(rel); err != nil {
		d.log.WarnContext(ctx, "record the failed revision", "release", d.t.Release, "revision", rel.Version, "error", err)
	}
}

// values builds the release's values: the values files in order, then
// set:, then the pinned image through the target's values paths.
func (d *Deployer) values(req Request, ref name.Digest) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range req.ValuesFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read values file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		vals = merge(vals, m)
	}
	for _, k := range slices.Sorted(mapKeys(req.Set)) {
		if err := gchart.SetValue(vals, k, req.Set[k]); err != nil {
			return nil, err
		}
	}
	if err := gchart.SetValue(vals, d.t.RepositoryValue, ref.Context().Name()); err != nil {
		return nil, fmt.Errorf("set the image repository through %s: %w", d.t.RepositoryValue, err)
	}
	if err := gchart.SetValue(vals, d.t.DigestValue, ref.DigestStr()); err != nil {
		return nil, fmt.Errorf("set the image digest through %s: %w", d.t.DigestValue, err)
	}
	return vals, nil
}

// merge copies src over dst, maps merged key by key.
func merge(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if m, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = merge(dm, m)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// renderManifest renders the chart as Helm will install it (client side,
// with Helm's default capabilities), without touching the cluster.
func renderManifest(ctx context.Context, ch *chart.Chart, vals map[string]any, rel, ns string) (string, error) {
	in := action.NewInstall(new(action.Configuration))
	in.DryRun, in.ClientOnly, in.Replace = true, true, true
	in.ReleaseName, in.Namespace = rel, ns
	in.DisableHooks = true
	r, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		return "", err
	}
	return r.Manifest, nil
}

// checkKinds asks the cluster whether it serves every kind the chart
// renders: a missing CustomResourceDefinition is one clear error before
// anything is applied.
func (d *Deployer) checkKinds(objs []object) error {
	dc, err := d.c.discoveryOf()
	if err != nil {
		return fmt.Errorf("kubernetes: discovery: %w", err)
	}
	served := map[string]map[string]bool{} // apiVersion → kind
	for _, o := range objs {
		kinds, ok := served[o.APIVersion]
		if !ok {
			kinds = map[string]bool{}
			list, err := dc.ServerResourcesForGroupVersion(o.APIVersion)
			if err != nil {
				served, gerr := groupVersionServed(dc, o.APIVersion)
				if gerr != nil || served {
					return explain("list the kinds of "+o.APIVersion+" served by the cluster", err)
				}
			}
			if list != nil {
				for _, r := range list.APIResources {
					kinds[r.Kind] = true
				}
			}
			served[o.APIVersion] = kinds
		}
		if !kinds[o.Kind] {
			return fmt.Errorf("%s: %s %s: %w: the cluster serves no %s in %s; install its CustomResourceDefinition first", o.Source, o.Kind, o.Name, ErrCRDMissing, o.Kind, o.APIVersion)
		}
	}
	return nil
}

// groupVersionServed says whether the cluster serves apiVersion at all.
func groupVersionServed(dc discovery.DiscoveryInterface, apiVersion string) (bool, error) {
	groups, err := dc.ServerGroups()
	if err != nil {
		return false, err
	}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			if v.GroupVersion == apiVersion {
				return true, nil
			}
		}
	}
	return false, nil
}

// revision maps a Helm release to gantry's history entry.
func (d *Deployer) revision(rel *release.Release) runtime.Revision {
	r := runtime.Revision{
		Environment: d.t.Environment, Number: rel.Version, Digest: d.digestOf(rel),
		Who: whoOf(rel), Reason: reasonOf(rel), Status: statusOf(rel.Info.Status),
	}
	if n, err := strconv.ParseInt(rel.Labels[labelRun], 10, 64); err == nil {
		r.Run = n
	}
	if rel.Info != nil {
		r.Created = rel.Info.FirstDeployed.Time
		if !rel.Info.LastDeployed.IsZero() {
			r.Created = rel.Info.LastDeployed.Time
		}
		if rel.Info.Status == release.StatusFailed {
			r.Message = strings.TrimPrefix(reasonOf(rel), "not ready: ")
			r.Reason = ""
		}
	}
	return r
}

// digestOf reads the pinned digest from the release's values.
func (d *Deployer) digestOf(rel *release.Release) string {
	v, ok := lookupPath(rel.Config, d.t.DigestValue)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// imageOf is the reference a release revision runs.
func (d *Deployer) imageOf(rel *release.Release) string {
	repo, _ := lookupPath(rel.Config, d.t.RepositoryValue)
	r, _ := repo.(string)
	dg := d.digestOf(rel)
	if r == "" || dg == "" {
		return ""
	}
	return r + "@" + dg
}

// lookupPath returns the value at the dotted values path p in vals.
func lookupPath(vals map[string]any, p string) (any, bool) {
	keys, err := gchart.ParseSetPath(p)
	if err != nil {
		return nil, false
	}
	return gchart.Lookup(vals, keys...)
}

func statusOf(s release.Status) string {
	switch s {
	case release.StatusDeployed:
		return "serving"
	case release.StatusSuperseded, release.StatusUninstalled:
		return "superseded"
	case release.StatusFailed:
		return "failed"
	case release.StatusPendingInstall, release.StatusPendingUpgrade, release.StatusPendingRollback:
		return "deploying"
	}
	return string(s)
}

// Release labels and description: who and which run, as the history
// shows them. Label values are restricted, so who is kept in the
// description as well.
const (
	labelRun = "gantry.run"
	labelWho = "gantry.who"
)

var labelUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func historyLabels(who string, run int64) map[string]string {
	l := map[string]string{}
	if w := strings.Trim(labelUnsafe.ReplaceAllString(who, "_"), "._-"); w != "" {
		if len(w) > 63 {
			w = strings.Trim(w[:63], "._-")
		}
		l[labelWho] = w
	}
	if run != 0 {
		l[labelRun] = strconv.FormatInt(run, 10)
	}
	return l
}

// describe is the release description: "REASON (by WHO)".
func describe(reason, who string) string {
	if reason == "" {
		reason = "deploy"
	}
	if who == "" {
		return reason
	}
	return reason + " (by " + who + ")"
}

func whoOf(rel *release.Release) string {
	if rel.Info == nil {
		return ""
	}
	desc := rel.Info.Description
	if i := strings.LastIndex(desc, " (by "); i >= 0 && strings.HasSuffix(desc, ")") {
		return desc[i+len(" (by ") : len(desc)-1]
	}
	return rel.Labels[labelWho]
}

func reasonOf(rel *release.Release) string {
	if rel.Info == nil {
		return ""
	}
	desc := rel.Info.Description
	if i := strings.LastIndex(desc, " (by "); i >= 0 && strings.HasSuffix(desc, ")") {
		return desc[:i]
	}
	return desc
}
