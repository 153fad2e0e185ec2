package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/testenv"
)

var isolations = []runtime.Isolation{runtime.OCI, runtime.Process}

// TestInstance runs the test image under each isolation and checks what
// the instance sees and how it is supervised.
func TestInstance(t *testing.T) {
	image := testImage(t)
	for _, iso := range isolations {
		t.Run(string(iso), func(t *testing.T) {
			t.Setenv("GANTRY_TEST_SECRET", "s3cr3t")
			r := newRuntime(t, iso, t.TempDir())
			ctx := context.Background()
			w := runtime.Workload{
				Name:      "app",
				Image:     image,
				Env:       []string{"FROM_WORKLOAD=w", "HOME=/overridden"},
				Ports:     []runtime.Port{{Name: "http", ContainerPort: 8080}},
				Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz", Port: "http"}, Period: 100 * time.Millisecond, FailureThreshold: 1},
				Liveness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/healthz", Port: "8080"},
					InitialDelay: 2 * time.Second, Period: 100 * time.Millisecond, FailureThreshold: 3},
				Resources: runtime.Resources{MemoryLimit: 128 << 20, CPUMillis: 500},
				Security:  runtime.Security{ReadOnlyRootFilesystem: true, RunAsNonRoot: true},
				// The app shuts down at once on SIGTERM; the long grace
				// shows that Stop did not need SIGKILL.
				TerminationGrace: time.Minute,
			}
			in, err := r.Start(ctx, runtime.InstanceSpec{ID: "app-1", Workload: w, Env: []string{"FROM_SPEC=s"}})
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("status %+v; log:\n%s", in.Status(), logText(t, r.InstanceDir("app-1")))
				}
				if !stopped {
					_ = in.Stop(context.Background())
				}
			})
			if got := in.Status().Isolation; got != iso {
				t.Errorf("status isolation = %s, want %s", got, iso)
			}
			eventually(t, "ready", in.Ready)
			addr := in.Addr()

			t.Run("uid", func(t *testing.T) {
				if iso == runtime.Process {
					t.Skip("a plain process runs as gantry's user")
				}
				if got, want := mustGet(t, addr, "/uid"), "65532:65532"; got != want {
					t.Errorf("uid:gid = %s, want %s", got, want)
				}
			})
			t.Run("env", func(t *testing.T) {
				env := "\n" + mustGet(t, addr, "/env") + "\n"
				_, port, _ := strings.Cut(addr, ":")
				for _, want := range []string{
					"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", // image
					"FROM_WORKLOAD=w", "HOME=/overridden", "FROM_SPEC=s",
					"PORT=" + port, "PORT_HTTP=" + port,
				} {
					if !strings.Contains(env, "\n"+want+"\n") {
						t.Errorf("environment lacks %s:%s", want, env)
					}
				}
				if strings.Contains(env, "GANTRY_TEST_SECRET") {
					t.Errorf("gantry's own environment reached the instance:%s", env)
				}
				if strings.Contains(env, "HOME=/home/nonroot") {
					t.Errorf("the workload's HOME did not replace the image's:%s", env)
				}
			})
			t.Run("readiness flips", func(t *testing.T) {
				mustGet(t, addr, "/set?ready=0")
				eventually(t, "unready", func() bool { return !in.Ready() })
				st := in.Status()
				if st.State != "unready" || st.LastProbe != "GET /readyz: 503 Service Unavailable" {
					t.Errorf("status = %s, %q; want unready, GET /readyz: 503 Service Unavailable", st.State, st.LastProbe)
				}
				mustGet(t, addr, "/set?ready=1")
				eventually(t, "ready again", in.Ready)
			})
			if iso == runtime.OCI {
				t.Run("read-only root", func(t *testing.T) {
					if got := mustGet(t, addr, "/write?path=/app/x"); !strings.Contains(got, "read-only file system") {
						t.Errorf("writing /app/x: %q, want a read-only file system error", got)
					}
					if got := mustGet(t, addr, "/write?path=/tmp/x"); got != "ok" {
						t.Errorf("writing /tmp/x: %q, want ok", got)
					}
				})
				t.Run("privileges", func(t *testing.T) {
					status := mustGet(t, addr, "/file?path=/proc/self/status")
					for _, want := range []string{"NoNewPrivs:\t1\n", "CapEff:\t0000000000000000\n", "CapBnd:\t0000000000000000\n"} {
						if !strings.Contains(status, want) {
							t.Errorf("/proc/self/status lacks %q:\n%s", want, status)
						}
					}
					if got := mustGet(t, addr, "/write?path=/etc/resolv.conf"); !strings.Contains(got, "read-only file system") {
						t.Errorf("writing /etc/resolv.conf: %q, want a read-only file system error", got)
					}
				})
				t.Run("runc gets none of gantry's environment", func(t *testing.T) {
					b, err := os.ReadFile("/proc/" + strconv.Itoa(in.Status().PID) + "/environ")
					if err != nil {
						t.Fatal(err)
					}
					if got := string(b); strings.Contains(got, "GANTRY_TEST_SECRET") || !strings.HasPrefix(got, "PATH=") {
						t.Errorf("runc's environment = %q, want PATH only", got)
					}
				})
				t.Run("cpu quota", func(t *testing.T) {
					code, body, err := get(addr, "/file?path=/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
					if code == http.StatusNotFound {
						// cgroup v2: "QUOTA PERIOD"
						body = mustGet(t, addr, "/file?path=/sys/fs/cgroup/cpu.max")
						body, _, _ = strings.Cut(body, " ")
					} else if err != nil {
						t.Fatal(err)
					}
					if got, want := strings.TrimSpace(body), "50000"; got != want {
						t.Errorf("cpu quota = %s, want %s (500m of a 100ms period)", got, want)
					}
				})
				t.Run("memory limit", func(t *testing.T) {
					if got, want := mustGet(t, addr, "/memlimit"), strconv.Itoa(128<<20); got != want {
						t.Errorf("memory limit = %s, want %s", got, want)
					}
				})
			}
			t.Run("crash restarts", func(t *testing.T) {
				before := in.Status().Restarts
				_, _, _ = get(addr, "/crash")
				eventually(t, "restarted", func() bool { return in.Status().Restarts == before+1 && in.Ready() })
				_, _, _ = get(in.Addr(), "/crash")
				eventually(t, "restarted twice", func() bool { return in.Status().Restarts == before+2 && in.Ready() })
				log := logText(t, r.InstanceDir("app-1"))
				for _, want := range []string{"crashing on request", "restarting in 1s", "restarting in 2s"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
			})
			t.Run("liveness restarts", func(t *testing.T) {
				before := in.Status().Restarts
				mustGet(t, in.Addr(), "/set?live=0")
				eventually(t, "restarted on liveness", func() bool { return in.Status().Restarts > before })
				if st := in.Status(); !strings.Contains(st.LastProbe, "GET /healthz: 500") {
					t.Errorf("last probe = %q, want the liveness answer", st.LastProbe)
				}
				eventually(t, "ready after the liveness restart", in.Ready)
				if code, _, err := get(in.Addr(), "/healthz"); err != nil || code != http.StatusOK {
					t.Errorf("after restart /healthz = %d %v, want 200", code, err)
				}
			})
			t.Run("stop is graceful", func(t *testing.T) {
				pid := in.Status().PID
				if err := in.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				stopped = true
				if st := in.Status(); st.State != "stopped" || st.PID != 0 {
					t.Errorf("status after stop = %+v", st)
				}
				if alive(pid) {
					t.Errorf("process %d still there after Stop", pid)
				}
				log := logText(t, r.InstanceDir("app-1"))
				if !strings.Contains(log, "graceful shutdown") || !strings.Contains(log, "bye") || strings.Contains(log, "SIGKILL") {
					t.Errorf("the app did not shut down on SIGTERM:\n%s", log)
				}
				if _, _, err := get(addr, "/healthz"); err == nil {
					t.Error("the instance still answers after Stop")
				}
			})
		})
	}
}

func TestStartRefuses(t *testing.T) {
	image := testImage(t)
	tests := []struct {
		name  string
		w     runtime.Workload
		want  error
		field string
	}{
		{"missing entrypoint", runtime.Workload{Command: []string{"/app/nope"}}, ErrEntrypointMissing, "command"},
		{"missing program on PATH", runtime.Workload{Command: []string{"sh"}, Args: []string{"-c", "true"}}, ErrEntrypointMissing, "command"},
		{"runAsNonRoot with root", runtime.Workload{Security: runtime.Security{RunAsNonRoot: true, RunAsUser: ptr(int64(0))}}, ErrRunAsNonRoot, "securityContext.runAsNonRoot"},
		{"undeclared probe port", runtime.Workload{Ports: []runtime.Port{{Name: "http", ContainerPort: 8080}},
			Readiness: &runtime.Probe{TCPPort: "metrics"}}, ErrProbePort, "readinessProbe"},
		{"probe without action", runtime.Workload{Liveness: &runtime.Probe{Period: time.Second}}, ErrProbeAction, "livenessProbe"},
	}
	r := newRuntime(t, runtime.Process, t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.Image = image
			in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "refused", Workload: tt.w})
			if err == nil {
				_ = in.Stop(context.Background())
				t.Fatal("started, want an error")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Instance != "refused" || se.Field != tt.field {
				t.Errorf("error = %#v, want a SpecError for instance refused, field %s", err, tt.field)
			}
		})
	}
	t.Run("tag instead of digest", func(t *testing.T) {
		ref := strings.Split(image, "@")[0] + ":latest"
		_, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "tag", Workload: runtime.Workload{Image: ref}})
		if !errors.Is(err, ErrNotDigest) {
			t.Errorf("error = %v, want ErrNotDigest", err)
		}
	})
	t.Run("ID already running", func(t *testing.T) {
		in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "dup", Workload: runtime.Workload{Image: image}})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Stop(context.Background())
		pid := in.Status().PID
		if _, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "dup", Workload: runtime.Workload{Image: image}}); !errors.Is(err, ErrInstanceRunning) {
			t.Errorf("error = %v, want ErrInstanceRunning", err)
		}
		if !alive(pid) || in.Status().Restarts != 0 {
			t.Errorf("the running instance was disturbed: %+v", in.Status())
		}
	})
	t.Run("invalid ID", func(t *testing.T) {
		_, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "../x", Workload: runtime.Workload{Image: image}})
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("error = %v, want ErrInvalidID", err)
		}
	})
}

// TestLeftoverEnded starts an instance from another process, kills that
// process with SIGKILL (as a killed serve process), and starts the same ID
// again: the old instance must be gone.
func TestLeftoverEnded(t *testing.T) {
	image := testImage(t)
	for _, iso := range isolations {
		for _, how := range []string{"Start", "EndLeftover"} {
			t.Run(string(iso)+"/"+how, func(t *testing.T) {
				leftover(t, image, iso, how == "Start")
			})
		}
	}
}

// leftover starts left-1 from a stand-in owner process, kills the owner
// with SIGKILL and ends the instance it left: by starting the ID again, or
// with EndLeftover.
func leftover(t *testing.T, image string, iso runtime.Isolation, restart bool) {
	dir := t.TempDir()
	r := newRuntime(t, iso, dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	owner := exec.Command(exe, "-test.run=^$")
	owner.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s", helperEnv, dir, image, "left-1", iso))
	out, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	owner.Stderr = os.Stderr
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	var oldPID int
	var oldAddr string
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscanf(line, "%d %s", &oldPID, &oldAddr); err != nil || serr != nil {
		_ = owner.Process.Kill()
		_ = owner.Wait()
		t.Fatalf("owner process said %q: %v %v", line, err, serr)
	}
	eventually(t, "old instance answers", func() bool { _, _, err := get(oldAddr, "/healthz"); return err == nil })
	if err := owner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = owner.Wait()
	if !alive(oldPID) {
		t.Fatal("the instance died with its owner; nothing to test")
	}

	if !restart {
		if err := r.EndLeftover(context.Background(), "left-1", ""); err != nil {
			t.Fatal(err)
		}
		if alive(oldPID) {
			t.Errorf("the old instance (pid %d) is still there", oldPID)
		}
		if _, _, err := get(oldAddr, "/healthz"); err == nil {
			t.Errorf("the old instance still answers on %s", oldAddr)
		}
		return
	}
	in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "left-1", Workload: runtime.Workload{Image: image}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop(context.Background())
	if alive(oldPID) {
		t.Errorf("the old instance (pid %d) is still there", oldPID)
	}
	if _, _, err := get(oldAddr, "/healthz"); err == nil && oldAddr != in.Addr() {
		t.Errorf("the old instance still answers on %s", oldAddr)
	}
	eventually(t, "new instance answers", func() bool { _, _, err := get(in.Addr(), "/healthz"); return err == nil })
}

func BenchmarkStartToReady(b *testing.B) {
	image := testImage(b)
	for _, iso := range isolations {
		b.Run(string(iso), func(b *testing.B) {
			r := newRuntime(b, iso, b.TempDir())
			w := runtime.Workload{Image: image, Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: 10 * time.Millisecond},
				Security: runtime.Security{ReadOnlyRootFilesystem: true}, TerminationGrace: 5 * time.Second}
			// The image is unpacked once, before the clock runs.
			warm, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "bench-warm", Workload: w})
			if err != nil {
				b.Fatal(err)
			}
			_ = warm.Stop(context.Background())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "bench", Workload: w})
				if err != nil {
					b.Fatal(err)
				}
				for !in.Ready() {
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				_ = in.Stop(context.Background())
				b.StartTimer()
			}
		})
	}
}

// alive reports whether pid runs (a zombie waiting for a parent that
// is not its starter does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestWritableRoot runs under runc without readOnlyRootFilesystem: the
// instance writes its root, the shared unpacked image stays untouched.
func TestWritableRoot(t *testing.T) {
	image := testImage(t)
	r := newRuntime(t, runtime.OCI, t.TempDir())
	in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "rw", Workload: runtime.Workload{Image: image,
		Command: []string{"/app/app"}, Readiness: &runtime.Probe{TCPPort: "8080", Period: 50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop(context.Background())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("status %+v; log:\n%s", in.Status(), logText(t, r.InstanceDir("rw")))
		}
	})
	eventually(t, "ready", in.Ready)
	if got := mustGet(t, in.Addr(), "/write?path=/home/nonroot/x&keep=1"); got != "ok" {
		t.Errorf("writing /home/nonroot/x: %q, want ok", got)
	}
	img, err := r.image(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img.RootFS + "/home/nonroot/x"); err == nil {
		t.Error("the write reached the shared image")
	}
	if _, err := os.Stat(r.InstanceDir("rw") + "/upper/home/nonroot/x"); err != nil {
		t.Errorf("the write is not in the instance's own layer: %v", err)
	}
	if got := in.Status().LastProbe; !strings.HasPrefix(got, "TCP ") || !strings.HasSuffix(got, ": open") {
		t.Errorf("last probe = %q, want TCP PORT: open", got)
	}
}

func TestPlainRefusesDynamicProgram(t *testing.T) {
	if err := checkStatic("/usr/bin/true"); !errors.Is(err, ErrDynamicBinary) {
		t.Errorf("checkStatic(/usr/bin/true) = %v, want ErrDynamicBinary", err)
	}
	image := testImage(t)
	r := newRuntime(t, runtime.Process, t.TempDir())
	img, err := r.image(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(img.RootFS + "/app/app"); err != nil {
		t.Errorf("checkStatic(the test image's program) = %v, want nil", err)
	}
}

// TestExecProbe probes readiness by running the image's own program inside
// the instance (runc exec, or a child with the instance's environment).
func TestExecProbe(t *testing.T) {
	image := testImage(t)
	for _, iso := range isolations {
		t.Run(string(iso), func(t *testing.T) {
			r := newRuntime(t, iso, t.TempDir())
			in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "exec", Workload: runtime.Workload{Image: image,
				Readiness: &runtime.Probe{Exec: []string{"/app/app", "check"}, Period: 100 * time.Millisecond, Timeout: 5 * time.Second, FailureThreshold: 1}}})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Stop(context.Background())
			eventually(t, "ready", in.Ready)
			if got, want := in.Status().LastProbe, "exec /app/app check: exit 0"; got != want {
				t.Errorf("last probe = %q, want %q", got, want)
			}
			mustGet(t, in.Addr(), "/set?ready=0")
			eventually(t, "unready", func() bool { return !in.Ready() })
			if got, want := in.Status().LastProbe, "exec /app/app check: exit status 1: check failed: <nil>"; got != want {
				t.Errorf("last probe = %q, want %q", got, want)
			}
		})
	}
}

// TestPortTakenWhileDown: another process takes the instance's port while
// it restarts; the instance gets a new one and answers there.
func TestPortTakenWhileDown(t *testing.T) {
	image := testImage(t)
	r := newRuntime(t, runtime.Process, t.TempDir())
	in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "ports", Workload: runtime.Workload{Image: image,
		Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: 50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop(context.Background())
	eventually(t, "ready", in.Ready)
	old := in.Addr()
	_, _, _ = get(old, "/crash")
	var ln net.Listener
	eventually(t, "the old port free to take", func() bool {
		ln, err = net.Listen("tcp", old)
		return err == nil
	})
	defer ln.Close()
	eventually(t, "restarted", func() bool { return in.Status().Restarts == 1 && in.Ready() })
	if in.Addr() == old {
		t.Fatalf("the instance kept the taken port %s", old)
	}
	mustGet(t, in.Addr(), "/healthz")
}

// BenchmarkPullUnpack is the cold part of a first start: pull the test
// image from the embedded registry by digest and unpack it.
func BenchmarkPullUnpack(b *testing.B) {
	image := testImage(b)
	r := newRuntime(b, runtime.Process, b.TempDir())
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, d := range []string{"/images", "/layers"} {
			if err := os.RemoveAll(r.Dir() + d); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if _, err := r.image(context.Background(), image); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCrashLoopStatus: an instance that exits at once says why and what it
// printed last, for the deploy error of a revision that never gets ready.
func TestCrashLoopStatus(t *testing.T) {
	image := testImage(t)
	r := newRuntime(t, runtime.Process, t.TempDir())
	in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "loop", Workload: runtime.Workload{Image: image, Args: []string{"check"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop(context.Background())
	eventually(t, "a restart", func() bool { return in.Status().Restarts >= 1 })
	st := in.Status()
	if want := "exited: exit status 1 (last output: check failed: "; !strings.HasPrefix(st.LastProbe, want) {
		t.Errorf("last probe = %q, want it to start with %q", st.LastProbe, want)
	}
}

// TestStopKillsAfterGrace: an instance that ignores SIGTERM gets SIGKILL
// once the termination grace is over.
func TestStopKillsAfterGrace(t *testing.T) {
	image := testImage(t)
	for _, iso := range isolations {
		t.Run(string(iso), func(t *testing.T) {
			r := newRuntime(t, iso, t.TempDir())
			in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "stubborn", Workload: runtime.Workload{Image: image,
				Env: []string{"IGNORE_TERM=1"}, TerminationGrace: 500 * time.Millisecond,
				Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: 50 * time.Millisecond}}})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "ready", in.Ready)
			addr := in.Addr()
			if err := in.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			log := logText(t, r.InstanceDir("stubborn"))
			if !strings.Contains(log, "after SIGTERM; SIGKILL") || strings.Contains(log, "graceful shutdown") {
				t.Errorf("want SIGKILL after the grace and no graceful shutdown:\n%s", log)
			}
			if _, _, err := get(addr, "/healthz"); err == nil {
				t.Error("the instance still answers after Stop")
			}
		})
	}
}

// TestReadinessProbedQuicklyUntilReady: an instance that is not ready at
// its first probe is probed again soon, not a whole period later, so a
// deploy does not wait a period for a program that is up in milliseconds.
// The period here is an hour: before the fast probing the instance would
// not be ready for an hour.
func TestReadinessProbedQuicklyUntilReady(t *testing.T) {
	image := testImage(t)
	for _, iso := range isolations {
		t.Run(string(iso), func(t *testing.T) {
			r := newRuntime(t, iso, t.TempDir())
			in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "quick", Workload: runtime.Workload{Image: image,
				Env:       []string{"START_UNREADY=1"},
				Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: time.Hour}}})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Stop(context.Background())
			eventually(t, "a failed readiness probe", func() bool {
				return in.Status().LastProbe == "GET /readyz: 503 Service Unavailable"
			})
			if in.Ready() {
				t.Fatal("ready after a failed probe")
			}
			mustGet(t, in.Addr(), "/set?ready=1")
			eventually(t, "ready", in.Ready)
		})
	}
}

func TestReadyInterval(t *testing.T) {
	tests := []struct {
		name       string
		period     time.Duration
		failures   int
		wasReady   bool
		sinceStart time.Duration
		want       time.Duration
	}{
		{"never ready yet", 5 * time.Second, 3, false, 0, fastReadyProbe},
		{"never ready, late in the window", 5 * time.Second, 3, false, 15*time.Second - time.Millisecond, fastReadyProbe},
		{"never ready, window over", 5 * time.Second, 3, false, 15 * time.Second, 5 * time.Second},
		{"ready once", 5 * time.Second, 3, true, time.Second, 5 * time.Second},
		{"period shorter than the fast interval", 50 * time.Millisecond, 3, false, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newProbeConf(&runtime.Probe{Period: tt.period, FailureThreshold: tt.failures})
			if got := c.readyInterval(tt.wasReady, tt.sinceStart); got != tt.want {
				t.Errorf("readyInterval(%v, %v) = %v, want %v", tt.wasReady, tt.sinceStart, got, tt.want)
			}
		})
	}
}

// TestNoRuncDeleteForAbsentContainer: starting and stopping an instance
// calls runc delete only for a container runc has (each call is a runc
// process, tens of milliseconds of a deploy). TestLeftoverEnded shows a
// leftover container still deleted.
func TestNoRuncDeleteForAbsentContainer(t *testing.T) {
	image := testImage(t)
	if os.Geteuid() != 0 {
		t.Skip("runc needs root")
	}
	real, err := exec.LookPath("runc")
	if err != nil {
		testenv.Missing(t, "runc", "apt-get install runc (scripts/deps.sh)")
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "runc-wrapper")
	script := "#!/bin/sh\necho \"$*\" >>" + calls + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(context.Background(), filepath.Join(dir, "rt"), WithRunc(wrapper))
	if err != nil {
		t.Fatal(err)
	}
	if r.Isolation() != runtime.OCI {
		t.Fatalf("isolation = %s (%s), want oci", r.Isolation(), r.Why())
	}
	deletes := func() int {
		b, _ := os.ReadFile(calls)
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, " delete ") && strings.HasSuffix(l, " del") {
				n++
			}
		}
		return n
	}
	w := runtime.Workload{Image: image, Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz"}, Period: 50 * time.Millisecond}}
	in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: "del", Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", in.Ready)
	if n := deletes(); n != 0 {
		t.Errorf("runc delete ran %d times before a new container's start, want 0", n)
	}
	if err := in.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := deletes(); n != 0 {
		t.Errorf("runc delete ran %d times for a container that ended by itself, want 0", n)
	}
}
