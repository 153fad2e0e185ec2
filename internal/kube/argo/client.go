// Package argo drives Argo Rollouts blue/green Rollouts in a Kubernetes
// cluster through the API, with the operations the `kubectl argo rollouts`
// plugin performs, and reports them in gantry's vocabulary
// (runtime.RolloutStatus, analysis.Run).
//
// A Client acts on the Rollouts of one namespace:
//
//	c, err := argo.New(restConfig, "payments", argo.WithLogger(log))
//	st, err := c.Promote(ctx, "payment-service", false, "alice")
//
// The verbs are Promote, Abort, Retry and Undo; Status and Watch read the
// Rollout with the ReplicaSets and AnalysisRuns it owns; History lists its
// revisions from its ReplicaSets. Each verb records who asked in an
// annotation of the Rollout (gantry.dev/promoted-by, gantry.dev/aborted-by,
// ... with the revision they apply to) so that Status shows PromotedBy and
// AbortedBy. docs/rollouts-kubernetes.md maps each verb to its API
// operations.
//
// Roller implements runtime.Roller for Kubernetes environments on top of
// a Client per environment: a Resolver says where an environment's Rollout
// is, an Upgrade function (the Helm upgrade of the release) changes it, and
// Roller.Rollout waits until the Argo controller has observed the change.
//
// Errors of the API server are classified: a Rollout that does not exist
// wraps runtime.ErrNoRollout, a verb its state does not allow wraps
// runtime.ErrRolloutState, a cluster without the Argo Rollouts CRDs wraps
// ErrNoCRD and an RBAC refusal wraps ErrForbidden; all are errors.Is-able.
package argo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// ErrNoCRD is wrapped when the cluster does not serve the Argo Rollouts
// API (argoproj.io/v1alpha1 Rollouts): the CRDs are not installed.
var ErrNoCRD = errors.New("the cluster has no Argo Rollouts CRDs (argoproj.io/v1alpha1 rollouts): install Argo Rollouts")

// ErrForbidden is wrapped when RBAC denies an operation; the error says
// which verb on which resource.
var ErrForbidden = errors.New("forbidden by the cluster's RBAC")

// ErrNotBlueGreen is wrapped for a Rollout whose strategy is not
// blueGreen (canary): the package drives blue/green Rollouts only.
var ErrNotBlueGreen = errors.New("not a blue/green Rollout (spec.strategy.blueGreen): canary Rollouts are not supported yet")

// Annotations gantry sets on a Rollout to record who acted. The *-revision
// ones hold the revision (rollout.argoproj.io/revision) the act applied
// to, so an act is not shown against a later revision.
const (
	AnnotationPromotedBy       = "gantry.dev/promoted-by"
	AnnotationPromotedRevision = "gantry.dev/promoted-revision"
	AnnotationAbortedBy        = "gantry.dev/aborted-by"
	AnnotationAbortReason      = "gantry.dev/abort-reason"
	AnnotationAbortedRevision  = "gantry.dev/aborted-revision"
	AnnotationRetriedBy        = "gantry.dev/retried-by"
	AnnotationUndoneBy         = "gantry.dev/undone-by"
)

// RevisionAnnotation is where Argo keeps the revision number of a Rollout
// and of its ReplicaSets and AnalysisRuns.
const RevisionAnnotation = "rollout.argoproj.io/revision"

// AutoAborter is AbortedBy when the Argo controller aborted the rollout
// itself (a failed analysis), not a gantry verb.
const AutoAborter = "argo-rollouts"

// Client acts on the Rollouts of one namespace.
type Client struct {
	kube      kubernetes.Interface
	argo      versioned.Interface
	namespace string
	log       *slog.Logger
	now       func() time.Time
	// retryTimeout bounds how long Retry waits for the controller.
	retryTimeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithLogger sets the logger (default: slog.Default()). A nil logger is
// ignored.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// WithRetryTimeout bounds how long Retry waits for the controller to
// clear an abort (default 1 minute; values <= 0 are ignored).
func WithRetryTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.retryTimeout = d
		}
	}
}

// New returns a Client for namespace ("" is "default") of the cluster
// cfg points at.
func New(cfg *rest.Config, namespace string, opts ...Option) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("argo: no cluster configuration")
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("argo: kubernetes client: %w", err)
	}
	ac, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("argo: argo rollouts client: %w", err)
	}
	return NewForClients(kube, ac, namespace, opts...), nil
}

// NewForClients returns a Client over existing clientsets.
func NewForClients(kube kubernetes.Interface, ac versioned.Interface, namespace string, opts ...Option) *Client {
	if namespace == "" {
		namespace = "default"
	}
	c := &Client{kube: kube, argo: ac, namespace: namespace, log: slog.Default(), now: time.Now, retryTimeout: time.Minute}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Namespace is the namespace the client acts in.
func (c *Client) Namespace() string { return c.namespace }

// apiError classifies err, returned by the API server while doing op
// (e.g. "get rollout") on name, into gantry's typed errors.
func (c *Client) apiError(ctx context.Context, op, kind, name string, err error) error {
	where := fmt.Sprintf("%s %s/%s", op, c.namespace, name)
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w: %w", where, ErrForbidden, err)
	case apierrors.IsNotFound(err):
		if kind == "rollouts" && !c.servesRollouts(ctx) {
			return fmt.Errorf("%s: %w", where, ErrNoCRD)
		}
		if kind == "rollouts" {
			return fmt.Errorf("%s: rollout %q not found in namespace %q: %w", op, name, c.namespace, runtime.ErrNoRollout)
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// servesRollouts reports whether the API server serves Argo's Rollouts
// (true when discovery itself fails: the NotFound is then the object's).
func (c *Client) servesRollouts(ctx context.Context) bool {
	_ = ctx // discovery takes no context
	list, err := c.kube.Discovery().ServerResourcesForGroupVersion(rolloutsv1.SchemeGroupVersion.String())
	if err != nil {
		return !apierrors.IsNotFound(err)
	}
	for _, r := range list.APIResources {
		if r.Name == "rollouts" {
			return true
		}
	}
	return false
}

// get reads the Rollout.
func (c *Client) get(ctx context.Context, name string) (*rolloutsv1.Rollout, error) {
	ro, err := c.argo.ArgoprojV1alpha1().Rollouts(c.namespace).Get(ctx, name, metav1GetOptions)
	if err != nil {
		return nil, c.apiError(ctx, "get rollout", "rollouts", name, err)
	}
	return ro, nil
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
