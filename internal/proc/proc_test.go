package proc_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
)

func TestMissingWorkingDirectory(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "main.tf")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, want string
		wantIs          error
	}{
		{"missing", filepath.Join(base, "deploy/terraform"), "working directory " + filepath.Join(base, "deploy/terraform") + " does not exist", fs.ErrNotExist},
		{"relative", "deploy/terraform", "working directory deploy/terraform does not exist", fs.ErrNotExist},
		{"a file", file, "working directory " + file + ": not a directory", syscall.ENOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := proc.Command(context.Background(), "true")
			cmd.Dir = tc.dir
			err := proc.Run(context.Background(), cmd)
			var de *proc.DirError
			if !errors.As(err, &de) {
				t.Fatalf("Run: got %v (%T), want a *proc.DirError", err, err)
			}
			if de.Dir != tc.dir {
				t.Errorf("Dir: got %q, want %q", de.Dir, tc.dir)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("message: got %q, want %q", got, tc.want)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.wantIs)
			}
		})
	}
}

func TestExistingWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	cmd := proc.Command(context.Background(), "pwd")
	cmd.Dir, cmd.Stdout = dir, &out
	if err := proc.Run(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != dir {
		t.Errorf("pwd: got %q, want %q", got, dir)
	}
}

// recorder is a Tracker that remembers what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
	groups []proc.Group
}

func (r *recorder) Started(_ context.Context, g proc.Group) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "started")
	r.groups = append(r.groups, g)
	return nil
}

func (r *recorder) Ended(_ context.Context, g proc.Group) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "ended")
	r.groups = append(r.groups, g)
	return nil
}

func TestTrackerAndLeftovers(t *testing.T) {
	rec := &recorder{}
	ctx := proc.WithTracker(context.Background(), rec)
	var out bytes.Buffer
	// The script waits until its child has become sleep: a forked shell that
	// has not yet exec'd is a leftover too, but under another name.
	cmd := proc.Command(ctx, "sh", "-c", `sleep 100 & until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done; echo $!`)
	cmd.Stdout = &out
	p, err := proc.Start(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got, want := strings.Join(rec.events, ","), "started,ended"; got != want {
		t.Fatalf("tracker calls: got %s, want %s", got, want)
	}
	g := rec.groups[0]
	if g.PGID != p.Pid() || g.Start == 0 || g.Boot == "" || rec.groups[1] != g {
		t.Errorf("groups: got %+v, want the group of pid %d with its start time and boot, twice", rec.groups, p.Pid())
	}
	left := p.Leftovers()
	if len(left) != 1 || left[0].Name != "sleep" {
		t.Fatalf("Leftovers: got %+v, want one sleep", left)
	}
	if pid, _ := strconv.Atoi(strings.TrimSpace(out.String())); left[0].PID != pid {
		t.Errorf("leftover pid: got %d, want %d (printed by the script)", left[0].PID, pid)
	}
	if alive, err := proc.Alive(g); err != nil || len(alive) != 0 {
		t.Errorf("Alive after Wait: got %+v, %v; want none", alive, err)
	}
}

// TestEndChecksStartTime: a recorded group whose leader's start time does
// not match is another group that reuses the id and is left alone.
func TestEndChecksStartTime(t *testing.T) {
	ctx := context.Background()
	cmd := proc.Command(ctx, "sleep", "100")
	p, err := proc.Start(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	g := p.Group()
	for _, other := range []proc.Group{
		{PGID: g.PGID, Start: g.Start + 1, Boot: g.Boot},
		{PGID: g.PGID, Start: g.Start, Boot: "another-boot"},
	} {
		left, err := proc.End(ctx, other, proc.WaitDelay)
		if err != nil || len(left) != 0 {
			t.Errorf("End(%+v): got %+v, %v; want nothing ended", other, left, err)
		}
	}
	if alive, err := proc.Alive(g); err != nil || len(alive) != 1 {
		t.Fatalf("Alive: got %+v, %v; want the sleep", alive, err)
	}
	left, err := proc.End(ctx, g, proc.WaitDelay)
	if err != nil || len(left) != 1 || left[0].Name != "sleep" {
		t.Errorf("End: got %+v, %v; want the sleep", left, err)
	}
	if err := p.Wait(); err == nil {
		t.Errorf("Wait: got nil, want the signal that ended sleep")
	}
}

func TestRefusesGroupOne(t *testing.T) {
	for _, pgid := range []int{0, 1, -5} {
		if _, err := proc.End(context.Background(), proc.Group{PGID: pgid}, 0); err == nil {
			t.Errorf("End(pgid %d): got nil error, want a refusal", pgid)
		}
	}
}

// BenchmarkRun compares a short command run through Run (directory check,
// own output pipe, leftover check) with exec.Cmd.Run.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(cmd *exec.Cmd) error
	}{
		{"exec", func(cmd *exec.Cmd) error { return cmd.Run() }},
		{"proc", func(cmd *exec.Cmd) error { return proc.Run(ctx, cmd) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				var out bytes.Buffer
				cmd := proc.Command(ctx, "echo", "hi")
				cmd.Dir, cmd.Stdout = b.TempDir(), &out
				if err := tc.run(cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestMissingProgram(t *testing.T) {
	var out bytes.Buffer
	cmd := proc.Command(context.Background(), filepath.Join(t.TempDir(), "tflint"))
	cmd.Stdout, cmd.Stderr = &out, &out
	err := proc.Run(context.Background(), cmd)
	var de *proc.DirError
	if errors.As(err, &de) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Run of a missing program: got %v, want a not-exist error that is no *proc.DirError", err)
	}
}
