// Package local runs a workload's instances on this machine: the image is
// pulled by digest and its layers unpacked once into a content cache, and each
// instance runs from it under runc (an OCI bundle with the image's user, a
// read-only root where asked, cgroup limits, host network) or, where runc
// cannot run, as a plain child process. Every instance is supervised:
// restarted with backoff when it exits or fails liveness, its readiness
// probed, its output kept in a rotated log.
//
// Layout under the runtime's directory:
//
//	images/sha256-HEX/{config.json,layers}   unpacked images: config, layer chain
//	layers/sha256-CHAIN/rootfs              a chain of layers unpacked, once
//	instances/ID/                           bundle, log, state.json
//	runc/                                   runc's state root (--root)
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Runtime runs instances locally. It is safe for concurrent use.
type Runtime struct {
	dir       string
	log       *slog.Logger
	keychain  authn.Keychain
	transport http.RoundTripper
	runc      string // path of runc; "" in plain-process mode
	isolation runtime.Isolation
	// why says why instances run as plain processes ("" under runc).
	why string

	mu     sync.Mutex
	images map[string]*sync.Mutex
	live   map[string]bool // IDs of instances this runtime supervises
}

var _ runtime.Runtime = (*Runtime)(nil)

// Option configures a Runtime.
type Option func(*Runtime) error

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Runtime) error {
		if l == nil {
			return errors.New("nil logger")
		}
		r.log = l
		return nil
	}
}

// WithKeychain sets the registry credentials (default authn.DefaultKeychain).
func WithKeychain(kc authn.Keychain) Option {
	return func(r *Runtime) error {
		if kc == nil {
			return errors.New("nil keychain")
		}
		r.keychain = kc
		return nil
	}
}

// WithTransport sets the HTTP transport used to pull images (default
// http.DefaultTransport).
func WithTransport(t http.RoundTripper) Option {
	return func(r *Runtime) error {
		if t == nil {
			return errors.New("nil transport")
		}
		r.transport = t
		return nil
	}
}

// WithRunc names the runc binary (default: runc on PATH).
func WithRunc(path string) Option {
	return func(r *Runtime) error {
		if path == "" {
			return errors.New("empty runc path")
		}
		r.runc = path
		return nil
	}
}

// WithPlainProcesses makes the runtime run instances as plain processes
// even where runc works.
func WithPlainProcesses() Option {
	return func(r *Runtime) error {
		r.isolation = runtime.Process
		r.why = "plain processes asked for"
		return nil
	}
}

// New returns a runtime keeping its files under dir. It decides once how
// instances run: under runc when the process is root, runc is found and a
// trial container runs (with a memory limit), else as plain processes;
// Isolation and Why say which and why.
func New(ctx context.Context, dir string, opts ...Option) (*Runtime, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("runtime dir %q: %w", dir, err)
	}
	r := &Runtime{dir: abs, log: slog.New(slog.DiscardHandler), keychain: authn.DefaultKeychain,
		images: map[string]*sync.Mutex{}, live: map[string]bool{}}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, fmt.Errorf("local runtime: %w", err)
		}
	}
	for _, d := range []string{"images", "instances", "runc"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("local runtime: %w", err)
		}
	}
	if r.isolation == runtime.Process {
		r.runc = ""
		return r, nil
	}
	if err := r.probe(ctx); err != nil {
		r.runc, r.isolation, r.why = "", runtime.Process, err.Error()
		r.log.Warn("instances run as plain processes, without isolation or limits", "reason", r.why)
		return r, nil
	}
	r.isolation = runtime.OCI
	return r, nil
}

// Isolation says how instances run here.
func (r *Runtime) Isolation() runtime.Isolation { return r.isolation }

// Why says why instances run as plain processes; "" under runc.
func (r *Runtime) Why() string { return r.why }

// Dir is the runtime's directory.
func (r *Runtime) Dir() string { return r.dir }

// probe checks that runc can run a container here.
func (r *Runtime) probe(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("runc needs root (gantry runs as uid " + fmt.Sprint(os.Geteuid()) + ")")
	}
	if r.runc == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			return fmt.Errorf("runc not found: %w", err)
		}
		r.runc = p
	}
	return r.trial(ctx)
}

func (r *Runtime) imageLock(d string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	mu, ok := r.images[d]
	if !ok {
		mu = &sync.Mutex{}
		r.images[d] = mu
	}
	return mu
}

// validID is what runc accepts as a container ID and what is safe as a
// directory name.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ErrInvalidID is returned for an instance ID that is not a safe name.
var ErrInvalidID = errors.New("invalid instance ID")

// ErrInstanceRunning is returned by Start for an ID this runtime already
// supervises: Stop it first.
var ErrInstanceRunning = errors.New("an instance with this ID is already running")

func (r *Runtime) claim(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[id] {
		return false
	}
	r.live[id] = true
	return true
}

func (r *Runtime) release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, id)
}

// cgroupPath is the instance's cgroup: one parent per runtime directory,
// so that two state dirs may use the same instance IDs.
func (r *Runtime) cgroupPath(id string) string {
	sum := sha256.Sum256([]byte(r.dir))
	return "/gantry-" + hex.EncodeToString(sum[:6]) + "/" + id
}

// InstanceDir is the directory of instance id when its spec gives none.
func (r *Runtime) InstanceDir(id string) string { return filepath.Join(r.dir, "instances", id) }
