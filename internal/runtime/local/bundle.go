package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// cpuPeriod is the CFS period the CPU quota is a share of (100 ms).
const cpuPeriod = 100000

// ociSpec builds the runtime spec of an instance: host network (no network
// namespace), its own pid, ipc, uts and mount namespaces, a tmpfs /tmp,
// the host's resolv.conf and hosts read-only, every capability dropped,
// no new privileges unless allowPrivilegeEscalation, cgroup limits from
// the workload's resources.
func ociSpec(cgroup, rootfs string, res *resolved, w runtime.Workload) *specs.Spec {
	noNewPrivs := w.Security.AllowPrivilegeEscalation == nil || !*w.Security.AllowPrivilegeEscalation
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:            specs.User{UID: res.UID, GID: res.GID},
			Args:            res.Args,
			Env:             res.Env,
			Cwd:             res.Cwd,
			Capabilities:    &specs.LinuxCapabilities{},
			NoNewPrivileges: noNewPrivs,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: w.Security.ReadOnlyRootFilesystem},
		Hostname: "",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			// Without a network namespace a fresh sysfs cannot be mounted;
			// the host's is bound read-only.
			{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=262144k"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroup,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if m := w.Resources.MemoryLimit; m > 0 {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &m, Swap: &m}
	}
	if c := w.Resources.CPUMillis; c > 0 {
		quota, period := c*cpuPeriod/1000, uint64(cpuPeriod)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	return s
}

// writeBundle writes DIR/config.json.
func writeBundle(dir string, s *specs.Spec) error {
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".config.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "config.json")); err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	return nil
}

// runcCmd is runc with the runtime's state root. runc gets no more of
// gantry's environment than PATH: gantry's secrets stay out of it.
func (r *Runtime) runcCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(r.runc, append([]string{"--root", filepath.Join(r.dir, "runc")}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd
}

// deleteContainer deletes container id (runc delete --force) when runc
// has it: runc keeps a directory per container under its root, and a
// container that ended by itself (runc run deletes it) or never was needs
// no runc process, which costs tens of milliseconds of every start.
func (r *Runtime) deleteContainer(ctx context.Context, id string) error {
	if _, err := os.Lstat(filepath.Join(r.dir, "runc", id)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return r.runcDo(ctx, "delete", "--force", id)
}

// runcDo runs a short runc command and returns its output in the error.
func (r *Runtime) runcDo(ctx context.Context, args ...string) error {
	cmd := r.runcCmd(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("runc %v: %w", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // owned: received below in every case
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("runc %v: %w: %s", args, err, bytes.TrimSpace(out.Bytes()))
		}
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("runc %v: %w", args, ctx.Err())
	}
}

// trial runs a throwaway container with a memory limit, from a root that
// binds the host's /usr and libraries read-only, running true.
func (r *Runtime) trial(ctx context.Context) error {
	tmp, err := os.MkdirTemp(r.dir, ".trial-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return err
	}
	prog := "/usr/bin/true"
	if _, err := os.Stat(prog); err != nil {
		return fmt.Errorf("runc trial: %s: %w", prog, err)
	}
	id := "gantry-trial-" + strconv.Itoa(os.Getpid())
	mem := int64(64 << 20)
	s := ociSpec(r.cgroupPath(id), rootfs, &resolved{Args: []string{prog}, Env: []string{"PATH=/usr/bin"}, Cwd: "/", UID: 65532, GID: 65532},
		runtime.Workload{Security: runtime.Security{ReadOnlyRootFilesystem: true}, Resources: runtime.Resources{MemoryLimit: mem}})
	for _, d := range []string{"/usr", "/lib", "/lib64", "/bin"} {
		if _, err := os.Stat(d); err == nil {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: d, Type: "bind", Source: d, Options: []string{"rbind", "ro"}})
		}
	}
	if err := writeBundle(tmp, s); err != nil {
		return err
	}
	_ = r.runcDo(context.WithoutCancel(ctx), "delete", "--force", id)
	if err := r.runcDo(ctx, "run", "--bundle", tmp, id); err != nil {
		_ = r.runcDo(context.WithoutCancel(ctx), "delete", "--force", id)
		return fmt.Errorf("runc trial container: %w", err)
	}
	return nil
}

// mountOverlay gives an instance a writable root over the shared image:
// writes land in DIR/upper, which each start empties.
func mountOverlay(lower, dir string) (string, error) {
	target := filepath.Join(dir, "rootfs")
	unmount(target)
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount a writable root over the image: %w", err)
	}
	return target, nil
}

// unmount detaches an instance's overlay root, if mounted.
func unmount(target string) {
	for {
		err := syscall.Unmount(target, syscall.MNT_DETACH)
		if err != nil {
			return
		}
	}
}
