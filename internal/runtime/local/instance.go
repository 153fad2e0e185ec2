package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// Restart backoff, as kubelet's CrashLoopBackOff: 1s doubling to 5 min,
// reset once an instance ran 10 min.
const (
	backoffBase  = time.Second
	backoffMax   = 5 * time.Minute
	backoffReset = 10 * time.Minute
	// defaultGrace is the termination grace when the workload gives none.
	defaultGrace = 30 * time.Second
)

// instance is a supervised replica.
type instance struct {
	rt          *Runtime
	id          string
	dir         string
	w           runtime.Workload
	img         *image
	base        *resolved // without the port variables
	log         *logWriter
	ready, live *probeConf

	cancel context.CancelFunc
	done   chan struct{}
	stop   sync.Once

	mu        sync.Mutex
	ports     []portMap
	state     string
	restarts  int
	pid       int
	lastProbe string
	since     time.Time
	isReady   bool
}

var _ runtime.Instance = (*instance)(nil)

// Start unpacks the image (once per digest), ends what an earlier process
// left running under the same ID, starts the instance and supervises it.
// It returns once the process runs.
func (r *Runtime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	if !validID.MatchString(spec.ID) {
		return nil, fmt.Errorf("%w: %q (letters, digits, '_', '.', '-'; at most 128)", ErrInvalidID, spec.ID)
	}
	dir := spec.Dir
	if dir == "" {
		dir = r.InstanceDir(spec.ID)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, err)
	}
	if !r.claim(spec.ID) {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, ErrInstanceRunning)
	}
	started := false
	defer func() {
		if !started {
			r.release(spec.ID)
		}
	}()
	if err := r.cleanLeftover(ctx, spec.ID, dir); err != nil {
		return nil, err
	}
	w := spec.Workload
	img, err := r.image(ctx, w.Image)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, err)
	}
	base, err := resolve(spec.ID, w, img, spec.Env)
	if err != nil {
		return nil, err
	}
	if r.isolation == runtime.Process {
		host, err := inRoot(img.RootFS, base.Program)
		if err != nil {
			return nil, &SpecError{Instance: spec.ID, Field: "command", Err: fmt.Errorf("%w: %s", ErrEntrypointMissing, err)}
		}
		if err := checkStatic(host); err != nil {
			return nil, &SpecError{Instance: spec.ID, Field: "command", Err: fmt.Errorf("%w: %s (run gantry as root with runc installed)", err, base.Program)}
		}
	}
	ports, err := allocPorts(w.Ports)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, err)
	}
	for _, fp := range []struct {
		field string
		p     *runtime.Probe
	}{{"readinessProbe", w.Readiness}, {"livenessProbe", w.Liveness}} {
		field, p := fp.field, fp.p
		if p == nil {
			continue
		}
		var port string
		switch {
		case p.HTTPGet != nil:
			port = p.HTTPGet.Port
		case p.TCPPort != "":
			port = p.TCPPort
		case len(p.Exec) == 0:
			return nil, &SpecError{Instance: spec.ID, Field: field, Err: ErrProbeAction}
		}
		if _, err := hostPort(ports, len(w.Ports) > 0, port); err != nil {
			return nil, &SpecError{Instance: spec.ID, Field: field, Err: err}
		}
	}
	lw, err := openLog(LogPath(dir), MaxLogSize)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, err)
	}
	in := &instance{rt: r, id: spec.ID, dir: dir, w: w, img: img, base: base, log: lw,
		ready: newProbeConf(w.Readiness), live: newProbeConf(w.Liveness),
		ports: ports, state: "starting", since: time.Now(), done: make(chan struct{})}
	p, err := in.launch(ctx)
	if err != nil {
		lw.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in.cancel = cancel
	started = true
	go in.supervise(sctx, p) // owned: Stop cancels it and waits on done
	return in, nil
}

// launch starts one run of the instance: a plain process or runc run.
func (in *instance) launch(ctx context.Context) (*proc.Process, error) {
	in.mu.Lock()
	ports := append([]portMap(nil), in.ports...)
	in.mu.Unlock()
	res := *in.base
	res.Env = mergeEnv(res.Env, portEnv(in.w, ports))
	var cmd *exec.Cmd
	rec := record{}
	if in.rt.runc != "" {
		rootfs := in.img.RootFS
		if !in.w.Security.ReadOnlyRootFilesystem {
			var err error
			if rootfs, err = mountOverlay(in.img.RootFS, in.dir); err != nil {
				return nil, fmt.Errorf("instance %s: %w", in.id, err)
			}
			rec.Overlay = rootfs
		}
		if err := writeBundle(in.dir, ociSpec(in.rt.cgroupPath(in.id), rootfs, &res, in.w)); err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.id, err)
		}
		_ = in.rt.deleteContainer(context.WithoutCancel(ctx), in.id)
		cmd = in.rt.runcCmd("run", "--bundle", in.dir, in.id)
		rec.Container = in.id
	} else {
		prog, err := inRoot(in.img.RootFS, res.Program)
		if err != nil {
			return nil, &SpecError{Instance: in.id, Field: "command", Err: fmt.Errorf("%w: %s", ErrEntrypointMissing, err)}
		}
		cwd, err := inRoot(in.img.RootFS, res.Cwd)
		if err != nil {
			return nil, &SpecError{Instance: in.id, Field: "workingDir", Err: fmt.Errorf("%s is not a directory of the image: %w", res.Cwd, err)}
		}
		tmp := filepath.Join(in.dir, "tmp")
		if err := os.MkdirAll(tmp, 0o1777); err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.id, err)
		}
		cmd = &exec.Cmd{Path: prog, Args: res.Args, Env: mergeEnv(res.Env, []string{"TMPDIR=" + tmp}), Dir: cwd}
		// A plain process runs as gantry's user: the image's user is not
		// applied (it could not read gantry's state dir), nor are limits.
	}
	cmd.Stdout, cmd.Stderr = in.log, in.log
	p, err := proc.Start(ctx, cmd)
	if err != nil {
		if rec.Overlay != "" {
			unmount(rec.Overlay)
		}
		return nil, fmt.Errorf("instance %s: start %s: %w", in.id, cmd.Path, err)
	}
	rec.Group = p.Group()
	if err := writeRecord(in.dir, rec); err != nil {
		in.rt.log.Warn("instance state not recorded", "instance", in.id, "err", err)
	}
	in.log.Printf("started %v (pid %d, %s, port %d)", res.Args, p.Pid(), in.rt.isolation, ports[0].Host)
	in.mu.Lock()
	in.pid = p.Pid()
	in.state = "starting"
	in.since = time.Now()
	in.isReady = false
	in.mu.Unlock()
	return p, nil
}

// supervise owns the instance's runs: it probes each, ends it on liveness
// failure or stop, and restarts it with backoff.
func (in *instance) supervise(ctx context.Context, p *proc.Process) {
	defer close(in.done)
	defer in.rt.release(in.id)
	defer in.log.Close()
	delay := time.Duration(0)
	for {
		started := time.Now()
		why := "start failed"
		if p != nil {
			why = in.run(ctx, p)
		}
		if ctx.Err() != nil {
			in.setState("stopped", false)
			in.cleanup()
			return
		}
		in.mu.Lock()
		in.restarts++
		in.state, in.isReady, in.pid = "crashed", false, 0
		if !strings.HasPrefix(why, "liveness") {
			// What a deploy that never gets ready shows: why the process
			// ended, and the last thing it said.
			in.lastProbe = why
			if last := in.log.Last(); last != "" {
				in.lastProbe += " (last output: " + last + ")"
			}
		}
		in.mu.Unlock()
		if time.Since(started) >= backoffReset {
			delay = 0
		}
		delay = nextBackoff(delay)
		in.log.Printf("%s; restarting in %s", why, delay)
		in.rt.log.Info("instance restarting", "instance", in.id, "reason", why, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			in.setState("stopped", false)
			in.cleanup()
			return
		case <-t.C:
		}
		in.reallocTakenPorts()
		var err error
		p, err = in.launch(ctx)
		if err != nil {
			in.log.Printf("restart failed: %v", err)
			in.mu.Lock()
			in.lastProbe = err.Error()
			in.mu.Unlock()
			p = nil
		}
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return backoffBase
	}
	if d *= 2; d > backoffMax {
		d = backoffMax
	}
	return d
}

// run watches one run until it exits, fails liveness or ctx ends, and
// makes sure the process is gone before it returns why it ended.
func (in *instance) run(ctx context.Context, p *proc.Process) string {
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }() // owned: every path below receives from exited

	var readyAt, liveAt <-chan time.Time
	var readyT, liveT *time.Timer
	if in.ready != nil {
		readyT = time.NewTimer(in.ready.InitialDelay)
		defer readyT.Stop()
		readyAt = readyT.C
	} else {
		in.setState("ready", true)
	}
	if in.live != nil {
		liveT = time.NewTimer(in.live.InitialDelay)
		defer liveT.Stop()
		liveAt = liveT.C
	}
	okRun, failRun, liveFails := 0, 0, 0
	start, passed := time.Now(), false
	for {
		select {
		case err := <-exited:
			return exitReason(err)
		case <-ctx.Done():
			in.terminate(p, exited)
			return "stopped"
		case <-readyAt:
			ok, answer := in.probe(ctx, in.ready)
			in.mu.Lock()
			in.lastProbe = answer
			if ok {
				okRun, failRun = okRun+1, 0
				if okRun >= in.ready.successes {
					in.isReady, in.state = true, "ready"
				}
				passed = true
			} else {
				okRun, failRun = 0, failRun+1
				if failRun >= in.ready.failures || !in.isReady {
					in.isReady, in.state = false, "unready"
				}
			}
			in.mu.Unlock()
			readyT.Reset(in.ready.readyInterval(passed, time.Since(start)))
		case <-liveAt:
			ok, answer := in.probe(ctx, in.live)
			if ok {
				liveFails = 0
			} else {
				liveFails++
				in.mu.Lock()
				in.lastProbe = answer
				in.mu.Unlock()
				if liveFails >= in.live.failures {
					in.log.Printf("liveness probe failed %d times (%s); ending the instance", liveFails, answer)
					in.terminate(p, exited)
					return "liveness failed: " + answer
				}
			}
			liveT.Reset(in.live.period)
		}
	}
}

func exitReason(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exited with status 0"
	case errors.As(err, &ee):
		return "exited: " + ee.ProcessState.String()
	default:
		return "exited: " + err.Error()
	}
}

// terminate ends the run: SIGTERM, the grace, SIGKILL; under runc through
// runc kill, then runc delete. It returns once the process has exited.
func (in *instance) terminate(p *proc.Process, exited <-chan error) {
	grace := in.w.TerminationGrace
	if grace <= 0 {
		grace = defaultGrace
	}
	bg := context.Background()
	// signal reports whether the signal reached the instance: runc kill
	// fails while the container is still being created, and is retried.
	signal := func(sig syscall.Signal) bool {
		if in.rt.runc != "" {
			return in.rt.runcDo(bg, "kill", in.id, strconv.Itoa(int(sig))) == nil
		}
		_ = syscall.Kill(-p.Pid(), sig)
		return true
	}
	sent := signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-exited:
		case <-retry.C:
			if !sent {
				sent = signal(syscall.SIGTERM)
			}
			continue
		case <-t.C:
			in.log.Printf("still running %s after SIGTERM; SIGKILL", grace)
			if !signal(syscall.SIGKILL) {
				_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			}
			<-exited
		}
		break
	}
	if in.rt.runc != "" {
		_ = in.rt.deleteContainer(bg, in.id)
	}
}

// cleanup releases what the last run held once supervision ends.
func (in *instance) cleanup() {
	unmount(filepath.Join(in.dir, "rootfs"))
	_ = os.Remove(statePath(in.dir))
	in.log.Printf("stopped")
}

// reallocTakenPorts picks new host ports for those that something else
// took while the instance was down (the instance failed to bind them).
func (in *instance) reallocTakenPorts() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range in.ports {
		if !portTaken(in.ports[i].Host) {
			continue
		}
		h, err := freePort()
		if err != nil {
			continue
		}
		in.log.Printf("port %d is taken by another process; using %d", in.ports[i].Host, h)
		in.ports[i].Host = h
	}
}

func (in *instance) setState(s string, ready bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.state, in.isReady = s, ready
	if s == "stopped" {
		in.pid = 0
	}
}

func (in *instance) portsNow() ([]portMap, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]portMap(nil), in.ports...), len(in.w.Ports) > 0
}

// exec runs argv inside the instance (the exec probe): runc exec under
// runc, else a child with the instance's environment and directory.
func (in *instance) exec(ctx context.Context, argv []string) ([]byte, error) {
	out := &limitedBuffer{n: 4096}
	var cmd *exec.Cmd
	if in.rt.runc != "" {
		cmd = in.rt.runcCmd(append([]string{"exec", in.id}, argv...)...)
	} else {
		in.mu.Lock()
		ports := append([]portMap(nil), in.ports...)
		in.mu.Unlock()
		env := mergeEnv(in.base.Env, portEnv(in.w, ports))
		prog, err := findProgram(in.img.RootFS, argv[0], envValue(env, "PATH"))
		if err != nil {
			return nil, err
		}
		host, err := inRoot(in.img.RootFS, prog)
		if err != nil {
			return nil, err
		}
		cwd, _ := inRoot(in.img.RootFS, in.base.Cwd)
		cmd = &exec.Cmd{Path: host, Args: argv, Env: env, Dir: cwd}
	}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := proc.Start(ctx, cmd)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }() // owned: received below in every case
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-ctx.Done():
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-done
		return out.Bytes(), fmt.Errorf("timed out: %w", ctx.Err())
	}
}

// ID implements runtime.Instance.
func (in *instance) ID() string { return in.id }

// Addr is 127.0.0.1 and the host port of the first declared port.
func (in *instance) Addr() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return "127.0.0.1:" + strconv.Itoa(in.ports[0].Host)
}

// Ready reports whether the readiness probe passes now (without one:
// whether the process runs).
func (in *instance) Ready() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.isReady
}

// Status implements runtime.Instance.
func (in *instance) Status() runtime.InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	return runtime.InstanceStatus{ID: in.id, Addr: "127.0.0.1:" + strconv.Itoa(in.ports[0].Host), PID: in.pid,
		State: in.state, Restarts: in.restarts, LastProbe: in.lastProbe, Since: in.since, Isolation: in.rt.isolation}
}

// Stop ends the instance (SIGTERM, the termination grace, SIGKILL) and
// waits for its supervisor. When ctx ends first Stop returns its error;
// the supervisor still finishes ending the instance.
func (in *instance) Stop(ctx context.Context) error {
	in.stop.Do(in.cancel)
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %s: %w", in.id, ctx.Err())
	}
}
