package argo

import (
	"context"
	"errors"
	"reflect"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// watchRetry is how long a watch that the API server refused or ended
// waits before it is opened again.
const watchRetry = time.Second

// Watch calls f with the Rollout's status now and again on every change
// of the Rollout, of its ReplicaSets or of its AnalysisRuns (each
// measurement, each step), until f returns false (Watch returns nil), ctx
// ends (ctx.Err()) or the Rollout cannot be read (the classified error:
// a deleted Rollout wraps runtime.ErrNoRollout). Statuses equal to the
// last one passed to f (but for Updated) are not passed again.
func (c *Client) Watch(ctx context.Context, name string, f func(runtime.RolloutStatus) bool) error {
	var last *runtime.RolloutStatus
	return c.watch(ctx, name, func(s *snapshot) bool {
		st := s.status(c.now())
		if last != nil && sameStatus(st, *last) {
			return true
		}
		last = &st
		return f(st)
	})
}

// watch calls f with a snapshot of the Rollout now and after every change
// of it, its ReplicaSets or its AnalysisRuns, as Watch does.
func (c *Client) watch(ctx context.Context, name string, f func(*snapshot) bool) error {
	s, err := c.read(ctx, name)
	if err != nil {
		return err
	}
	if !f(s) {
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	opens := []struct {
		kind string
		open func(context.Context) (watch.Interface, error)
	}{
		{"rollouts", func(ctx context.Context) (watch.Interface, error) {
			return c.argo.ArgoprojV1alpha1().Rollouts(c.namespace).Watch(ctx, byName)
		}},
		{"replicasets", func(ctx context.Context) (watch.Interface, error) {
			return c.kube.AppsV1().ReplicaSets(c.namespace).Watch(ctx, metav1.ListOptions{})
		}},
		{"analysisruns", func(ctx context.Context) (watch.Interface, error) {
			return c.argo.ArgoprojV1alpha1().AnalysisRuns(c.namespace).Watch(ctx, metav1.ListOptions{})
		}},
	}
	for _, o := range opens {
		g.Go(func() error {
			err := follow(gctx, o.open, notify)
			if err != nil {
				return c.apiError(gctx, "watch "+o.kind+" of rollout", o.kind, name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer cancel() // f said stop, or reading failed: end the watches
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-changed:
			}
			s, err := c.read(gctx, name)
			if err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return err
			}
			if !f(s) {
				return errStop
			}
		}
	})
	err = g.Wait()
	switch {
	case errors.Is(err, errStop):
		return nil
	case err != nil:
		return err
	}
	return parent.Err()
}

// errStop ends a Watch whose callback returned false.
var errStop = errors.New("watch stopped by its callback")

// follow keeps a watch open (reopening it when the API server ends it,
// as it does every few minutes) and calls notify on each event and each
// reopening (events may have been missed in between), until ctx ends or
// RBAC refuses the watch (returned).
func follow(ctx context.Context, open func(context.Context) (watch.Interface, error), notify func()) error {
	for ctx.Err() == nil {
		w, err := open(ctx)
		if apierrors.IsForbidden(err) {
			return err
		}
		if err == nil {
			notify()
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					break
				}
				notify()
			}
			w.Stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
	return nil
}

// sameStatus compares two statuses but for when they were taken.
func sameStatus(a, b runtime.RolloutStatus) bool {
	a.Updated, b.Updated = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
