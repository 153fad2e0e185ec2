package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
)

// Logs writes the logs of the containers of the pods that serve (the
// pods of the serving release's workloads), read through the API server
// as `kubectl logs` reads them, each line prefixed with "POD | " (with
// "POD/CONTAINER | " for a pod of several containers). A container that
// has not started yet is skipped. With follow, every container is
// streamed at once until ctx ends; the pods are those that run when
// Logs starts.
func (d *Deployer) Logs(ctx context.Context, follow bool, w io.Writer) error {
	cur, err := d.current()
	if err != nil {
		return err
	}
	pods, err := d.pods(ctx, cur)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return fmt.Errorf("logs of %s: no pod runs the workloads of %s revision %d", d.t.Environment, d.where(), cur.Version)
	}
	out := &lineWriter{w: w}
	g, gctx := errgroup.WithContext(ctx)
	for i := range pods {
		p := &pods[i]
		for _, c := range started(p) {
			prefix := p.Name
			if len(p.Spec.InitContainers)+len(p.Spec.Containers) > 1 {
				prefix += "/" + c
			}
			read := func() error { return d.copyLogs(gctx, p, c, follow, prefix, out) }
			if !follow {
				// One after the other, so that each container's lines
				// come together.
				if err := read(); err != nil {
					return err
				}
				continue
			}
			g.Go(read)
		}
	}
	err = g.Wait()
	if follow && ctx.Err() != nil {
		return nil
	}
	return err
}

// started are the containers of p (init containers first) that have run.
func started(p *corev1.Pod) []string {
	ran := ranContainers(p)
	var out []string
	for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		if ran[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

// ranContainers says which containers of p have run (have logs).
func ranContainers(p *corev1.Pod) map[string]bool {
	ran := map[string]bool{}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		ran[cs.Name] = cs.State.Running != nil || cs.State.Terminated != nil || cs.RestartCount > 0
	}
	return ran
}

// copyLogs copies the log of container c of p, each line prefixed.
func (d *Deployer) copyLogs(ctx context.Context, p *corev1.Pod, c string, follow bool, prefix string, out *lineWriter) error {
	rc, err := d.c.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c, Follow: follow}).Stream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return explain("read the logs of "+prefix, err)
	}
	defer rc.Close()
	r := bufio.NewReader(rc)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			if werr := out.line(prefix, line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the logs of %s: %w", prefix, err)
		}
	}
}

// lineWriter writes whole prefixed lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(prefix, line string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if line[len(line)-1] != '\n' {
		line += "\n"
	}
	_, err := fmt.Fprintf(l.w, "%s | %s", prefix, line)
	return err
}
