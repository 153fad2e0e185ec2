package kubetest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
)

// TestWaitSeesAComponentExit: a component that dies while the bed waits
// ends the wait with its exit and the end of its log.
func TestWaitSeesAComponentExit(t *testing.T) {
	b := &Bed{Dir: t.TempDir()}
	defer b.Stop()
	if err := b.run(t.Context(), "crasher", "sh", "-c", "echo listening on nothing; echo fatal: bad flag >&2; exit 3"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := b.wait(ctx, "readiness", func(context.Context) error { return errors.New("not ready") })
	if err == nil {
		t.Fatal("wait returned nil; want the component's exit")
	}
	for _, want := range []string{"crasher exited", "exit status 3", "fatal: bad flag", "crasher.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestStopEndsEveryProcess: Stop ends the components' process groups,
// children included, and reports no error for the signal it sent.
func TestStopEndsEveryProcess(t *testing.T) {
	b := &Bed{Dir: t.TempDir()}
	pidFile := b.Dir + "/child.pid"
	if err := b.run(t.Context(), "parent", "sh", "-c", "sleep 300 & echo $! > "+pidFile+"; wait"); err != nil {
		t.Fatal(err)
	}
	if err := b.run(t.Context(), "other", "sleep", "300"); err != nil {
		t.Fatal(err)
	}
	// As kube-apiserver does: exit 0 on SIGTERM.
	if err := b.run(t.Context(), "graceful", "sh", "-c", "trap 'exit 0' TERM; touch "+b.Dir+"/trapped; while :; do sleep 0.1; done"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := b.wait(ctx, "the child's pid", func(context.Context) error {
		if _, err := os.Stat(pidFile); err != nil {
			return err
		}
		_, err := os.Stat(b.Dir + "/trapped")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if rss := b.RSS(); rss <= 0 {
		t.Errorf("RSS %d, want > 0 while running", rss)
	}
	comps := append([]*component(nil), b.components...)
	if err := b.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for _, c := range comps {
		// Zombies awaiting their reaper count as gone.
		left, err := proc.Alive(c.p.Group())
		if err != nil || len(left) > 0 {
			t.Errorf("process group of %s after Stop: %v left (%v)", c.name, left, err)
		}
	}
}
