package envctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// procRuntime is the tests' runtime.Runtime: it runs the workload's
// Command as a real child process (its own process group, killed with the
// test process as runtime/local's children are with gantry), on a free
// port given in the workload's port variable, its output appended to
// Dir/log. Readiness is the HTTP probe of the workload, asked at each
// Ready call. It does not supervise (nothing restarts a crashed process).
type procRuntime struct{}

var _ runtime.Runtime = procRuntime{}

func (procRuntime) Isolation() runtime.Isolation { return runtime.Process }

func (procRuntime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	if len(spec.Workload.Command) == 0 {
		return nil, fmt.Errorf("instance %s: no command", spec.ID)
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	// A process of the same ID left by a controller that died: end it, as
	// runtime/local does when it finds its state file.
	pidFile := filepath.Join(spec.Dir, "pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(string(b)); err == nil && pid > 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.OpenFile(filepath.Join(spec.Dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	portEnv := spec.Workload.PortEnv
	if portEnv == "" {
		portEnv = "PORT"
	}
	cmd := exec.Command(spec.Workload.Command[0], append(spec.Workload.Command[1:], spec.Workload.Args...)...)
	cmd.Env = append(append(append([]string{}, spec.Workload.Env...), spec.Env...), portEnv+"="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	inst := &procInstance{id: spec.ID, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), w: spec.Workload, cmd: cmd,
		done: make(chan struct{}), since: time.Now(), client: &http.Client{Timeout: time.Second}}
	go func() { // owned by procInstance: Stop waits for done
		_ = cmd.Wait()
		close(inst.done)
	}()
	return inst, nil
}

type procInstance struct {
	id, addr string
	w        runtime.Workload
	cmd      *exec.Cmd
	done     chan struct{}
	since    time.Time
	client   *http.Client

	mu        sync.Mutex
	lastProbe string
	stopped   bool
}

func (i *procInstance) ID() string   { return i.id }
func (i *procInstance) Addr() string { return i.addr }

func (i *procInstance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

func (i *procInstance) Ready() bool {
	if i.exited() {
		return false
	}
	path := "/"
	if p := i.w.Readiness; p != nil && p.HTTPGet != nil {
		path = p.HTTPGet.Path
	}
	answer := ""
	ok := false
	resp, err := i.client.Get("http://" + i.addr + path)
	if err != nil {
		answer = fmt.Sprintf("GET %s: %v", path, err)
	} else {
		resp.Body.Close()
		answer = fmt.Sprintf("GET %s: %d", path, resp.StatusCode)
		ok = resp.StatusCode >= 200 && resp.StatusCode < 400
	}
	i.mu.Lock()
	i.lastProbe = answer
	i.mu.Unlock()
	return ok
}

func (i *procInstance) Status() runtime.InstanceStatus {
	i.mu.Lock()
	defer i.mu.Unlock()
	// Nothing restarts an exited process here: it is no longer
	// supervised, which the runtime says with "stopped".
	state := "running"
	if i.stopped || i.exited() {
		state = "stopped"
	}
	return runtime.InstanceStatus{ID: i.id, Addr: i.addr, PID: i.cmd.Process.Pid, State: state, LastProbe: i.lastProbe, Since: i.since, Isolation: runtime.Process}
}

func (i *procInstance) Stop(ctx context.Context) error {
	i.mu.Lock()
	i.stopped = true
	i.mu.Unlock()
	pid := i.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	grace := i.w.TerminationGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-i.done:
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-i.done
	return nil
}

// refuser is the tests' Admitter: it refuses the images it lists, with
// the rule and reason an admission controller gives, and fails to decide
// on those in unreachable.
type refuser struct {
	mu          sync.Mutex
	refuse      map[string]bool
	unreachable map[string]bool
	asked       []string
}

func (a *refuser) Admit(ctx context.Context, env string, spec runtime.EnvironmentSpec, image string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, image)
	if a.unreachable[image] {
		return "", fmt.Errorf("fetch signatures of %s: %w", image, errUnreachable)
	}
	if a.refuse[image] {
		return "", fmt.Errorf("%w: rule verify-signature: image %s is not signed", runtime.ErrAdmission, image)
	}
	return image, nil
}

var errUnreachable = errors.New("connection refused")
