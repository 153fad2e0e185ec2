// Package kube is gantry's Kubernetes runtime: a `runtime: kubernetes`
// environment is a Helm release of the repository's chart, installed and
// upgraded with the Helm SDK through client-go (never helm or kubectl),
// with the image pinned by digest, admitted as on the local runtime,
// waited for until its workloads (Deployments, StatefulSets, DaemonSets,
// Argo Rollouts) are ready as their status says, and rolled back through
// Helm's release history. The verbs on an Argo Rollout are in
// internal/kube/argo.
package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Target says which cluster, namespace and release an environment is.
type Target struct {
	// Environment is the gantry environment's name.
	Environment string
	// Kubeconfig is the kubeconfig file ("~/" is the home directory);
	// "" loads $KUBECONFIG or ~/.kube/config, and in a pod with neither,
	// the in-cluster configuration.
	Kubeconfig string
	// Context is the kubeconfig context ("" its current context).
	Context string
	// Namespace of the release ("" the context's namespace, else
	// "default").
	Namespace string
	// Release is the Helm release name.
	Release string
	// Timeout bounds the wait for readiness of a deploy or rollback
	// (default 5m).
	Timeout time.Duration
	// RepositoryValue and DigestValue are the values paths the pinned
	// image is set through (default image.repository, image.digest).
	RepositoryValue, DigestValue string
}

// Cluster is a connection to the API server of a target.
type Cluster struct {
	// Namespace is the target's namespace, resolved.
	Namespace string
	Config    *rest.Config
	Client    kubernetes.Interface
	Dynamic   dynamic.Interface
	getter    genericclioptions.RESTClientGetter
}

// Connect loads the target's client configuration. It does not reach
// the cluster: the first request does.
func Connect(t Target) (*Cluster, error) {
	flags := genericclioptions.NewConfigFlags(false)
	if t.Kubeconfig != "" {
		p, err := expandHome(t.Kubeconfig)
		if err != nil {
			return nil, err
		}
		flags.KubeConfig = &p
	}
	if t.Context != "" {
		flags.Context = &t.Context
	}
	ns := t.Namespace
	if ns == "" {
		var err error
		if ns, _, err = flags.ToRawKubeConfigLoader().Namespace(); err != nil {
			return nil, fmt.Errorf("kubernetes: read the namespace of the kubeconfig's context: %w", err)
		}
	}
	flags.Namespace = &ns
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: load the client configuration (kubeconfig %q, context %q): %w", t.Kubeconfig, t.Context, err)
	}
	c := &Cluster{Namespace: ns, Config: cfg, getter: flags}
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes: dynamic client: %w", err)
	}
	return c, nil
}

// expandHome turns a leading ~/ into the home directory.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("kubernetes: kubeconfig %s: %w", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// discoveryOf is the cluster's discovery client, for the kinds check.
func (c *Cluster) discoveryOf() (discovery.CachedDiscoveryInterface, error) {
	return c.getter.ToDiscoveryClient()
}
