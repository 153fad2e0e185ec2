package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/admission"
	"github.com/gantry-ci/gantry/internal/kube"
	"github.com/gantry-ci/gantry/internal/spec"
)

// Kubernetes returns the deployer of a `runtime: kubernetes` environment,
// run in the calling process (the cluster keeps the release history, so
// no serve process is involved), with gantry's admission checks made
// in-process as the serve process makes them for the local runtime. r
// names the repository, the environment and the key that verifies
// evidence (r.Image and r.Expr are not read).
func Kubernetes(r Request, log *slog.Logger) (*kube.Deployer, []string, error) {
	e := r.Environment
	if e.Runtime != spec.RuntimeKubernetes || e.Kubernetes == nil {
		return nil, nil, fmt.Errorf("environment %s: runtime %s is not kubernetes", e.Name, e.Runtime)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	es, notes, err := AdmissionSpec(r)
	if err != nil {
		return nil, nil, err
	}
	k := e.Kubernetes
	t := kube.Target{
		Environment: e.Name, Kubeconfig: k.Kubeconfig, Context: k.Context, Namespace: k.Namespace,
		Release: k.Release, Timeout: k.Timeout,
	}
	if iv := k.ImageValues; iv != nil {
		t.RepositoryValue, t.DigestValue = iv.Repository, iv.Digest
	}
	c, err := kube.Connect(t)
	if err != nil {
		return nil, nil, fmt.Errorf("environment %s: %w", e.Name, err)
	}
	adm, err := admission.New(admission.WithLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("environment %s: admission: %w", e.Name, err)
	}
	d, err := kube.New(t, c, es, adm, kube.WithLogger(log))
	if err != nil {
		return nil, nil, err
	}
	return d, notes, nil
}

// KubeRequest is the Helm deploy of r: the environment's chart, values
// files and set:, with r.Image.
func KubeRequest(r Request) (kube.Request, error) {
	e := r.Environment
	set, err := e.SetValues()
	if err != nil {
		return kube.Request{}, err
	}
	files := make([]string, len(e.Values))
	for i, f := range spec.Files(e.Values) {
		files[i] = filepath.Join(r.Dir, filepath.FromSlash(f))
	}
	return kube.Request{
		Chart: filepath.Join(r.Dir, filepath.FromSlash(e.Chart)), ValuesFiles: files, Set: set,
		Image: r.Image, Who: r.Who, Run: r.Run, Reason: r.Reason,
	}, nil
}

// DeployKubernetes deploys r to its kubernetes environment and reports
// progress to out, as Deploy does for the local runtime.
func DeployKubernetes(ctx context.Context, r Request, log *slog.Logger, out io.Writer) (*Deployed, error) {
	e := r.Environment
	d, notes, err := Kubernetes(r, log)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	req, err := KubeRequest(r)
	if err != nil {
		return nil, err
	}
	var previous string
	if hist, err := d.History(ctx); err == nil {
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].Status == "serving" {
				previous = hist[i].Digest
				fmt.Fprintf(out, "%s serves revision %d (%s)\n", e.Name, hist[i].Number, shortDigest(previous))
				break
			}
		}
	}
	fmt.Fprintf(out, "helm release %s in namespace %s: installing or upgrading with %s\n", d.Release(), d.Namespace(), r.Image)
	rev, err := d.Deploy(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("deploy to %s: %w", e.Name, err)
	}
	fmt.Fprintf(out, "revision %d of release %s is ready with %s\n", rev.Number, d.Release(), shortDigest(rev.Digest))
	if rev.Message != "" {
		fmt.Fprintf(out, "note: %s\n", rev.Message)
	}
	res := &Deployed{Revision: rev, Previous: previous}
	if e.Prometheus != nil {
		res.PrometheusURL = e.Prometheus.URL
	}
	return res, nil
}
