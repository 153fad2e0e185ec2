package local

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Typed errors of an instance that cannot start; the message names the
// instance and the field.
var (
	// ErrEntrypointMissing: no command at all, or the program is not in
	// the image.
	ErrEntrypointMissing = errors.New("entrypoint missing")
	// ErrRunAsNonRoot: runAsNonRoot is set and the user is root.
	ErrRunAsNonRoot = errors.New("runAsNonRoot with a root user")
	// ErrUnknownUser: the image's user is a name its /etc/passwd lacks.
	ErrUnknownUser = errors.New("unknown user")
	// ErrDynamicBinary: a plain process cannot run a dynamically linked
	// program from the image (its loader and libraries are the image's).
	ErrDynamicBinary = errors.New("dynamically linked program cannot run as a plain process")
	// ErrProbePort: a probe names a port the workload does not declare.
	ErrProbePort = errors.New("probe port not declared")
	// ErrProbeAction: a probe has none of httpGet, tcpSocket and exec.
	ErrProbeAction = errors.New("probe has no httpGet, tcpSocket or exec action")
)

// SpecError says which instance and field could not start.
type SpecError struct {
	Instance string
	Field    string // e.g. "securityContext.runAsNonRoot", "command"
	Err      error
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("instance %s: %s: %v", e.Instance, e.Field, e.Err)
}

func (e *SpecError) Unwrap() error { return e.Err }

// resolved is what an instance runs, independent of the isolation.
type resolved struct {
	Args []string
	// Program is Args[0] resolved to a path inside the root filesystem.
	Program string
	Env     []string
	Cwd     string
	UID     uint32
	GID     uint32
}

// resolve applies Kubernetes semantics to the workload over the image
// config: Command overrides the entrypoint, Args the cmd; the environment
// is the image's, then the workload's, then extra (later wins).
func resolve(id string, w runtime.Workload, img *image, extra []string) (*resolved, error) {
	fail := func(field string, err error) error { return &SpecError{Instance: id, Field: field, Err: err} }
	var args []string
	switch {
	case len(w.Command) > 0:
		args = append(append(args, w.Command...), w.Args...)
	case len(w.Args) > 0:
		args = append(append(args, img.Config.Entrypoint...), w.Args...)
	default:
		args = append(append(args, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, fail("command", fmt.Errorf("%w: neither the workload nor the image %s gives a command", ErrEntrypointMissing, w.Image))
	}
	env := mergeEnv(img.Config.Env, w.Env, extra)
	prog, err := findProgram(img.RootFS, args[0], envValue(env, "PATH"))
	if err != nil {
		return nil, fail("command", err)
	}
	cwd := w.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, fail("workingDir", fmt.Errorf("%q is not absolute", cwd))
	}
	uid, gid, err := user(img, w.Security)
	if err != nil {
		return nil, fail("securityContext.runAsUser", err)
	}
	if w.Security.RunAsNonRoot && uid == 0 {
		return nil, fail("securityContext.runAsNonRoot", fmt.Errorf("%w: the image %s runs as uid 0 and runAsUser is not set", ErrRunAsNonRoot, w.Image))
	}
	return &resolved{Args: args, Program: prog, Env: env, Cwd: path.Clean(cwd), UID: uid, GID: gid}, nil
}

// mergeEnv joins KEY=VALUE lists, a later value of a key replacing an
// earlier one in place.
func mergeEnv(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

func envValue(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}

const maxLinks = 40

// inRoot resolves p (absolute, inside the image) to a host path under
// rootfs, following symbolic links as the container would see them.
func inRoot(rootfs, p string) (string, error) {
	cur := "/"
	rest := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	links := 0
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(rootfs, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(rootfs, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(rootfs, cur), nil
}

// findProgram resolves the program name as execve in the container would:
// a name with a slash relative to /, else the first match in PATH.
func findProgram(rootfs, prog, pathEnv string) (string, error) {
	var candidates []string
	if strings.Contains(prog, "/") {
		candidates = []string{path.Join("/", prog)}
	} else {
		if pathEnv == "" {
			pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		}
		for _, d := range filepath.SplitList(pathEnv) {
			if path.IsAbs(d) {
				candidates = append(candidates, path.Join(d, prog))
			}
		}
	}
	for _, c := range candidates {
		host, err := inRoot(rootfs, c)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not an executable file in the image", ErrEntrypointMissing, prog)
}

// checkStatic fails for a dynamically linked ELF program.
func checkStatic(host string) error {
	f, err := elf.Open(host)
	if err != nil {
		return nil // not ELF (a script): the kernel decides
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return ErrDynamicBinary
		}
	}
	return nil
}

// user picks uid and gid: runAsUser/runAsGroup, else the image's User
// ("uid", "uid:gid", "name", "name:group"), names looked up in the image's
// /etc/passwd and /etc/group.
func user(img *image, s runtime.Security) (uint32, uint32, error) {
	u, g, _ := strings.Cut(img.Config.User, ":")
	var uid, gid int64
	haveGID := false
	switch {
	case s.RunAsUser != nil:
		uid = *s.RunAsUser
	case u == "":
		uid = 0
	default:
		n, err := lookupID(img.RootFS, "/etc/passwd", u)
		if err != nil {
			return 0, 0, fmt.Errorf("image user %q: %w", img.Config.User, err)
		}
		uid = n
	}
	switch {
	case s.RunAsGroup != nil:
		gid, haveGID = *s.RunAsGroup, true
	case g != "" && s.RunAsUser == nil:
		n, err := lookupID(img.RootFS, "/etc/group", g)
		if err != nil {
			return 0, 0, fmt.Errorf("image group %q: %w", g, err)
		}
		gid, haveGID = n, true
	}
	if !haveGID {
		gid = primaryGroup(img.RootFS, uid)
	}
	if uid < 0 || uid > 1<<32-2 || gid < 0 || gid > 1<<32-2 {
		return 0, 0, fmt.Errorf("uid %d or gid %d out of range", uid, gid)
	}
	return uint32(uid), uint32(gid), nil
}

// lookupID returns a numeric id as is, else the id of name in the image's
// passwd or group file (name:x:ID:...).
func lookupID(rootfs, file, name string) (int64, error) {
	if n, err := strconv.ParseInt(name, 10, 64); err == nil {
		return n, nil
	}
	b := readImageFile(rootfs, file)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 3 && f[0] == name {
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: bad id for %s: %w", file, name, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not in the image's %s", ErrUnknownUser, name, file)
}

// primaryGroup is uid's group in the image's /etc/passwd, else 0.
func primaryGroup(rootfs string, uid int64) int64 {
	sc := bufio.NewScanner(bytes.NewReader(readImageFile(rootfs, "/etc/passwd")))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 4 && f[2] == strconv.FormatInt(uid, 10) {
			if n, err := strconv.ParseInt(f[3], 10, 64); err == nil {
				return n
			}
		}
	}
	return 0
}

// readImageFile reads a small file of the image, nil when it is missing.
func readImageFile(rootfs, p string) []byte {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil
	}
	defer root.Close()
	b, err := root.ReadFile(strings.TrimPrefix(p, "/"))
	if err != nil {
		return nil
	}
	return b
}
